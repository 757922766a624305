//! A scriptable loopback authorization server for ext-authz tests: each check request is
//! answered by a function of the request (so concurrent cases pick their own answer by path),
//! optionally after a delay, and recorded for the test to read back.

use crate::echo::{CannedReply, ReceivedRequest};
use crate::http1;
use std::io::{self, BufWriter};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the server answers a request: the reply, and how long to wait before sending it.
pub type Script = fn(&ReceivedRequest) -> (CannedReply, Duration);

/// A running authorization server on 127.0.0.1. Stops when dropped.
pub struct AuthzServer {
    port: u16,
    stopping: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<ReceivedRequest>>>,
}

impl AuthzServer {
    /// Binds a free loopback port and answers every request with `script`.
    pub fn start(script: Script) -> io::Result<AuthzServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stopping = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Vec::new()));
        let record = received.clone();
        crate::servers::accept_each(listener, "authz", stopping.clone(), move |connection| {
            serve(connection, script, &record)
        })?;
        Ok(AuthzServer {
            port,
            stopping,
            received,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, oldest first (kept: concurrent tests filter by path).
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.received).clone()
    }
}

impl Drop for AuthzServer {
    fn drop(&mut self) {
        crate::servers::stop_accepting(self.port, &self.stopping);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn serve(connection: TcpStream, script: Script, record: &Mutex<Vec<ReceivedRequest>>) {
    let _ = connection.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(write_half) = connection.try_clone() else {
        return;
    };
    let mut reader = http1::reader(&connection);
    let mut writer = BufWriter::new(write_half);
    while let Ok(Some(head)) = http1::read_request_head(&mut reader) {
        let Ok(body) = http1::read_body(&mut reader, &head, false) else {
            break;
        };
        let request = ReceivedRequest {
            method: head.method.clone(),
            path: head.path.clone(),
            headers: head
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .collect(),
            body,
        };
        lock(record).push(request.clone());
        let (reply, delay) = script(&request);
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        let start_line = format!("HTTP/1.1 {} Authz", reply.status);
        if http1::write_message(&mut writer, &start_line, &reply.headers, &reply.body).is_err() {
            break;
        }
    }
    let _ = connection.shutdown(Shutdown::Both);
}
