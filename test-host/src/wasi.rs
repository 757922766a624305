//! WASI preview 1 as Envoy gives it to a filter (proxy-wasm-cpp-host's `wasi_unstable_*`
//! functions), under both module names Envoy registers: stdout and stderr become log lines (info
//! and error, one per write, a trailing newline dropped), the environment is the plugin's, there
//! are no arguments, the clocks are the host's controllable clock, there is no filesystem and no
//! socket, and nothing waits. Each function returns Envoy's errno; a bad guest pointer is `FAULT`,
//! never a trap.

use crate::host::saturating_nanos;
use crate::limits::Cap;
use crate::memory;
use crate::state::{HostState, LogEntry, LogLevel, SharedLogs};
use wasmtime::{Caller, IntoFunc, Linker};

/// The module names Envoy registers WASI preview 1 under.
pub(crate) const MODULES: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// The WASI functions Envoy provides (`proc_raise` is not one of them).
pub(crate) const FUNCTIONS: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "environ_get",
    "environ_sizes_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "random_get",
    "sched_yield",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// The largest `random_get` Envoy serves (`PROXY_WASM_HOST_WASI_RANDOM_GET_MAX_SIZE_BYTES`);
/// a larger one is `INVAL`.
pub(crate) const RANDOM_GET_MAX_BYTES: u32 = 64 * 1024;

const SUCCESS: u32 = 0;
const BADF: u32 = 8;
const NOTDIR: u32 = 20;
const FAULT: u32 = 21;
const INVAL: u32 = 28;
const NOENT: u32 = 44;
const NOSYS: u32 = 52;
const NOTSUP: u32 = 58;

const STDOUT: u32 = 1;
const STDERR: u32 = 2;

fn is_output(fd: u32) -> bool {
    fd == STDOUT || fd == STDERR
}

/// `BADF` for anything but stdout and stderr, else success: Envoy's answer to calls that would
/// change a file.
fn output_only(fd: u32) -> u32 {
    if is_output(fd) {
        SUCCESS
    } else {
        BADF
    }
}

fn errno(result: Result<(), crate::hostcalls::Status>) -> u32 {
    match result {
        Ok(()) => SUCCESS,
        Err(_) => FAULT,
    }
}

/// A stdout or stderr that logs each write and keeps the raw bytes.
pub(crate) struct LogPipe {
    level: LogLevel,
    min_level: LogLevel,
    logs: SharedLogs,
    captured: Vec<u8>,
    capture_bytes: usize,
    /// The capture's cap was reported.
    capped: bool,
}

impl LogPipe {
    fn new(
        level: LogLevel,
        min_level: LogLevel,
        logs: SharedLogs,
        capture_bytes: usize,
    ) -> LogPipe {
        LogPipe {
            level,
            min_level,
            logs,
            captured: Vec::new(),
            capture_bytes,
            capped: false,
        }
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        let room = self.capture_bytes.saturating_sub(self.captured.len());
        self.captured
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        if room < bytes.len() && !self.capped {
            self.capped = true;
            crate::host::lock(&self.logs)
                .notice(Cap::OutputCaptureBytes.message_for(self.capture_bytes));
        }
        let line = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if line.is_empty() || self.level < self.min_level {
            return;
        }
        // Past the log cap the line is dropped; the write itself succeeds, as Envoy's would.
        crate::host::lock(&self.logs).push(LogEntry {
            level: self.level,
            message: String::from_utf8_lossy(line).into_owned(),
        });
    }

    /// Everything written so far (up to `Limits::output_capture_bytes`).
    pub(crate) fn contents(&self) -> &[u8] {
        &self.captured
    }

    /// The most of one write that can still change what is kept: a longer log line is refused
    /// whole, and the capture keeps at most its cap.
    fn useful_bytes(&self) -> usize {
        let log_bytes = crate::host::lock(&self.logs).cap();
        log_bytes.max(self.capture_bytes).saturating_add(1)
    }
}

/// The WASI state of one VM besides its stdout and stderr.
pub(crate) struct Wasi {
    environment: Vec<(String, String)>,
    random: SplitMix64,
}

/// The stdout, the stderr and the rest of the WASI state of one VM. `vm_key` seeds its
/// `random_get`.
pub(crate) fn context(
    capture_bytes: usize,
    logs: &SharedLogs,
    min_level: LogLevel,
    environment: &[(String, String)],
    vm_key: u64,
) -> (Wasi, LogPipe, LogPipe) {
    let stdout = LogPipe::new(LogLevel::Info, min_level, logs.clone(), capture_bytes);
    let stderr = LogPipe::new(LogLevel::Error, min_level, logs.clone(), capture_bytes);
    let wasi = Wasi {
        environment: environment.to_vec(),
        random: SplitMix64(RANDOM_SEED ^ vm_key),
    };
    (wasi, stdout, stderr)
}

