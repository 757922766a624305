//! Istio WasmPlugin images of the filters, built without a container engine.
//!
//! An image is the *compat* variant of the Wasm image spec, the first layout Istio's image
//! fetcher tries: an OCI manifest with one `application/vnd.oci.image.layer.v1.tar+gzip` layer
//! that holds `plugin.wasm`, annotated `module.wasm.image/variant: compat`. Every byte is a
//! function of the module alone (no timestamps, fixed owner and mode), so the manifest digest,
//! which is what a WasmPlugin's `sha256` must hold for an `oci://` url, is known before any push.

use flate2::{write::GzEncoder, Compression};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Media type of the image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the image config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of the single layer: a gzipped tar holding [`PLUGIN_FILE`].
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The manifest annotation that marks the compat variant.
pub const VARIANT_ANNOTATION: (&str, &str) = ("module.wasm.image/variant", "compat");
/// The file in the layer that Istio loads.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// Registry and repository prefix of the committed WasmPlugin urls (a placeholder to replace).
pub const DEFAULT_REPOSITORY_PREFIX: &str = "registry.example.com/proxy-wasm-filters";

const WASM_MAGIC: &[u8] = b"\0asm";

/// An error while building, pushing or pulling an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The registry or the transport failed.
    Registry(String),
    /// The manifest pulled has another digest than the one expected (as Istio checks `sha256`).
    DigestMismatch {
        /// What was asked for.
        reference: String,
        /// sha256 hex of the manifest received.
        actual: String,
        /// sha256 hex expected.
        expected: String,
    },
    /// The image is not a compat-variant wasm image, or its layer does not hold a module.
    Layout(String),
    /// A local file could not be read or written.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Registry(message) => write!(f, "registry: {message}"),
            Error::DigestMismatch {
                reference,
                actual,
                expected,
            } => write!(
                f,
                "image {reference} has manifest digest sha256:{actual}, which does not match sha256:{expected}"
            ),
            Error::Layout(message) => write!(f, "not a compat wasm image: {message}"),
            Error::Io(message) => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn descriptor(media_type: &str, blob: &[u8]) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: format!("sha256:{}", sha256_hex(blob)),
        size: blob.len() as i64,
        ..OciDescriptor::default()
    }
}

/// The blobs and manifest of one filter's image, exactly as pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmImage {
    /// The image config (JSON).
    pub config: Vec<u8>,
    /// The gzipped tar holding `plugin.wasm`.
    pub layer: Vec<u8>,
    /// The manifest (JSON); its sha256 is the image digest.
    pub manifest: Vec<u8>,
}

impl WasmImage {
    /// Builds the image of a module. The same module always gives the same bytes.
    pub fn build(wasm: &[u8]) -> Result<WasmImage, Error> {
        if !wasm.starts_with(WASM_MAGIC) {
            return Err(Error::Layout(
                "the module does not start with the wasm magic".into(),
            ));
        }
        let tar = plugin_tar(wasm).map_err(|e| Error::Io(format!("tar: {e}")))?;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::best());
        gzip.write_all(&tar)
            .map_err(|e| Error::Io(format!("gzip: {e}")))?;
        let layer = gzip.finish().map_err(|e| Error::Io(format!("gzip: {e}")))?;
        // `diff_ids` name the uncompressed layer, as the OCI image spec asks.
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "wasm",
            "os": "wasip1",
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))]}
        }))
        .map_err(|e| Error::Io(e.to_string()))?;
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
            config: descriptor(CONFIG_MEDIA_TYPE, &config),
            layers: vec![descriptor(LAYER_MEDIA_TYPE, &layer)],
            annotations: Some(BTreeMap::from([(
                VARIANT_ANNOTATION.0.to_string(),
                VARIANT_ANNOTATION.1.to_string(),
            )])),
            ..OciImageManifest::default()
        };
        let manifest = serde_json::to_vec(&manifest).map_err(|e| Error::Io(e.to_string()))?;
        Ok(WasmImage {
            config,
            layer,
            manifest,
        })
    }

    /// The hex sha256 of the manifest: the value of a WasmPlugin's `sha256` for this image.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.manifest)
    }

    /// The manifest digest, `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256())
    }
}

