//! `istio-manifests write` (make istio) and `istio-manifests check` (make istio-validate).

use istio_manifests::{check, schema, service, workspace_root, write_all};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = workspace_root();
    match std::env::args().nth(1).as_deref() {
        Some("write") => match write_all(&root) {
            Ok(paths) => {
                for path in paths {
                    println!("wrote {}", path.display());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("make istio: {error}");
                ExitCode::FAILURE
            }
        },
        Some("check") => match check::check(&root, &schema::Models::locate(&root)) {
            Ok(findings) if findings.is_empty() => {
                for warning in service::warnings(&root) {
                    eprintln!("warning: {warning}");
                }
                println!("istio manifests: all valid and up to date");
                ExitCode::SUCCESS
            }
            Ok(findings) => {
                for warning in service::warnings(&root) {
                    eprintln!("warning: {warning}");
                }
                for finding in &findings {
                    eprintln!("{finding}");
                }
                eprintln!("istio manifests: {} problem(s)", findings.len());
                ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("make istio-validate: {error}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("usage: istio-manifests write|check");
            ExitCode::from(2)
        }
    }
}
