//! Project tasks: `cargo xtask <task>`.
//!
//! - `plugins`: build the guest components (adds the wasm32-wasip2 target if missing).
//! - `test`: build the plugins, then run every test. Needs PostgreSQL (see README).
//! - `lint`: rustfmt and clippy (`-D warnings`) over the host and the plugins.
//! - `quickstart`: build everything and run a few governed calls on the embedded store.
//! - `bench`: the per-call benchmark (writes nothing; prints figures).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root();
    match task.as_str() {
        "plugins" => plugins(&root),
        "test" => {
            plugins(&root)?;
            run(cargo(&root).args(["test", "--workspace", "--locked"]))
        }
        "lint" => lint(&root),
        "quickstart" => quickstart(&root),
        "bench" => {
            plugins(&root)?;
            run(cargo(&root).args(["bench", "-p", "warden", "--bench", "call", "--locked"]))
        }
        _ => bail!("usage: cargo xtask <plugins|test|lint|quickstart|bench>"),
    }
}

fn repo_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn cargo(dir: &Path) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(dir);
    command
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Builds every guest component into `plugins/target`, where their manifests point.
fn plugins(root: &Path) -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup; the wasm32-wasip2 target is needed to build plugins")?;
    if !String::from_utf8_lossy(&installed.stdout).contains("wasm32-wasip2") {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    }
    let plugins = root.join("plugins");
    run(cargo(&plugins)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(plugins.join("target")))
}

fn lint(root: &Path) -> anyhow::Result<()> {
    let plugins = root.join("plugins");
    run(cargo(root).args(["fmt", "--all", "--check"]))?;
    run(cargo(&plugins).args(["fmt", "--all", "--check"]))?;
    run(cargo(root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo(&plugins)
        .args([
            "clippy",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(plugins.join("target"))
        .args(["--", "-D", "warnings"]))
}

fn quickstart(root: &Path) -> anyhow::Result<()> {
    plugins(root)?;
    // The dev profile optimises dependencies (wasmtime, regorus), so it is fast
    // enough for the demo and shares its build with the test suite.
    run(cargo(root).args(["build", "--locked", "-p", "warden"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let warden = target.join("debug").join("warden");
    let config = root.join("examples/quickstart/warden.toml");
    // (what it shows, arguments, expected exit code: see host/src/main.rs)
    let steps: &[(&str, &[&str], i32)] = &[
        ("the tools the plugins offer", &["tools"], 0),
        (
            "alice (analyst) transforms text: allowed",
            &[
                "call",
                "text.transform",
                r#"{"text": "governed call", "op": "upper"}"#,
                "--as",
                "alice",
            ],
            0,
        ),
        (
            "alice reads a file inside the granted directory: allowed",
            &[
                "call",
                "files.read",
                r#"{"path": "notes.txt"}"#,
                "--as",
                "alice",
            ],
            0,
        ),
        (
            "alice tries /etc/passwd: the sandbox has no such file",
            &[
                "call",
                "files.read",
                r#"{"path": "/etc/passwd"}"#,
                "--as",
                "alice",
            ],
            5,
        ),
        (
            "alice tries to fetch a URL: her role does not grant it",
            &[
                "call",
                "fetch.get",
                r#"{"url": "https://example.com/"}"#,
                "--as",
                "alice",
            ],
            3,
        ),
        (
            "bob (researcher) fetches a host off the allow-list: denied by policy",
            &[
                "call",
                "fetch.get",
                r#"{"url": "https://evil.example.net/"}"#,
                "--as",
                "bob",
            ],
            3,
        ),
        (
            "bad arguments are rejected before policy or plugin",
            &[
                "call",
                "text.transform",
                r#"{"text": "x", "op": "shout"}"#,
                "--as",
                "alice",
            ],
            4,
        ),
        (
            "the last records of the audit trail",
            &["audit", "tail", "-n", "3"],
            0,
        ),
        ("verify the hash chains", &["audit", "verify"], 0),
    ];
    for (title, args, expected) in steps {
        println!("\n== {title}\n$ warden {}", args.join(" "));
        let status = Command::new(&warden)
            .arg("--config")
            .arg(&config)
            .args(*args)
            .status()
            .with_context(|| format!("running {}", warden.display()))?;
        let code = status.code().unwrap_or(-1);
        println!("(exit {code})");
        if code != *expected {
            bail!(
                "`warden {}` exited {code}, expected {expected}",
                args.join(" ")
            );
        }
    }
    println!(
        "\nServe the HTTP API with:\n  {} --config {} serve",
        warden.display(),
        config.display()
    );
    Ok(())
}
