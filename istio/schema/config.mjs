// Validates plugin configurations against the filters' generated config.schema.json (JSON Schema
// 2020-12) with Ajv, the validator @kubernetes-models/istio itself depends on (argv[2] is that
// package's directory). Proves each committed schema compiles and accepts its filter's example,
// and catches a pluginConfig an editor using the schema would flag.
// Each stdin line: [{file, path, schema, config}]; each stdout line: [{file, path, message}]. The
// process serves lines until stdin closes, and compiles each distinct schema once.

import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";

const require = createRequire(join(process.argv[2], "package.json"));
const Ajv2020 = require("ajv/dist/2020").default;

// schemars' integer formats; the bounds they imply are also written as minimum/maximum.
const formats = Object.fromEntries(
  ["int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float", "double"].map((f) => [f, true]),
);

// "/filters/1/config" -> ".filters[1].config".
const dotted = (pointer) =>
  pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
    .join("");

// Compiled validators (or the compile error) by schema text.
const compiled = new Map();
function compile(schema) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) {
    try {
      compiled.set(key, new Ajv2020({ allErrors: true, formats }).compile(schema));
    } catch (error) {
      compiled.set(key, error);
    }
  }
  return compiled.get(key);
}

function check(input) {
  const findings = [];
  for (const { file, path, schema, config } of input) {
    const validate = compile(schema);
    if (validate instanceof Error) {
      findings.push({ file, path: "", message: `config.schema.json does not compile: ${validate.message}` });
      continue;
    }
    if (validate(config)) continue;
    // The deepest error says what is wrong; the ones above it only say a branch failed.
    const deepest = Math.max(...validate.errors.map((e) => e.instancePath.length));
    const errors = validate.errors.filter(
      (e) => e.instancePath.length === deepest && !["anyOf", "oneOf", "if"].includes(e.keyword),
    );
    const [error] = errors
      .filter((e) => !(e.keyword === "type" && e.params.type === "null"))
      .concat(errors, validate.errors);
    const extra = error.params.additionalProperty;
    findings.push({
      file,
      path: `${path}${dotted(error.instancePath)}${extra === undefined ? "" : `.${extra}`}`,
      message: `does not match config.schema.json: ${extra === undefined ? error.message : "unknown field"}`,
    });
  }
  return findings;
}

for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(JSON.stringify(check(JSON.parse(line))) + "\n");
}
