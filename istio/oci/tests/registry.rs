//! A real registry (Debian's `docker-registry`, distribution 2.8) on loopback: every filter's
//! image is pushed, pulled back by digest and by tag the way Istio checks a WasmPlugin, and must
//! hold the built module with the digest `istio/<filter>/image.json` commits. Tampered blobs and
//! wrong digests must be refused.

use istio_oci::{
    image_reference, sha256_hex, workspace_filters, Error, ImageRecord, Registry, WasmImage,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wasm_dir() -> PathBuf {
    std::env::var_os("FILTER_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/filters"))
}

/// A registry process with its own config and storage, killed and removed on drop.
struct LoopbackRegistry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl LoopbackRegistry {
    fn start() -> LoopbackRegistry {
        assert!(
            Path::new(REGISTRY_BINARY).exists(),
            "{REGISTRY_BINARY} is missing: `make test` installs the docker-registry package"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("istio-oci-registry-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        // No blob descriptor cache, so a blob changed on disk is served as it is now.
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new(REGISTRY_BINARY)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry starts");
        let mut registry = LoopbackRegistry { child, dir, port };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("docker-registry exited with {status}: {}", self.log());
            }
            if get_status(self.port, "/v2/") == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "registry not ready: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The file the registry stores a blob in (distribution's filesystem layout).
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status of a plain HTTP/1.0 GET, or None while nothing answers.
fn get_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn flip_last_hex_digit(hex: &str) -> String {
    let (head, last) = hex.split_at(hex.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

#[test]
fn every_filter_image_round_trips_with_the_committed_digest() {
    let registry = LoopbackRegistry::start();
    let client = Registry::new(true, None).unwrap();
    let filters = workspace_filters(&workspace_root(), &wasm_dir()).unwrap();
    assert!(filters.len() >= 3, "{filters:?}");
    for filter in &filters {
        let wasm = std::fs::read(&filter.wasm)
            .unwrap_or_else(|e| panic!("{}: {e} (run make build)", filter.wasm.display()));
        let image = WasmImage::build(&wasm).unwrap();

        // The WasmPlugin's sha256 comes from image.json, which must describe this very build.
        let record_path = workspace_root()
            .join("istio")
            .join(&filter.name)
            .join("image.json");
        let record: ImageRecord = serde_json::from_str(
            &std::fs::read_to_string(&record_path)
                .unwrap_or_else(|e| panic!("{}: {e} (run make istio)", record_path.display())),
        )
        .unwrap();
        assert_eq!(
            record,
            ImageRecord::for_filter(&filter.name, &filter.version, &image),
            "{} does not match the built module: run make istio",
            record_path.display()
        );

        let prefix = format!("{}/proxy-wasm-filters", registry.host());
        let by_tag = image_reference(&prefix, &filter.name, &filter.version);
        assert_eq!(client.push(&by_tag, &image).unwrap(), image.digest());

        // By digest, as a url with @sha256: pins it, and by tag with sha256 set, as Istio checks.
        let by_digest = format!("{prefix}/{}@{}", filter.name, image.digest());
        assert_eq!(
            client.pull(&by_digest, &record.sha256).unwrap(),
            wasm,
            "{by_digest}"
        );
        assert_eq!(
            client.pull(&by_tag, &record.sha256).unwrap(),
            wasm,
            "{by_tag}"
        );
        // The module's own sha256 is not the image's: a WasmPlugin carrying it would be refused.
        assert!(matches!(
            client.pull(&by_tag, &sha256_hex(&wasm)),
            Err(Error::DigestMismatch { .. })
        ));
    }
}

#[test]
fn wrong_digests_and_tampered_blobs_are_refused() {
    let registry = LoopbackRegistry::start();
    let client = Registry::new(true, None).unwrap();
    let module = b"\0asm\x01\0\0\0\0\x08\x04name\x02\x01\0".to_vec();
    let image = WasmImage::build(&module).unwrap();
    let repository = format!("{}/tamper/filter", registry.host());
    let by_tag = format!("{repository}:1");
    client.push(&by_tag, &image).unwrap();
    assert_eq!(client.pull(&by_tag, &image.sha256()).unwrap(), module);

    // A WasmPlugin sha256 that is one digit off.
    let wrong = flip_last_hex_digit(&image.sha256());
    match client.pull(&by_tag, &wrong) {
        Err(Error::DigestMismatch {
            actual, expected, ..
        }) => {
            assert_eq!((actual, expected), (image.sha256(), wrong.clone()));
        }
        other => panic!("a wrong sha256 was accepted: {other:?}"),
    }
    // A url pinned to a digest the registry does not have.
    let error = client
        .pull(&format!("{repository}@sha256:{wrong}"), &wrong)
        .unwrap_err();
    assert!(matches!(error, Error::Registry(_)), "{error}");

    // The layer changed on the registry's disk: same length, one byte different.
    let layer_digest = format!("sha256:{}", sha256_hex(&image.layer));
    let layer_path = registry.blob_path(&layer_digest);
    let mut layer = std::fs::read(&layer_path).unwrap();
    assert_eq!(layer, image.layer);
    let last = layer.len() - 1;
    layer[last] ^= 0xff;
    std::fs::write(&layer_path, &layer).unwrap();
    let error = client.pull(&by_tag, &image.sha256()).unwrap_err();
    assert!(matches!(error, Error::Registry(_)), "{error}");
    assert!(error.to_string().contains(&layer_digest), "{error}");

    // The manifest changed on disk: the registry still announces the digest it stored it under,
    // and the bytes no longer have it.
    let manifest_path = registry.blob_path(&image.digest());
    let mut manifest = std::fs::read(&manifest_path).unwrap();
    assert_eq!(manifest, image.manifest);
    manifest.push(b'\n');
    std::fs::write(&manifest_path, &manifest).unwrap();
    for expected in [image.sha256(), sha256_hex(&manifest)] {
        let error = client.pull(&by_tag, &expected).unwrap_err();
        assert!(matches!(error, Error::Registry(_)), "{error}");
        let message = error.to_string();
        assert!(message.contains(&image.digest()), "{message}");
        assert!(message.contains(&sha256_hex(&manifest)), "{message}");
    }
}