/// A tar of one regular file, `plugin.wasm`, with no timestamps or owners.
fn plugin_tar(wasm: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_path(PLUGIN_FILE)?;
    header.set_size(wasm.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, wasm)?;
    builder.into_inner()
}

/// Checks that `manifest` is a compat wasm image and returns its single layer's descriptor.
pub fn compat_layer(manifest: &[u8]) -> Result<OciDescriptor, Error> {
    let manifest: OciImageManifest = serde_json::from_slice(manifest)
        .map_err(|e| Error::Layout(format!("manifest is not an OCI image manifest: {e}")))?;
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == LAYER_MEDIA_TYPE => Ok(layer.clone()),
        [layer] => Err(Error::Layout(format!(
            "layer media type is {}, expected {LAYER_MEDIA_TYPE}",
            layer.media_type
        ))),
        layers => Err(Error::Layout(format!(
            "{} layers, expected one",
            layers.len()
        ))),
    }
}

/// The module in a layer: `plugin.wasm` from the gzipped tar, checked for the wasm magic.
pub fn plugin_wasm(layer: &[u8]) -> Result<Vec<u8>, Error> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let entries = archive
        .entries()
        .map_err(|e| Error::Layout(format!("layer is not a tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Layout(format!("layer is not a tar.gz: {e}")))?;
        let is_plugin = entry
            .path()
            .map(|path| path.file_name() == Some(PLUGIN_FILE.as_ref()))
            .unwrap_or(false);
        if is_plugin {
            let mut wasm = Vec::new();
            entry
                .read_to_end(&mut wasm)
                .map_err(|e| Error::Layout(format!("{PLUGIN_FILE}: {e}")))?;
            if !wasm.starts_with(WASM_MAGIC) {
                return Err(Error::Layout(format!("{PLUGIN_FILE} is not a wasm module")));
            }
            return Ok(wasm);
        }
    }
    Err(Error::Layout(format!("no {PLUGIN_FILE} in the layer")))
}

/// What a WasmPlugin needs to pull one filter's image: `istio/<filter>/image.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    /// `oci://<registry>/<repository>:<tag>`.
    pub url: String,
    /// Hex sha256 of the image manifest (no `sha256:` prefix), as WasmPlugin `sha256` takes it.
    pub sha256: String,
}

impl ImageRecord {
    /// The record for `filter` at `version` under [`DEFAULT_REPOSITORY_PREFIX`].
    pub fn for_filter(filter: &str, version: &str, image: &WasmImage) -> ImageRecord {
        ImageRecord {
            url: format!(
                "oci://{}",
                image_reference(DEFAULT_REPOSITORY_PREFIX, filter, version)
            ),
            sha256: image.sha256(),
        }
    }

    /// The file's text: pretty JSON and a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// `<prefix>/<filter>:<version>`, the reference of a filter's image.
pub fn image_reference(prefix: &str, filter: &str, version: &str) -> String {
    format!("{prefix}/{filter}:{version}")
}

/// A filter of the workspace: its crate name, version and built module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Crate and directory name, e.g. `rate-limit`.
    pub name: String,
    /// The crate version, used as the image tag.
    pub version: String,
    /// The optimized module `make build` writes, `target/filters/<lib>.wasm`.
    pub wasm: PathBuf,
}

/// Every crate under `<root>/filters`, sorted by name, with its module in `wasm_dir`.
pub fn workspace_filters(root: &Path, wasm_dir: &Path) -> Result<Vec<Filter>, Error> {
    let dir = root.join("filters");
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Error::Io(format!("cannot list {}: {e}", dir.display())))?;
    let mut filters = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::Io(e.to_string()))?.path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| Error::Io(format!("bad filter directory {}", path.display())))?
            .to_string();
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", manifest.display())))?;
        let version = package_version(&text)
            .ok_or_else(|| Error::Io(format!("no version = \"...\" in {}", manifest.display())))?;
        let wasm = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        filters.push(Filter {
            name,
            version,
            wasm,
        });
    }
    filters.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(filters)
}

