//! Checks manifests against Istio's CRD OpenAPI schemas as compiled in the npm package
//! `@kubernetes-models/istio` (generated from Istio's `crd-all.gen.yaml`), and the Kubernetes
//! documents (ConfigMap, Deployment, Service) against Kubernetes' own API schemas as compiled in
//! the npm package `kubernetes-models`. Node runs the packages' validators; `schema/check.mjs`
//! adds the strictness they lack (unknown fields). `schema/config.mjs` checks plugin
//! configurations against the filters' own JSON Schemas.

use crate::check::Finding;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// The installed package, as `make istio-models` leaves it (or `$ISTIO_MODELS_DIR`).
pub fn models_dir(root: &Path) -> PathBuf {
    std::env::var_os("ISTIO_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools").join("istio-models"))
}

/// The installed `kubernetes-models` package, as `make istio-models` leaves it (or
/// `$KUBERNETES_MODELS_DIR`).
pub fn kubernetes_models_dir(root: &Path) -> PathBuf {
    std::env::var_os("KUBERNETES_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".tools").join("kubernetes-models"))
}

/// Where the schema packages are installed (each an npm `--prefix` directory).
#[derive(Debug, Clone)]
pub struct Models {
    /// Holds `node_modules/@kubernetes-models/istio`.
    pub istio: PathBuf,
    /// Holds `node_modules/kubernetes-models`.
    pub kubernetes: PathBuf,
}

impl Models {
    /// Both packages where `make istio-models` installs them under `root` (or where
    /// `$ISTIO_MODELS_DIR` and `$KUBERNETES_MODELS_DIR` say).
    pub fn locate(root: &Path) -> Models {
        Models {
            istio: models_dir(root),
            kubernetes: kubernetes_models_dir(root),
        }
    }

    /// The Istio package directory.
    fn istio_package(&self) -> Result<PathBuf, String> {
        package(
            &self.istio.join("node_modules/@kubernetes-models/istio"),
            "Istio CRD schemas",
        )
    }

    /// The Kubernetes package directory.
    fn kubernetes_package(&self) -> Result<PathBuf, String> {
        package(
            &self.kubernetes.join("node_modules/kubernetes-models"),
            "Kubernetes API schemas",
        )
    }
}

fn package(dir: &Path, what: &str) -> Result<PathBuf, String> {
    if dir.join("package.json").is_file() {
        Ok(dir.to_path_buf())
    } else {
        Err(format!(
            "{what} not found at {}: run `make istio-models`",
            dir.display()
        ))
    }
}

/// One document to check: where it comes from and its content.
pub struct Document<'a> {
    /// The file, relative to the root, and which document when it holds several.
    pub file: &'a str,
    /// The document.
    pub value: &'a Value,
}

/// Validates documents against the CRD schemas (Istio's kinds) and the Kubernetes API schemas
/// (the rest); each finding names the file and the field path.
pub fn validate(models: &Models, docs: &[Document]) -> Result<Vec<Finding>, String> {
    let input: Vec<Value> = docs
        .iter()
        .map(|doc| json!({"file": doc.file, "doc": doc.value}))
        .collect();
    let packages = [models.istio_package()?, models.kubernetes_package()?];
    run_node(&packages, "schema/check.mjs", &input)
}

/// A plugin configuration and the filter's `config.schema.json` it must match.
pub struct PluginConfig<'a> {
    /// The manifest holding it, relative to the root.
    pub file: &'a str,
    /// Its field path in the manifest (`spec.pluginConfig`).
    pub path: &'a str,
    /// The committed schema.
    pub schema: &'a Value,
    /// The configuration.
    pub config: &'a Value,
}

/// Validates plugin configurations against their filters' JSON Schemas with the Ajv that
/// `@kubernetes-models/istio` ships, the kind of tool an editor uses: each schema must compile
/// and accept its configuration.
pub fn validate_configs(models: &Models, configs: &[PluginConfig]) -> Result<Vec<Finding>, String> {
    let input: Vec<Value> = configs
        .iter()
        .map(|c| json!({"file": c.file, "path": c.path, "schema": c.schema, "config": c.config}))
        .collect();
    run_node(&[models.istio_package()?], "schema/config.mjs", &input)
}

/// A node process serving one script: a JSON request per line in, a JSON answer per line out.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(script: &Path, packages: &[PathBuf]) -> Result<Worker, String> {
        let mut child = Command::new("node")
            .arg(script)
            .args(packages)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("node: {e}"))?;
        let stdin = child.stdin.take().ok_or("node: no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("node: no stdout")?);
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }

    fn ask(&mut self, request: &str) -> std::io::Result<String> {
        writeln!(self.stdin, "{request}")?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(answer)
    }

    /// Ends the process and returns what it wrote to stderr.
    fn stop(mut self) -> String {
        drop(self.stdin);
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let _ = self.child.wait();
        stderr
    }
}

/// Runs `script` (relative to this crate) with the package directories as its arguments, giving
/// it `input` and reading its findings as JSON. The process stays up for the next call (in this
/// process, under a lock), so module loading and schema compiling happen once, not per check.
fn run_node(packages: &[PathBuf], script: &str, input: &[Value]) -> Result<Vec<Finding>, String> {
    static WORKERS: Mutex<Vec<(PathBuf, Vec<PathBuf>, Worker)>> = Mutex::new(Vec::new());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let mut workers = WORKERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let position = workers
        .iter()
        .position(|(s, p, _)| *s == script && p == packages);
    let mut worker = match position {
        Some(at) => workers.swap_remove(at).2,
        None => Worker::start(&script, packages)?,
    };
    match worker.ask(&Value::Array(input.to_vec()).to_string()) {
        Ok(answer) => {
            workers.push((script.clone(), packages.to_vec(), worker));
            serde_json::from_str(&answer).map_err(|e| format!("{}: {e}", script.display()))
        }
        Err(error) => Err(format!(
            "{} failed ({error}): {}",
            script.display(),
            worker.stop()
        )),
    }
}
