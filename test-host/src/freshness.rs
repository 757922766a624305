//! Whether a module `make build` wrote is older than the sources it is built from, so a test never
//! passes on the previous build of a filter that was edited since.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Sources every module is built from, relative to the workspace root: the module builder, sdk-ext
/// and the feature-unifying crate it depends on, the lock file and the build settings. A missing
/// one is skipped.
const COMMON_SOURCES: &[&str] = &[
    "filters/chain/src",
    "filters/chain/Cargo.toml",
    "sdk-ext/src",
    "sdk-ext/Cargo.toml",
    "workspace-hack/Cargo.toml",
    "workspace-hack/src",
    "Cargo.lock",
    "Cargo.toml",
    ".cargo/config.toml",
];

/// Directories inside a filter crate that never go into its module.
const NOT_MODULE_SOURCES: &[&str] = &["tests", "benches", "bench", "scenarios", "target"];

/// The source files module `name` (`jwt_auth`, `chain`) is built from, below `root`: its filter
/// crate (`filters/jwt-auth`: `src/`, `Cargo.toml` and those of crates nested in it), or every
/// filter for `chain`, plus [`COMMON_SOURCES`]. Empty when `name` is no filter of `root`.
pub fn module_sources(root: &Path, name: &str) -> Vec<PathBuf> {
    let filters = root.join("filters");
    let crates: Vec<PathBuf> = if name == "chain" {
        let Ok(entries) = std::fs::read_dir(&filters) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|dir| dir.file_name().is_some_and(|n| n != "chain"))
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .collect()
    } else {
        let dir = filters.join(name.replace('_', "-"));
        if !dir.join("Cargo.toml").is_file() {
            return Vec::new();
        }
        vec![dir]
    };
    let mut files = Vec::new();
    for dir in &crates {
        crate_sources(dir, &mut files);
    }
    for common in COMMON_SOURCES {
        collect_files(&root.join(common), &mut files);
    }
    files
}

/// `src/**` and `Cargo.toml` (and `build.rs`) of the crate in `dir` and of crates nested in it.
fn crate_sources(dir: &Path, files: &mut Vec<PathBuf>) {
    for file in ["Cargo.toml", "build.rs"] {
        let path = dir.join(file);
        if path.is_file() {
            files.push(path);
        }
    }
    collect_files(&dir.join("src"), files);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let skipped = entry.file_name().to_str().is_none_or(|name| {
            name == "src" || name.starts_with('.') || NOT_MODULE_SOURCES.contains(&name)
        });
        if !skipped && path.join("Cargo.toml").is_file() {
            crate_sources(&path, files);
        }
    }
}

