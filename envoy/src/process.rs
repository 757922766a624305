//! Starting and stopping a real Envoy on loopback.
//!
//! Listeners and admin bind port 0; the harness reads the real ports back from the admin API, so
//! any number of Envoys run in parallel without port races. Envoy is killed when the `Envoy`
//! value drops, and also (through `PR_SET_PDEATHSIG`) when the thread that started it ends.

use crate::client::Request;
use serde_json::Value;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long Envoy may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The Envoy binary: `$ENVOY_BIN`, else the one `make` installs in `<workspace>/.venv/envoy`.
pub fn envoy_binary() -> io::Result<PathBuf> {
    let path = match std::env::var_os("ENVOY_BIN") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join(".venv").join("envoy"),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no Envoy at {}: run `make test` (it installs Envoy), or set ENVOY_BIN",
                path.display()
            ),
        ))
    }
}

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate sits inside the workspace")
        .to_path_buf()
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> io::Result<ScratchDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "envoy-harness-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&path)?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Options for starting Envoy.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    /// Worker threads (`--concurrency`). Default 1.
    pub concurrency: u32,
    /// Log level (`-l`). Default `info`.
    pub log_level: String,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            log_level: "info".into(),
        }
    }
}

/// A running Envoy.
pub struct Envoy {
    child: Child,
    admin_port: u16,
    listeners: Vec<(String, u16)>,
    log_path: PathBuf,
    _dir: ScratchDir,
}

/// An Envoy bootstrap: JSON built in code, or YAML text (a template from `envoy/configs`).
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// A bootstrap as JSON.
    Json(Value),
    /// A bootstrap as YAML text.
    Yaml(String),
}

impl From<Value> for Bootstrap {
    fn from(value: Value) -> Self {
        Bootstrap::Json(value)
    }
}

impl From<&Value> for Bootstrap {
    fn from(value: &Value) -> Self {
        Bootstrap::Json(value.clone())
    }
}

fn spawn(
    config: &Bootstrap,
    options: &EnvoyOptions,
    extra_args: &[&str],
) -> io::Result<(Child, ScratchDir, PathBuf, PathBuf)> {
    let binary = envoy_binary()?;
    let dir = ScratchDir::new()?;
    // Envoy picks the parser from the file extension.
    let config_path = match config {
        Bootstrap::Json(value) => {
            let path = dir.0.join("envoy.json");
            fs::write(&path, serde_json::to_vec_pretty(value)?)?;
            path
        }
        Bootstrap::Yaml(text) => {
            let path = dir.0.join("envoy.yaml");
            fs::write(&path, text)?;
            path
        }
    };
    let log_path = dir.0.join("envoy.log");
    let admin_path = dir.0.join("admin-address");
    let log = fs::File::create(&log_path)?;
    let mut command = Command::new(binary);
    command
        .arg("-c")
        .arg(&config_path)
        .args(["--disable-hot-restart", "--concurrency"])
        .arg(options.concurrency.to_string())
        .args(["-l", &options.log_level])
        .arg("--admin-address-path")
        .arg(&admin_path)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = command.spawn()?;
    Ok((child, dir, log_path, admin_path))
}

impl Envoy {
    /// Starts Envoy with `config` (a bootstrap as JSON) and waits until it is ready.
    pub fn start(config: impl Into<Bootstrap>) -> io::Result<Envoy> {
        Self::start_with(config, &EnvoyOptions::default())
    }

    /// Starts Envoy with options and waits until it is ready.
    pub fn start_with(config: impl Into<Bootstrap>, options: &EnvoyOptions) -> io::Result<Envoy> {
        Self::start_args(&config.into(), options, &[])
    }

    /// Starts Envoy with `config` merged with `overlay` (YAML or JSON text) as `--config-yaml`
    /// merges it: scalars replaced, repeated fields appended. Istio's bootstrap override works so.
    pub fn start_merged(
        config: impl Into<Bootstrap>,
        overlay: &str,
        options: &EnvoyOptions,
    ) -> io::Result<Envoy> {
        Self::start_args(&config.into(), options, &["--config-yaml", overlay])
    }