/// The `version = "..."` of a Cargo.toml's `[package]` table.
fn package_version(cargo_toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in cargo_toml.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("version") {
                let value = value.trim_start().strip_prefix('=')?.trim();
                return Some(value.strip_prefix('"')?.strip_suffix('"')?.to_string());
            }
        }
    }
    None
}

/// A blocking client for one registry protocol, on a private single-threaded runtime.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    runtime: tokio::runtime::Runtime,
}

impl Registry {
    /// A client that speaks plain HTTP (`plain_http`, for a loopback or insecure registry) or
    /// HTTPS, with Basic credentials when both `user` and `password` are given.
    pub fn new(plain_http: bool, credentials: Option<(String, String)>) -> Result<Registry, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("tokio runtime: {e}")))?;
        let config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..ClientConfig::default()
        };
        let auth = match credentials {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client: Client::new(config),
            auth,
            runtime,
        })
    }

    /// Pushes the blobs, then the manifest under `reference` (`host[:port]/repo:tag`), and
    /// returns the manifest digest the registry reports.
    pub fn push(&self, reference: &str, image: &WasmImage) -> Result<String, Error> {
        let reference = parse_reference(reference)?;
        let registry = |e: oci_client::errors::OciDistributionError| Error::Registry(e.to_string());
        self.runtime.block_on(async {
            self.client
                .auth(&reference, &self.auth, oci_client::RegistryOperation::Push)
                .await
                .map_err(registry)?;
            for blob in [&image.config, &image.layer] {
                let digest = format!("sha256:{}", sha256_hex(blob));
                if !self
                    .client
                    .blob_exists(&reference, &digest)
                    .await
                    .map_err(registry)?
                {
                    self.client
                        .push_blob(&reference, blob.clone(), &digest)
                        .await
                        .map_err(registry)?;
                }
            }
            self.client
                .push_manifest_raw(
                    &reference,
                    image.manifest.clone(),
                    MANIFEST_MEDIA_TYPE
                        .parse()
                        .map_err(|_| Error::Registry("bad media type".into()))?,
                )
                .await
                .map_err(registry)?;
            Ok::<(), Error>(())
        })?;
        Ok(image.digest())
    }

    /// Pulls `reference` (by tag or `@sha256:` digest) as Istio does: the manifest's sha256 must
    /// equal `expected_sha256`, the layer must match its descriptor's digest, and the layer must
    /// hold a wasm `plugin.wasm`, which is returned.
    pub fn pull(&self, reference: &str, expected_sha256: &str) -> Result<Vec<u8>, Error> {
        let parsed = parse_reference(reference)?;
        let registry = |e: oci_client::errors::OciDistributionError| Error::Registry(e.to_string());
        self.runtime.block_on(async {
            let (manifest, _) = self
                .client
                .pull_manifest_raw(&parsed, &self.auth, &[MANIFEST_MEDIA_TYPE])
                .await
                .map_err(registry)?;
            let actual = sha256_hex(&manifest);
            if actual != expected_sha256 {
                return Err(Error::DigestMismatch {
                    reference: reference.to_string(),
                    actual,
                    expected: expected_sha256.to_string(),
                });
            }
            let layer = compat_layer(&manifest)?;
            let mut blob = Vec::new();
            self.client
                .pull_blob(&parsed, &layer, &mut blob)
                .await
                .map_err(registry)?;
            // pull_blob checks the digest; the size is checked here so a short read is named.
            if blob.len() as i64 != layer.size {
                return Err(Error::Layout(format!(
                    "layer {} has {} bytes, the manifest says {}",
                    layer.digest,
                    blob.len(),
                    layer.size
                )));
            }
            plugin_wasm(&blob)
        })
    }
}