/// Every file at or below `path`.
fn collect_files(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.filter_map(Result::ok) {
            collect_files(&entry.path(), files);
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Checks module `wasm` (named `name`, as in `target/filters/<name>.wasm`) against the sources
/// under `root` it is built from. `Err` says what to run: the module is missing, or a source is
/// newer than it (the newest is named). A name that is no filter of `root` is not checked.
pub fn check_module(root: &Path, wasm: &Path, name: &str) -> Result<(), String> {
    let sources = module_sources(root, name);
    if sources.is_empty() {
        return Ok(());
    }
    let rebuild = format!(
        "run `make build` (or `make test FILTER={}`)",
        name.replace('_', "-")
    );
    let Some(built) = modified(wasm) else {
        return Err(format!("{} does not exist: {rebuild}", wasm.display()));
    };
    let newest = sources
        .iter()
        .filter_map(|path| modified(path).map(|time| (time, path)))
        .max_by_key(|(time, _)| *time);
    match newest {
        Some((time, path)) if time > built => {
            let later = time.duration_since(built).unwrap_or_default().as_secs();
            Err(format!(
                "{} is older than its sources: {} changed {later}s after it was built; {rebuild}",
                wasm.display(),
                path.strip_prefix(root).unwrap_or(path).display(),
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{create_dir_all, File};
    use std::time::Duration;

    /// A workspace in a scratch directory, with file times set relative to a fixed instant.
    struct Workspace {
        root: PathBuf,
        epoch: SystemTime,
    }

    impl Workspace {
        fn new(label: &str) -> Workspace {
            let root = std::env::temp_dir().join(format!(
                "test-host-freshness-{label}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&root);
            let workspace = Workspace {
                root,
                epoch: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            };
            for file in [
                "Cargo.toml",
                "Cargo.lock",
                "sdk-ext/Cargo.toml",
                "sdk-ext/src/lib.rs",
                "filters/chain/Cargo.toml",
                "filters/chain/src/lib.rs",
                "filters/auth/Cargo.toml",
                "filters/auth/src/lib.rs",
                "filters/auth/src/reply.rs",
                "filters/auth/tests/unit.rs",
                "filters/auth/scenarios/basic.json",
                "filters/auth/README.md",
                "filters/auth/crypto/Cargo.toml",
                "filters/auth/crypto/src/lib.rs",
                "filters/auth/crypto/benches/rsa.rs",
                "filters/limit/Cargo.toml",
                "filters/limit/src/lib.rs",
            ] {
                workspace.write(file, 0);
            }
            workspace.write("target/filters/auth.wasm", 10);
            workspace.write("target/filters/chain.wasm", 10);
            workspace
        }

        /// Creates or rewrites `file`, modified `seconds` after the epoch.
        fn write(&self, file: &str, seconds: u64) {
            let path = self.root.join(file);
            if let Some(dir) = path.parent() {
                create_dir_all(dir).unwrap();
            }
            let handle = File::create(&path).unwrap();
            handle
                .set_modified(self.epoch + Duration::from_secs(seconds))
                .unwrap();
        }

        fn check(&self, name: &str) -> Result<(), String> {
            let wasm = self.root.join(format!("target/filters/{name}.wasm"));
            check_module(&self.root, &wasm, name)
        }
    }

    impl Drop for Workspace {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn a_module_newer_than_every_source_is_fresh() {
        let workspace = Workspace::new("fresh");
        assert_eq!(workspace.check("auth"), Ok(()));
        assert_eq!(workspace.check("chain"), Ok(()));
    }

    #[test]
    fn an_edited_filter_source_makes_its_module_and_the_chain_stale() {
        let workspace = Workspace::new("edited");
        workspace.write("filters/auth/src/reply.rs", 20);
        let error = workspace.check("auth").unwrap_err();
        assert!(
            error.contains("auth.wasm is older than its sources"),
            "{error}"
        );
        assert!(
            error.contains("filters/auth/src/reply.rs changed 10s after"),
            "{error}"
        );
        assert!(
            error.contains("`make build` (or `make test FILTER=auth`)"),
            "{error}"
        );
        let error = workspace.check("chain").unwrap_err();
        assert!(error.contains("filters/auth/src/reply.rs"), "{error}");
    }

    #[test]
    fn the_newest_source_is_named() {
        let workspace = Workspace::new("newest");
        workspace.write("filters/auth/src/lib.rs", 30);
        workspace.write("sdk-ext/src/lib.rs", 40);
        workspace.write("Cargo.lock", 35);
        let error = workspace.check("auth").unwrap_err();
        assert!(
            error.contains("sdk-ext/src/lib.rs changed 30s after"),
            "{error}"
        );
    }

    #[test]
    fn shared_sources_and_nested_crates_count() {
        for source in [
            "Cargo.lock",
            "Cargo.toml",
            "sdk-ext/Cargo.toml",
            "sdk-ext/src/lib.rs",
            "filters/chain/src/lib.rs",
            "filters/chain/Cargo.toml",
            "filters/auth/Cargo.toml",
            "filters/auth/crypto/src/lib.rs",
            "filters/auth/crypto/Cargo.toml",
        ] {
            let workspace = Workspace::new("shared");
            workspace.write(source, 11);
            let error = workspace.check("auth").unwrap_err();
            assert!(error.contains(source), "{source}: {error}");
        }
    }

    #[test]
    fn tests_docs_and_other_filters_do_not_make_a_module_stale() {
        let workspace = Workspace::new("unrelated");
        for file in [
            "filters/auth/tests/unit.rs",
            "filters/auth/scenarios/basic.json",
            "filters/auth/README.md",
            "filters/auth/crypto/benches/rsa.rs",
            "filters/limit/src/lib.rs",
        ] {
            workspace.write(file, 20);
        }
        assert_eq!(workspace.check("auth"), Ok(()));
        // The chain links every filter, so another filter's edit is the chain's.
        let error = workspace.check("chain").unwrap_err();
        assert!(error.contains("filters/limit/src/lib.rs"), "{error}");
    }

    #[test]
    fn a_missing_module_says_to_build_and_an_unknown_name_is_not_checked() {
        let workspace = Workspace::new("missing");
        let error = workspace.check("limit").unwrap_err();
        assert!(
            error.contains("limit.wasm does not exist: run `make build`"),
            "{error}"
        );
        assert_eq!(workspace.check("nothing"), Ok(()));
    }
}