    fn start_args(config: &Bootstrap, options: &EnvoyOptions, args: &[&str]) -> io::Result<Envoy> {
        let (child, dir, log_path, admin_path) = spawn(config, options, args)?;
        let mut envoy = Envoy {
            child,
            admin_port: 0,
            listeners: Vec::new(),
            log_path,
            _dir: dir,
        };
        envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }

    fn fail(&mut self, reason: &str) -> io::Error {
        io::Error::other(format!("{reason}\n--- envoy log ---\n{}", self.logs()))
    }

    fn wait_ready(&mut self, admin_path: &Path) -> io::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(self.fail(&format!("Envoy exited during start-up with {status}")));
            }
            if Instant::now() > deadline {
                return Err(self.fail("Envoy did not become ready in time"));
            }
            if self.admin_port == 0 {
                if let Ok(address) = fs::read_to_string(admin_path) {
                    self.admin_port = address
                        .trim()
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                }
            }
            if self.admin_port != 0 {
                let ready = Request::get("/ready").send(self.admin_port);
                if ready.is_ok_and(|response| response.status == 200) {
                    self.listeners = self.read_listeners()?;
                    return Ok(());
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn read_listeners(&mut self) -> io::Result<Vec<(String, u16)>> {
        let response = Request::get("/listeners?format=json").send(self.admin_port)?;
        let document = response.json();
        let statuses = document["listener_statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        Ok(statuses
            .iter()
            .filter_map(|status| {
                let name = status["name"].as_str()?.to_string();
                let port = status["local_address"]["socket_address"]["port_value"].as_u64()?;
                Some((name, port as u16))
            })
            .collect())
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Envoy's resident memory (`VmRSS` in /proc), in bytes.
    pub fn rss_bytes(&self) -> io::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .ok_or_else(|| io::Error::other("no VmRSS in /proc/<pid>/status"))
    }

    /// The port of the first listener.
    pub fn port(&self) -> u16 {
        self.listeners.first().map_or(0, |(_, port)| *port)
    }

    /// The port of the listener named `name`.
    pub fn listener_port(&self, name: &str) -> Option<u16> {
        self.listeners
            .iter()
            .find(|(listener, _)| listener == name)
            .map(|(_, port)| *port)
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Everything Envoy logged so far, without the start-up banner.
    pub fn logs(&self) -> String {
        without_banner(&fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    /// The value of a counter or gauge from the admin `/stats` endpoint.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let response = Request::get(&format!("/stats?filter=^{}$", regex_escape(name)))
            .send(self.admin_port)
            .ok()?;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        text.lines().find_map(|line| {
            let (key, value) = line.split_once(": ")?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
    }

    /// Waits until the process exits (when the test expects it to), up to `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_with_timeout(&mut self.child, timeout)
    }
}

/// Drops Envoy's start-up banner (the extension and header-map listings) from a log.
pub fn without_banner(logs: &str) -> String {
    logs.lines()
        .filter(|line| !line.contains("server.cc:467]") && !line.contains("server.cc:547]"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        if wait_with_timeout(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The result of an Envoy run that is expected to end by itself.
#[derive(Debug)]
pub struct Exited {
    /// Exit status, or `None` if Envoy was still running at the timeout (and was killed).
    pub status: Option<ExitStatus>,
    /// Everything it logged.
    pub logs: String,
}

/// Starts Envoy with `config` and waits for it to exit, as it does when it refuses a config.
pub fn run_expecting_exit(config: impl Into<Bootstrap>, timeout: Duration) -> io::Result<Exited> {
    let (mut child, _dir, log_path, _) = spawn(&config.into(), &EnvoyOptions::default(), &[])?;
    let status = wait_with_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(Exited {
        status,
        logs: without_banner(&fs::read_to_string(log_path).unwrap_or_default()),
    })
}

/// Runs `envoy --mode validate` on `config`.
pub fn validate(config: impl Into<Bootstrap>) -> io::Result<Exited> {
    let (mut child, _dir, log_path, _) = spawn(
        &config.into(),
        &EnvoyOptions::default(),
        &["--mode", "validate"],
    )?;
    let status = wait_with_timeout(&mut child, READY_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(Exited {
        status,
        logs: without_banner(&fs::read_to_string(log_path).unwrap_or_default()),
    })
}