fn parse_reference(reference: &str) -> Result<Reference, Error> {
    reference
        .parse()
        .map_err(|e| Error::Registry(format!("bad image reference {reference}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn an_image_is_a_pure_function_of_the_module() {
        let first = WasmImage::build(MODULE).unwrap();
        assert_eq!(first, WasmImage::build(MODULE).unwrap());
        let mut other = MODULE.to_vec();
        other.push(0);
        assert_ne!(first.sha256(), WasmImage::build(&other).unwrap().sha256());
    }

    #[test]
    fn the_manifest_has_the_compat_layout_istio_accepts() {
        let image = WasmImage::build(MODULE).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(
            manifest["config"]["digest"],
            format!("sha256:{}", sha256_hex(&image.config))
        );
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
        assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
        assert_eq!(
            manifest["layers"][0]["digest"],
            format!("sha256:{}", sha256_hex(&image.layer))
        );
        assert_eq!(manifest["layers"][0]["size"], image.layer.len());
        assert_eq!(
            manifest["annotations"]["module.wasm.image/variant"],
            "compat"
        );
        assert_eq!(
            compat_layer(&image.manifest).unwrap().media_type,
            LAYER_MEDIA_TYPE
        );
        assert_eq!(
            image.digest(),
            format!("sha256:{}", sha256_hex(&image.manifest))
        );
    }

    #[test]
    fn the_layer_is_one_plain_plugin_wasm_file() {
        let image = WasmImage::build(MODULE).unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(image.layer.as_slice()));
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    header.entry_type(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [("plugin.wasm".to_string(), 0o644, 0, tar::EntryType::Regular)]
        );
        assert_eq!(plugin_wasm(&image.layer).unwrap(), MODULE);
    }

    #[test]
    fn broken_layers_and_modules_are_refused() {
        assert!(matches!(
            WasmImage::build(b"not wasm"),
            Err(Error::Layout(_))
        ));
        assert!(matches!(plugin_wasm(b"not gzip"), Err(Error::Layout(_))));
        let mut gzip = GzEncoder::new(Vec::new(), Compression::fast());
        gzip.write_all(&plugin_tar(b"no magic").unwrap()).unwrap();
        let error = plugin_wasm(&gzip.finish().unwrap()).unwrap_err();
        assert_eq!(
            error,
            Error::Layout("plugin.wasm is not a wasm module".into())
        );

        let image = WasmImage::build(MODULE).unwrap();
        let mut manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar".into();
        let error = compat_layer(&serde_json::to_vec(&manifest).unwrap()).unwrap_err();
        assert!(error.to_string().contains("layer media type"), "{error}");
        manifest["layers"] = serde_json::json!([]);
        let error = compat_layer(&serde_json::to_vec(&manifest).unwrap()).unwrap_err();
        assert!(error.to_string().contains("0 layers"), "{error}");
    }

    #[test]
    fn package_versions_are_read_from_the_package_table() {
        let toml =
            "[package]\nname = \"x\"\nversion = \"1.2.3\"\n[dependencies]\nversion = \"9\"\n";
        assert_eq!(package_version(toml).as_deref(), Some("1.2.3"));
        assert_eq!(package_version("[dependencies]\nversion = \"9\"\n"), None);
    }

    #[test]
    fn records_name_the_default_repository_and_the_manifest_digest() {
        let image = WasmImage::build(MODULE).unwrap();
        let record = ImageRecord::for_filter("rate-limit", "0.1.0", &image);
        assert_eq!(
            record.url,
            "oci://registry.example.com/proxy-wasm-filters/rate-limit:0.1.0"
        );
        assert_eq!(record.sha256, image.sha256());
        assert_eq!(record.sha256.len(), 64);
        let parsed: ImageRecord = serde_json::from_str(&record.to_json()).unwrap();
        assert_eq!(parsed, record);
    }
}
