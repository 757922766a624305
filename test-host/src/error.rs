//! Errors a test sees: the module would not load, the filter rejected its configuration, or the
//! VM trapped (with the filter's own panic message from its stderr).

use std::fmt;

/// Any test-host failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The module cannot be used: not wasm, not proxy-wasm, an import this host lacks, ...
    Load(String),
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false.
    Rejected {
        /// The callback that said no.
        callback: &'static str,
        /// The filter's log lines at warn level and above, to explain why.
        logs: Vec<String>,
    },
    /// The VM trapped in a callback. The VM is failed from then on, as in Envoy.
    Trap {
        /// The callback that trapped.
        callback: String,
        /// The trap, with its wasm backtrace.
        message: String,
        /// What the module wrote to stderr (a Rust filter's panic message is here).
        stderr: String,
    },
    /// The VM failed earlier; no more callbacks run.
    VmFailed(String),
    /// The test drove the stream in a way Envoy never would.
    Usage(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Load(reason) => write!(f, "cannot load module: {reason}"),
            Error::Rejected { callback, logs } => {
                write!(f, "{callback} returned false")?;
                if !logs.is_empty() {
                    write!(f, ": {}", logs.join(" | "))?;
                }
                Ok(())
            }
            Error::Trap {
                callback,
                message,
                stderr,
            } => {
                write!(f, "trap in {callback}: {message}")?;
                if !stderr.trim().is_empty() {
                    write!(f, "\nmodule stderr: {}", stderr.trim())?;
                }
                Ok(())
            }
            Error::VmFailed(reason) => write!(f, "the VM has failed: {reason}"),
            Error::Usage(reason) => write!(f, "invalid use of the test host: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// test-host's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
