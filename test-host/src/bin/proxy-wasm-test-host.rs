//! proxy-wasm-test-host: check a module, or play a scenario against it, without Envoy.
//!
//! ```text
//! proxy-wasm-test-host check <module.wasm> [--config <json file>]
//! proxy-wasm-test-host run <module.wasm> --scenario <file> [--config <json file>]
//! ```
//! Exit status: 0 when the module loads and configures (check) or every expectation holds (run),
//! 1 with a one-line reason otherwise, 2 for bad usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use test_host::{scenario, AbiVersion, Error, TestHost};

const USAGE: &str = "usage: proxy-wasm-test-host check <module.wasm> [--config <json file>]\n       proxy-wasm-test-host run <module.wasm> --scenario <file> [--config <json file>]";

struct Arguments {
    command: String,
    module: PathBuf,
    config: Option<PathBuf>,
    scenario: Option<PathBuf>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Arguments, String> {
    let command = args.next().ok_or("missing command")?;
    let mut module = None;
    let mut config = None;
    let mut scenario = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?)),
            "--scenario" => {
                scenario = Some(PathBuf::from(args.next().ok_or("--scenario needs a file")?))
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other if module.is_none() => module = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(Arguments {
        command,
        module: module.ok_or("missing module")?,
        config,
        scenario,
    })
}

/// One line: the first line of the error, then the module's last stderr line when it trapped.
fn one_line(error: &Error) -> String {
    let text = error.to_string();
    let mut line = text.lines().next().unwrap_or_default().to_string();
    if let Error::Trap { stderr, .. } = error {
        if let Some(last) = stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty() && !line.starts_with("note:"))
        {
            line.push_str(&format!(" (module stderr: {})", last.trim()));
        }
    }
    line
}

fn read_config(path: Option<&Path>) -> Result<Option<serde_json::Value>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn check(arguments: &Arguments) -> Result<String, String> {
    let wasm = std::fs::read(&arguments.module)
        .map_err(|e| format!("{}: {e}", arguments.module.display()))?;
    let (abi, unsupported) = test_host::inspect(&wasm).map_err(|e| one_line(&e))?;
    let abi = match abi {
        AbiVersion::V0_2_0 => "0.2.0",
        AbiVersion::V0_2_1 => "0.2.1",
    };
    if !unsupported.is_empty() {
        return Err(format!(
            "ABI {abi}, unsupported imports: {}",
            unsupported.join(", ")
        ));
    }
    let mut builder = TestHost::new().plugin_from_bytes(wasm);
    if let Some(config) = read_config(arguments.config.as_deref())? {
        builder = builder.config(config);
    }
    builder
        .start()
        .map_err(|e| format!("ABI {abi}: {}", one_line(&e)))?;
    Ok(format!("ok: ABI {abi}, started and configured"))
}

fn run(arguments: &Arguments) -> Result<String, String> {
    let path = arguments
        .scenario
        .as_deref()
        .ok_or("run needs --scenario <file>")?;
    let scenario = scenario::Scenario::load(path).map_err(|e| one_line(&e))?;
    let config = read_config(arguments.config.as_deref())?;
    let reports =
        scenario::run(&scenario, &arguments.module, config.as_ref()).map_err(|e| one_line(&e))?;
    let mut failed = 0;
    for report in &reports {
        if report.failures.is_empty() {
            println!("PASS {}", report.name);
        } else {
            failed += 1;
            println!("FAIL {}", report.name);
            for failure in &report.failures {
                println!("     {failure}");
            }
        }
    }
    if failed == 0 {
        Ok(format!(
            "ok: {} of {} exchanges passed",
            reports.len(),
            reports.len()
        ))
    } else {
        Err(format!("{failed} of {} exchanges failed", reports.len()))
    }
}

fn main() -> ExitCode {
    let arguments = match parse(std::env::args().skip(1)) {
        Ok(arguments) => arguments,
        Err(reason) => {
            eprintln!("{reason}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match arguments.command.as_str() {
        "check" => check(&arguments),
        "run" => run(&arguments),
        other => {
            eprintln!("unknown command {other}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("error: {reason}");
            ExitCode::FAILURE
        }
    }
}
