// Validates Kubernetes documents against Istio's CRD schemas as compiled in
// @kubernetes-models/istio (argv[2] is the package directory).
// stdin: [{file, doc}]; stdout: [{file, path, message}].
//
// The package's validators check types, enums, patterns and required fields, but ignore fields
// the schema does not declare. To catch those, each object is wrapped in a Proxy that records
// which keys the validator reads: a validator reads every property its schema declares
// (`data.url !== undefined`) and enumerates the keys of maps (`for (k in data)`). A key that was
// neither read nor enumerated is unknown to the schema. An object the validator never looked into
// is free-form (`x-kubernetes-preserve-unknown-fields`, e.g. pluginConfig) and is not judged.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const packageDir = process.argv[2];
const schemasDir = join(packageDir, "_schemas");
const version = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")).version;
const input = JSON.parse(readFileSync(0, "utf8"));

const pascal = (text) =>
  text.split(/[.\-/]/).filter(Boolean).map((part) => part[0].toUpperCase() + part.slice(1)).join("");

// "extensions.istio.io/v1alpha1" + "WasmPlugin" -> "ExtensionsIstioIoV1alpha1WasmPlugin".
function schemaFile(apiVersion, kind) {
  const [group, ver] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return join(schemasDir, `${pascal(group)}${pascal(ver)}${kind}.js`);
}

function knownVersions(apiVersion, kind) {
  const group = apiVersion.split("/")[0];
  const prefix = pascal(group);
  return readdirSync(schemasDir)
    .filter((name) => name.startsWith(prefix) && name.endsWith(`${kind}.js`))
    .map((name) => `${group}/${name.slice(prefix.length, -kind.length - 3).toLowerCase()}`);
}

// "/spec/configPatches/0/patch" -> "spec.configPatches[0].patch".
const dotted = (pointer) =>
  pointer
    .split("/")
    .slice(1)
    .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), "");

function describe(error) {
  const p = error.params;
  switch (error.keyword) {
    case "enum":
      return `must be one of ${p.allowedValues.join(", ")}`;
    case "pattern":
      return `must match ${p.pattern}`;
    case "required":
      return `missing required field ${p.missingProperty}`;
    case "type":
      return `must be of type ${p.type}`;
    default:
      return `${error.keyword} ${JSON.stringify(p)}`;
  }
}

function track(value, path, objects) {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item, i) => track(item, `${path}/${i}`, objects));
  const record = { path, keys: Object.keys(value), read: new Set(), enumerated: false };
  objects.push(record);
  const target = {};
  for (const [key, item] of Object.entries(value)) target[key] = track(item, `${path}/${key}`, objects);
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.get(t, key, receiver);
    },
    has(t, key) {
      if (typeof key === "string") record.read.add(key);
      return Reflect.has(t, key);
    },
    ownKeys(t) {
      record.enumerated = true;
      return Reflect.ownKeys(t);
    },
  });
}

const findings = [];
for (const { file, doc } of input) {
  const add = (path, message) => findings.push({ file, path: `${path}`, message: `${message}` });
  if (!doc || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
    add("apiVersion", "apiVersion and kind must be strings");
    continue;
  }
  const path = schemaFile(doc.apiVersion, doc.kind);
  if (!existsSync(path)) {
    const known = knownVersions(doc.apiVersion, doc.kind);
    add(
      "apiVersion",
      `no ${doc.kind} schema for apiVersion ${doc.apiVersion} in @kubernetes-models/istio ${version}` +
        (known.length ? `; known: ${known.join(", ")}` : ""),
    );
    continue;
  }
  const { validate } = await import(pathToFileURL(path).href);
  const objects = [];
  if (!validate(track(doc, "", objects))) {
    for (const error of validate.errors) add(dotted(error.instancePath), describe(error));
  }
  for (const object of objects) {
    if (object.enumerated || object.read.size === 0) continue;
    for (const key of object.keys) {
      if (!object.read.has(key)) add(dotted(`${object.path}/${key}`), "unknown field (not in the CRD schema)");
    }
  }
}
process.stdout.write(JSON.stringify(findings));