/// `random_get` is a seeded PRNG, not the OS: a filter's random choices (a Rust filter's
/// `HashMap` order too) then repeat from run to run, so a failing test or fuzz case replays the
/// same way. Each VM of a host gets its own sequence. It is not cryptographic; a test never needs
/// that.
const RANDOM_SEED: u64 = 0x7e57_4057_5eed_0001;

/// SplitMix64: tiny, fast, and good enough for tests.
struct SplitMix64(u64);

impl SplitMix64 {
    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Defines `name` under both module names.
fn define<Params, Results>(
    linker: &mut Linker<HostState>,
    defined: &mut Vec<&'static str>,
    name: &'static str,
    func: impl IntoFunc<HostState, Params, Results> + Clone,
) -> wasmtime::Result<()> {
    for module in MODULES {
        linker.func_wrap(module, name, func.clone())?;
    }
    defined.push(name);
    Ok(())
}

/// Traps while the module starts: Envoy allows every WASI function then but `path_open`,
/// `sched_yield` and `proc_exit`.
fn allowed(caller: &Caller<'_, HostState>, name: &str) -> wasmtime::Result<()> {
    crate::hostcalls::allowed(caller, name)
}

/// Envoy's `context->error(...)`, which Envoy logs at trace level.
fn trace(caller: &Caller<'_, HostState>, message: &str) {
    let _ = caller.data().log(LogLevel::Trace, message.to_string());
}

/// `fd_write` and `fd_pwrite` on stdout or stderr: one log line per call, whatever the iovecs.
fn write(caller: &mut Caller<'_, HostState>, fd: u32, iovs: u32, count: u32, nwritten: u32) -> u32 {
    if !is_output(fd) {
        return BADF;
    }
    let keep = {
        let state = caller.data();
        let pipe = if fd == STDOUT {
            &state.stdout
        } else {
            &state.stderr
        };
        pipe.useful_bytes()
    };
    let (bytes, total) = match memory::gather(caller, iovs, count, keep) {
        Ok(gathered) => gathered,
        Err(_) => return FAULT,
    };
    if total > 0 {
        let state = caller.data_mut();
        let pipe = if fd == STDOUT {
            &mut state.stdout
        } else {
            &mut state.stderr
        };
        pipe.write_bytes(&bytes);
    }
    // A count past 4 GiB (iovecs repeating one buffer) wraps, as Envoy's 32-bit word does.
    errno(memory::write_u32(caller, nwritten, total as u32))
}

/// Adds Envoy's WASI preview 1 to `linker` and returns the names of the functions defined.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<Vec<&'static str>> {
    type C<'a> = Caller<'a, HostState>;
    let mut defined = Vec::new();
    let d = &mut defined;

