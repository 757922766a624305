// Runs a wasm32-wasip1 command module (such as the verify_bench example) under Node's WASI, i.e.
// in V8 like Envoy's wasm runtime: node run_wasm.mjs module.wasm [args...]. It also serves as the
// Cargo runner for tests built for wasm32-wasip1 (see the Makefile's WASM_CRYPTO_TESTS).
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
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exitCode = wasi.start(instance);
