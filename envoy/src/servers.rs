//! Loopback servers for the failure cases of upstreams: one that never answers (a JWKS endpoint
//! that hangs), and one that records every byte it receives (to show a request never got there).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Accepts connections on `listener` on a thread named `name-<port>` and runs `serve` on each,
/// on a thread of its own, until `stopping` is set (the next connection, which the stopper makes,
/// ends the loop).
pub(crate) fn accept_each(
    listener: TcpListener,
    name: &str,
    stopping: Arc<AtomicBool>,
    serve: impl Fn(TcpStream) + Send + Sync + Clone + 'static,
) -> io::Result<()> {
    let port = listener.local_addr()?.port();
    let connection_name = format!("{name}-conn");
    thread::Builder::new()
        .name(format!("{name}-{port}"))
        .spawn(move || {
            for connection in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(connection) = connection {
                    let serve = serve.clone();
                    let _ = thread::Builder::new()
                        .name(connection_name.clone())
                        .spawn(move || serve(connection));
                }
            }
        })?;
    Ok(())
}

/// Stops an [`accept_each`] loop on `port`: sets `stopping`, then makes the connection that wakes
/// the loop to see it.
pub(crate) fn stop_accepting(port: u16, stopping: &AtomicBool) {
    stopping.store(true, Ordering::SeqCst);
    let _ = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200));
}

/// A server on 127.0.0.1 that accepts connections and never answers. Stops when dropped.
pub struct HangingServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HangingServer {
    /// Binds a free loopback port and starts accepting.
    pub fn start() -> io::Result<HangingServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        thread::Builder::new()
            .name(format!("hanging-{port}"))
            .spawn(move || {
                let mut held: Vec<TcpStream> = Vec::new();
                while !stopped.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((connection, _)) => held.push(connection),
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })?;
        Ok(HangingServer { port, stop })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for HangingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// An upstream on 127.0.0.1 that records every byte it receives, on any connection, and answers
/// `200 reached` once bytes stop arriving for 200 ms: it sees a request's headers even if the
/// body never comes.
pub struct RecordingUpstream {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl RecordingUpstream {
    /// Binds a free loopback port and starts serving.
    pub fn start() -> io::Result<RecordingUpstream> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let received: Arc<Mutex<Vec<u8>>> = Arc::default();
        let record = received.clone();
        thread::Builder::new()
            .name(format!("recorder-{port}"))
            .spawn(move || {
                for connection in listener.incoming().flatten() {
                    let record = record.clone();
                    let _ = thread::Builder::new()
                        .name("recorder-conn".into())
                        .spawn(move || serve(connection, &record));
                }
            })?;
        Ok(RecordingUpstream { port, received })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything received since the last call, as text (lossy UTF-8).
    pub fn take(&self) -> String {
        let mut received = self
            .received
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&std::mem::take(&mut *received)).into_owned()
    }
}

fn serve(mut connection: TcpStream, record: &Mutex<Vec<u8>>) {
    let _ = connection.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buffer = [0u8; 4096];
    let mut got_any = false;
    loop {
        match connection.read(&mut buffer) {
            Ok(0) => return,
            Ok(read) => {
                got_any = true;
                record
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .extend_from_slice(buffer.get(..read).unwrap_or_default());
            }
            Err(_) if got_any => break,
            Err(_) => {}
        }
    }
    let _ = connection.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nreached");
}

/// A fixture built once per test binary and shared by its tests, e.g. one Envoy for every test
/// of a file. Envoy dies with the thread that started it (PR_SET_PDEATHSIG), so `start` runs on a
/// thread that outlives every test; a panic in `start` fails each test that asks, with its message.
///
/// ```ignore
/// fn fixture() -> &'static Fixture {
///     static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
///     static STARTER: Once = Once::new();
///     envoy_harness::process_fixture(&FIXTURE, &STARTER, start_fixture)
/// }
/// ```
pub fn process_fixture<T: Send + Sync + 'static>(
    cell: &'static std::sync::OnceLock<Result<T, String>>,
    starter: &'static std::sync::Once,
    start: fn() -> T,
) -> &'static T {
    starter.call_once(|| {
        thread::spawn(move || {
            cell.get_or_init(|| {
                std::panic::catch_unwind(start).map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                        .unwrap_or_else(|| "the fixture did not start".into())
                })
            });
            loop {
                thread::park();
            }
        });
    });
    match cell.wait() {
        Ok(fixture) => fixture,
        Err(error) => panic!("{error}"),
    }
}

/// A loopback port that a server can still bind a while later: free now on 127.0.0.1 and ::1,
/// and below the kernel's ephemeral range, so that the outgoing connections of the tests running
/// alongside (the soak opens hundreds a second) cannot take it in the meantime. For a port that
/// must be written into a config before its server starts, or bound again after a restart.
pub fn free_port_below_ephemeral() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(32768);
    let (low, span) = (10_000, ephemeral_low.saturating_sub(10_000).max(1));
    let seed = std::process::id() as usize * 7919;
    (0..span)
        .map(|_| (low + (seed + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16)
        .find(|&port| {
            // ::1 only needs to be free where the machine has it.
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("::1", port))
                    .map_or_else(|error| error.kind() != io::ErrorKind::AddrInUse, |_| true)
        })
        .expect("no free loopback port below the ephemeral range")
}