    // Output: stdout and stderr only.
    define(
        linker,
        d,
        "fd_write",
        |mut c: C<'_>, fd: u32, iovs: u32, count: u32, nwritten: u32| {
            write(&mut c, fd, iovs, count, nwritten)
        },
    )?;
    // The offset is ignored: stdout and stderr are streams.
    define(
        linker,
        d,
        "fd_pwrite",
        |mut c: C<'_>, fd: u32, iovs: u32, count: u32, _offset: u64, nwritten: u32| {
            write(&mut c, fd, iovs, count, nwritten)
        },
    )?;
    define(linker, d, "fd_read", |_: u32, _: u32, _: u32, _: u32| NOSYS)?;
    define(
        linker,
        d,
        "fd_pread",
        |_: u32, _: u32, _: u32, _: u64, _: u32| NOSYS,
    )?;
    // Envoy reports success without writing the new offset, and without closing anything.
    define(
        linker,
        d,
        "fd_seek",
        |c: C<'_>, _: u32, _: i64, _: u32, _: u32| {
            trace(&c, "wasi_unstable fd_seek");
            SUCCESS
        },
    )?;
    define(linker, d, "fd_close", |c: C<'_>, _: u32| {
        trace(&c, "wasi_unstable fd_close");
        SUCCESS
    })?;
    define(
        linker,
        d,
        "fd_tell",
        |mut c: C<'_>, fd: u32, offset: u32| {
            if !is_output(fd) {
                return BADF;
            }
            errno(memory::write_u64(&mut c, offset, 0))
        },
    )?;
    // stdout and stderr: unknown file type, write right only. Envoy ignores a bad pointer here
    // and succeeds.
    define(
        linker,
        d,
        "fd_fdstat_get",
        |mut c: C<'_>, fd: u32, stat: u32| {
            if !is_output(fd) {
                return BADF;
            }
            let mut fdstat = [0u8; 24];
            fdstat[8..16].copy_from_slice(&64u64.to_le_bytes());
            let _ = memory::write(&mut c, stat, &fdstat);
            SUCCESS
        },
    )?;
    define(linker, d, "fd_fdstat_set_flags", |_: u32, _: u32| NOSYS)?;
    define(
        linker,
        d,
        "fd_fdstat_set_rights",
        |fd: u32, _: u64, _: u64| output_only(fd),
    )?;
    define(linker, d, "fd_advise", |_: u32, _: u64, _: u64, _: u32| {
        SUCCESS
    })?;
    define(linker, d, "fd_allocate", |fd: u32, _: u64, _: u64| {
        output_only(fd)
    })?;
    define(linker, d, "fd_datasync", output_only)?;
    define(linker, d, "fd_sync", output_only)?;
    define(linker, d, "fd_filestat_get", |_: u32, _: u32| BADF)?;
    define(linker, d, "fd_filestat_set_size", |fd: u32, _: u64| {
        output_only(fd)
    })?;
    define(
        linker,
        d,
        "fd_filestat_set_times",
        |fd: u32, _: u64, _: u64, _: u32| output_only(fd),
    )?;
    define(linker, d, "fd_renumber", |fd: u32, to: u32| {
        if is_output(fd) && is_output(to) {
            NOTSUP
        } else {
            BADF
        }
    })?;
    define(
        linker,
        d,
        "fd_readdir",
        |mut c: C<'_>, _: u32, _: u32, _: u32, _: u64, nread: u32| match memory::write_u32(
            &mut c, nread, 0,
        ) {
            Ok(()) => NOTDIR,
            Err(_) => FAULT,
        },
    )?;

    // No preopened directories, so no paths.
    define(linker, d, "fd_prestat_get", |_: u32, _: u32| BADF)?;
    define(
        linker,
        d,
        "fd_prestat_dir_name",
        |_: u32, _: u32, _: u32| NOSYS,
    )?;
    define(
        linker,
        d,
        "path_open",
        |c: C<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u64, _: u64, _: u32, _: u32| {
            allowed(&c, "path_open").map(|()| NOENT)
        },
    )?;
    define(
        linker,
        d,
        "path_create_directory",
        |_: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(
        linker,
        d,
        "path_filestat_get",
        |_: u32, _: u32, _: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(
        linker,
        d,
        "path_filestat_set_times",
        |_: u32, _: u32, _: u32, _: u32, _: u64, _: u64, _: u32| NOTSUP,
    )?;
    // Envoy's path_link and path_symlink lack WASI's last parameter (the new path's length): a
    // module importing WASI's signature fails to load, in Envoy as here.
    define(
        linker,
        d,
        "path_link",
        |_: u32, _: u32, _: u32, _: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(
        linker,
        d,
        "path_symlink",
        |_: u32, _: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(
        linker,
        d,
        "path_readlink",
        |mut c: C<'_>, _: u32, _: u32, _: u32, _: u32, _: u32, used: u32| match memory::write_u32(
            &mut c, used, 0,
        ) {
            Ok(()) => NOTSUP,
            Err(_) => FAULT,
        },
    )?;
    define(
        linker,
        d,
        "path_remove_directory",
        |_: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(
        linker,
        d,
        "path_rename",
        |_: u32, _: u32, _: u32, _: u32, _: u32, _: u32| NOTSUP,
    )?;
    define(linker, d, "path_unlink_file", |_: u32, _: u32, _: u32| {
        NOTSUP
    })?;

    // No sockets. Envoy zeroes the results first; sock_accept's fd as 8 bytes.
    define(
        linker,
        d,
        "sock_accept",
        |mut c: C<'_>, _: u32, _: u32, fd: u32| match memory::write_u64(&mut c, fd, 0) {
            Ok(()) => NOTSUP,
            Err(_) => FAULT,
        },
    )?;
    define(
        linker,
        d,
        "sock_recv",
        |mut c: C<'_>, _: u32, _: u32, _: u32, _: u32, size: u32, flags: u32| {
            let zeroed = memory::write_u32(&mut c, size, 0)
                .and_then(|()| memory::write(&mut c, flags, &0u16.to_le_bytes()));
            match zeroed {
                Ok(()) => NOTSUP,
                Err(_) => FAULT,
            }
        },
    )?;
    define(
        linker,
        d,
        "sock_send",
        |mut c: C<'_>, _: u32, _: u32, _: u32, _: u32, size: u32| match memory::write_u32(
            &mut c, size, 0,
        ) {
            Ok(()) => NOTSUP,
            Err(_) => FAULT,
        },
    )?;
    define(linker, d, "sock_shutdown", |_: u32, _: u32| NOTSUP)?;

    // The plugin's environment as `KEY=VALUE\0` strings; no arguments.
    define(
        linker,
        d,
        "environ_sizes_get",
        |mut c: C<'_>, count: u32, size: u32| {
            let environment = &c.data().wasi.environment;
            let entries = environment.len() as u32;
            let bytes: usize = environment.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            errno(
                memory::write_u32(&mut c, count, entries)
                    .and_then(|()| memory::write_u32(&mut c, size, bytes as u32)),
            )
        },
    )?;
    define(
        linker,
        d,
        "environ_get",
        |mut c: C<'_>, pointers: u32, strings: u32| {
            let environment = c.data().wasi.environment.clone();
            // Envoy counts in 64 bits: a pointer that passes 4 GiB faults at its write.
            let (mut pointer, mut string) = (u64::from(pointers), u64::from(strings));
            for (key, value) in environment {
                let entry = [key.as_bytes(), b"=", value.as_bytes(), b"\0"].concat();
                let (Ok(at), Ok(text)) = (u32::try_from(pointer), u32::try_from(string)) else {
                    return FAULT;
                };
                let written = memory::write_u32(&mut c, at, text)
                    .and_then(|()| memory::write(&mut c, text, &entry));
                if written.is_err() {
                    return FAULT;
                }
                pointer += 4;
                string += entry.len() as u64;
            }
            SUCCESS
        },
    )?;
    // Envoy writes nothing here: the module asked for zero of them.
    define(linker, d, "args_get", |_: u32, _: u32| SUCCESS)?;
    define(
        linker,
        d,
        "args_sizes_get",
        |mut c: C<'_>, count: u32, size: u32| {
            errno(
                memory::write_u32(&mut c, count, 0)
                    .and_then(|()| memory::write_u32(&mut c, size, 0)),
            )
        },
    )?;

    // The host clock: realtime is its wall time, monotonic its time since it started.
    define(
        linker,
        d,
        "clock_time_get",
        |mut c: C<'_>, clock: u32, _precision: u64, time: u32| {
            let shared = &c.data().shared;
            let now = match clock {
                0 => shared.now_nanos(),
                1 => saturating_nanos(shared.monotonic()),
                _ => return NOTSUP,
            };
            errno(memory::write_u64(&mut c, time, now))
        },
    )?;
    define(
        linker,
        d,
        "clock_res_get",
        |mut c: C<'_>, clock: u32, resolution: u32| {
            if clock > 1 {
                return NOTSUP;
            }
            errno(memory::write_u64(&mut c, resolution, 1))
        },
    )?;

    define(
        linker,
        d,
        "random_get",
        |mut c: C<'_>, buffer: u32, len: u32| {
            if len > RANDOM_GET_MAX_BYTES {
                return INVAL;
            }
            if len == 0 {
                return SUCCESS;
            }
            let mut bytes = vec![0; len as usize];
            c.data_mut().wasi.random.fill(&mut bytes);
            errno(memory::write(&mut c, buffer, &bytes))
        },
    )?;

    // Nothing waits: a poll reports no events at once and succeeds (Go's runtime needs the
    // success); a sleep returns at once and the clock does not move.
    define(
        linker,
        d,
        "poll_oneoff",
        |mut c: C<'_>, _: u32, _: u32, _: u32, nevents: u32| {
            errno(memory::write_u32(&mut c, nevents, 0))
        },
    )?;
    define(linker, d, "sched_yield", |c: C<'_>| {
        allowed(&c, "sched_yield").map(|()| SUCCESS)
    })?;
    // Envoy logs the call and returns: the module goes on, and a compiler's `unreachable` after
    // the call (proc_exit does not return in wasi-libc or Rust) is what traps.
    define(
        linker,
        d,
        "proc_exit",
        |c: C<'_>, _code: u32| -> wasmtime::Result<()> {
            allowed(&c, "proc_exit")?;
            trace(&c, "wasi_unstable proc_exit");
            Ok(())
        },
    )?;
    Ok(defined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_defined_are_the_ones_listed() {
        let mut linker = Linker::new(crate::engine::engine());
        let mut defined = add_to_linker(&mut linker).unwrap();
        defined.sort_unstable();
        assert_eq!(defined, FUNCTIONS);
    }

    #[test]
    fn random_bytes_repeat_per_seed_and_differ_between_seeds() {
        let bytes = |seed| {
            let mut bytes = [0u8; 13];
            SplitMix64(seed).fill(&mut bytes);
            bytes
        };
        assert_eq!(bytes(1), bytes(1));
        assert_ne!(bytes(1), bytes(2));
        assert_ne!(bytes(1), [0; 13]);
    }
}
