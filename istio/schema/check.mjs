// Validates Kubernetes documents against Istio's CRD schemas as compiled in
// @kubernetes-models/istio (argv[2] is the package directory), and against Kubernetes' own API
// schemas (ConfigMap, Deployment, Service, ...) as compiled in kubernetes-models (argv[3]).
// Each stdin line: [{file, doc}]; each stdout line: [{file, path, message}], until stdin closes.
//
// The package's validators check types, enums, patterns and required fields, but ignore fields
// the schema does not declare. To catch those, each object is wrapped in a Proxy that records
// which keys the validator reads: a validator reads every property its schema declares
// (`data.url !== undefined`) and enumerates the keys of maps (`for (k in data)`). A key that was
// neither read nor enumerated is unknown to the schema. An object the validator never looked into
// is free-form (`x-kubernetes-preserve-unknown-fields`, e.g. pluginConfig) and is not judged.
//
// Both packages lay out one model module per kind at `<group>/<version>/<Kind>.js` (the core
// group, apiVersion `v1`, at `v1/<Kind>.js`), which imports its validator from `_schemas/`. The
// validators are named differently in each (`ExtensionsIstioIoV1alpha1WasmPlugin` in the Istio
// package; `IoK8sApiAppsV1Deployment`, `IoK8sApiCoreV1ConfigMap` in kubernetes-models, where the
// core group is `Core` and only a group's first label is kept), so the checker follows the
// model's import rather than deriving the name.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const packages = [
  { dir: process.argv[2], what: "the CRD schema" },
  { dir: process.argv[3], what: "the Kubernetes API schema" },
].map((pkg) => ({ ...pkg, ...JSON.parse(readFileSync(join(pkg.dir, "package.json"), "utf8")) }));

const split = (apiVersion) => (apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion]);
const isDir = (path) => existsSync(path) && statSync(path).isDirectory();

// The package that models `group`: the one with a directory of that name (the core group lives in
// kubernetes-models' version directories).
function packageOf(apiVersion) {
  const [group] = split(apiVersion);
  return group ? packages.find((pkg) => isDir(join(pkg.dir, group))) : packages[1];
}

// The validator module of apiVersion + kind in `pkg`, from the import of its model module.
function schemaFile(pkg, apiVersion, kind) {
  const [group, ver] = split(apiVersion);
  const model = join(pkg.dir, group, ver, `${kind}.js`);
  if (!existsSync(model)) return undefined;
  const imported = /from\s*"(\.[^"]*_schemas\/[^"]+\.js)"/.exec(readFileSync(model, "utf8"));
  return imported ? resolve(dirname(model), imported[1]) : undefined;
}

function knownVersions(pkg, apiVersion, kind) {
  const [group] = split(apiVersion);
  const base = join(pkg.dir, group);
  return readdirSync(base)
    .filter((ver) => /^v\d/.test(ver) && existsSync(join(base, ver, `${kind}.js`)))
    .map((ver) => (group ? `${group}/${ver}` : ver));
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

async function check(input) {
  const findings = [];
  for (const { file, doc } of input) {
    const add = (path, message) => findings.push({ file, path: `${path}`, message: `${message}` });
    if (!doc || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
      add("apiVersion", "apiVersion and kind must be strings");
      continue;
    }
    const pkg = packageOf(doc.apiVersion);
    const path = pkg && schemaFile(pkg, doc.apiVersion, doc.kind);
    if (!path || !existsSync(path)) {
      const known = pkg ? knownVersions(pkg, doc.apiVersion, doc.kind) : [];
      const where = (pkg ? [pkg] : packages).map((p) => `${p.name} ${p.version}`).join(" or ");
      add(
        "apiVersion",
        `no ${doc.kind} schema for apiVersion ${doc.apiVersion} in ${where}` +
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
        if (!object.read.has(key)) add(dotted(`${object.path}/${key}`), `unknown field (not in ${pkg.what})`);
      }
    }
  }
  return findings;
}

for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(JSON.stringify(await check(JSON.parse(line))) + "\n");
}
