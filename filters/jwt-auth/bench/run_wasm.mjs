// Runs a wasm32-wasip1 command module (such as the verify_bench example) under Node's WASI, i.e.
// in V8 like Envoy's wasm runtime: node run_wasm.mjs module.wasm [args...]. It also serves as the
// Cargo runner for tests built for wasm32-wasip1 (see the Makefile's test target).
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [path, ...args] = process.argv.slice(2);
if (!path) {
  console.error('usage: node run_wasm.mjs module.wasm [args...]');
  process.exit(2);
}
// Only the fuzz settings of tests/crypto_ci pass through from the environment.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name.startsWith('JWT_FUZZ_')),
);
const wasi = new WASI({ version: 'preview1', args: [path, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(path));
// The library links proxy-wasm, whose exported entry points import the host ABI from "env";
// a benchmark never calls them, so each import is a stub that fails loudly if it ever is.
const hostStubs = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.module === 'env' && imp.kind === 'function') {
    hostStubs[imp.name] = () => {
      throw new Error(`host function ${imp.name} called outside Envoy`);
    };
  }
}
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env: hostStubs });
// A test binary of a crate with `proxy-wasm` also exports `_initialize`, which WASI.start refuses
// next to `_start`: hand it only the command's entry point and memory.
const { _start, memory } = instance.exports;
process.exitCode = wasi.start({ exports: { _start, memory } });
