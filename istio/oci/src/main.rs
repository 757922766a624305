//! `istio-oci records` writes `istio/<filter>/image.json` for every filter; `istio-oci push
//! --registry host[:port]` pushes every filter's image there and pulls it back to check it.

use istio_oci::{image_reference, workspace_filters, ImageRecord, Registry, WasmImage};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: istio-oci records [--check]
       istio-oci push --registry HOST[:PORT] [--repository PREFIX] [--plain-http]
Modules are read from $FILTER_WASM_DIR (default target/filters); run from the workspace root.
push uses OCI_USERNAME and OCI_PASSWORD when both are set, and plain HTTP for --plain-http or a
loopback registry.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("records") => records(&args[1..]),
        Some("push") => push(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("istio-oci: {message}");
            ExitCode::FAILURE
        }
    }
}

fn wasm_dir() -> PathBuf {
    std::env::var_os("FILTER_WASM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/filters"))
}

/// Each filter with its built module and image.
fn images() -> Result<Vec<(istio_oci::Filter, WasmImage)>, String> {
    let filters = workspace_filters(".".as_ref(), &wasm_dir()).map_err(|e| e.to_string())?;
    filters
        .into_iter()
        .map(|filter| {
            let wasm = std::fs::read(&filter.wasm)
                .map_err(|e| format!("{}: {e} (run make build)", filter.wasm.display()))?;
            let image =
                WasmImage::build(&wasm).map_err(|e| format!("{}: {e}", filter.wasm.display()))?;
            Ok((filter, image))
        })
        .collect()
}

fn records(args: &[String]) -> Result<(), String> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => return Err(USAGE.to_string()),
    };
    let mut stale = Vec::new();
    for (filter, image) in images()? {
        let record = ImageRecord::for_filter(&filter.name, &filter.version, &image);
        let path = PathBuf::from("istio").join(&filter.name).join("image.json");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == record.to_json() {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            std::fs::create_dir_all(path.parent().unwrap_or(".".as_ref()))
                .and_then(|()| std::fs::write(&path, record.to_json()))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "{}  {}  sha256 {}",
                path.display(),
                record.url,
                record.sha256
            );
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} do not match the built modules: run make istio",
            stale.join(", ")
        ))
    }
}

fn push(args: &[String]) -> Result<(), String> {
    let mut registry = None;
    let mut prefix = "proxy-wasm-filters".to_string();
    let mut plain_http = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--registry" => registry = args.next().cloned(),
            "--repository" => prefix = args.next().cloned().ok_or(USAGE)?,
            "--plain-http" => plain_http = true,
            _ => return Err(USAGE.to_string()),
        }
    }
    let registry = registry.ok_or(USAGE)?;
    let host = registry.split(':').next().unwrap_or_default();
    plain_http |= matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    let credentials = match (std::env::var("OCI_USERNAME"), std::env::var("OCI_PASSWORD")) {
        (Ok(user), Ok(password)) => Some((user, password)),
        _ => None,
    };
    let client = Registry::new(plain_http, credentials).map_err(|e| e.to_string())?;
    for (filter, image) in images()? {
        let reference = image_reference(
            &format!("{registry}/{prefix}"),
            &filter.name,
            &filter.version,
        );
        let digest = client
            .push(&reference, &image)
            .map_err(|e| format!("push {reference}: {e}"))?;
        // Pull it back the way Istio will, so a registry that rewrites manifests is caught here.
        client
            .pull(&reference, &image.sha256())
            .map_err(|e| format!("pull {reference}: {e}"))?;
        println!("oci://{reference}  sha256 {}", &digest["sha256:".len()..]);
    }
    Ok(())
}
