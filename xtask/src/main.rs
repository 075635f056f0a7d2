//! Project tasks: `cargo xtask <task>`.
//!
//! - `plugins`: build the guest components: the Rust ones (adds the wasm32-wasip2
//!   target if missing), `py-text` with componentize-py (in a venv it creates) and
//!   `js-text` with componentize-js (after `npm ci`). Needs python3 and npm.
//! - `test`: build the plugins, then run every test of the host workspace and
//!   the built-in verifiers' own tests (natively). Needs PostgreSQL (see README).
//! - `lint`: rustfmt and clippy (`-D warnings`) over the host and the plugins.
//! - `quickstart`: build everything and run a few governed calls on the embedded store.
//! - `bench`: the per-stage criterion suite, then the end-to-end benchmarks
//!   of governed calls and of the LLM gateway (prints figures; criterion keeps
//!   its history under `target/criterion`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = repo_root();
    match task.as_str() {
        "plugins" => plugins(&root),
        "test" => {
            plugins(&root)?;
            run(cargo(&root).args(["test", "--workspace", "--locked"]))?;
            plugin_tests(&root)
        }
        "lint" => lint(&root),
        "quickstart" => quickstart(&root),
        "bench" => {
            plugins(&root)?;
            run(cargo(&root).args([
                "bench", "-p", "warden", "--locked", "--bench", "stages", "--bench", "call",
                "--bench", "gateway", "--bench", "ledger",
            ]))
        }
        _ => bail!("usage: cargo xtask <plugins|test|lint|quickstart|bench>"),
    }
}

/// The checkout this task runs for. `cargo run` sets `CARGO_MANIFEST_DIR` at
/// run time too; that one wins, because checkouts sharing a target directory
/// (CI's cache) share one compiled xtask, which would otherwise work on the
/// checkout that compiled it.
fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
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

/// The port `examples/quickstart/warden.toml` gives the `demo` model's origin.
const FAKE_PROVIDER_PORT: u16 = 18089;

/// `tests/e2e/fake_provider.py` serving the quickstart's model; killed when dropped.
struct FakeProvider(std::process::Child);

impl FakeProvider {
    fn start(root: &Path) -> anyhow::Result<FakeProvider> {
        use std::io::BufRead;
        let python = std::env::var("WARDEN_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(root.join("tests/e2e/fake_provider.py"))
            .args(["--port", &FAKE_PROVIDER_PORT.to_string()])
            .args(["--key", "quickstart-provider-key"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the fake provider with `{python}`"))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            std::io::BufReader::new(stdout).read_line(&mut line)?;
        }
        if !line.contains("\"port\"") {
            let _ = child.kill();
            bail!(
                "the fake provider did not start on 127.0.0.1:{FAKE_PROVIDER_PORT} (is the port \
                 taken? free it, or change it in examples/quickstart/warden.toml and xtask)"
            );
        }
        Ok(FakeProvider(child))
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds every guest component into `plugins/target`, where their manifests point.
fn plugins(root: &Path) -> anyhow::Result<()> {
    rust_plugins(root)?;
    python_plugin(root)?;
    javascript_plugin(root)
}

fn rust_plugins(root: &Path) -> anyhow::Result<()> {
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

/// The built-in verifiers' own tests (rules, checksums, their evaluation
/// sets' precision and recall), natively: their logic is plain Rust.
fn plugin_tests(root: &Path) -> anyhow::Result<()> {
    let plugins = root.join("plugins");
    run(cargo(&plugins)
        .args([
            "test",
            "--locked",
            "-p",
            "warden-plugin-sdk",
            "-p",
            "warden-secrets",
            "-p",
            "warden-pii",
            "-p",
            "warden-contract",
            "-p",
            "warden-grounding",
            "-p",
            "warden-injection",
            "-p",
            "warden-openai",
            "-p",
            "warden-anthropic",
            "-p",
            "warden-ollama",
            "--target-dir",
        ])
        .arg(plugins.join("target")))
}

/// `plugins/py-text` -> `plugins/target/py/pytext.wasm` with componentize-py,
/// pinned (with hashes) in the plugin's `requirements.txt` and installed into
/// `plugins/target/py-venv`. Skipped while the component is newer than its inputs.
fn python_plugin(root: &Path) -> anyhow::Result<()> {
    let source = root.join("plugins/py-text");
    let target = root.join("plugins/target");
    let output = target.join("py/pytext.wasm");
    let wit = root.join("wit/plugin.wit");
    let mut inputs = build_inputs(&source)?;
    inputs.push(wit.clone());
    if is_fresh(&output, &inputs)? {
        return Ok(());
    }
    let componentize_py = python_venv(&target.join("py-venv"), &source.join("requirements.txt"))?;
    let started = Instant::now();
    let partial = output.with_extension("wasm.partial");
    std::fs::create_dir_all(target.join("py"))?;
    let mut command = Command::new(componentize_py);
    command
        .current_dir(&source)
        // componentize-py adds an active venv's site-packages to the app's path;
        // the component must depend on nothing but this folder.
        .env_remove("VIRTUAL_ENV")
        .arg("--quiet")
        .arg("--wit-path")
        .arg(&wit)
        .args(["--world", "tool", "componentize"])
        // Without this the component imports every WASI interface, wasi:sockets
        // included, which the host refuses by design. With it, the imports are
        // `warden:plugin/log` and `types` only: WASI calls trap (CPython's
        // startup ran at build time, so its random hash seed is fixed there).
        .arg("--stub-wasi")
        .args(["--python-path", ".", "app", "--output"])
        .arg(&partial);
    run(&mut command).context(
        "building plugins/py-text with componentize-py; if the venv is broken, \
         delete plugins/target/py-venv and run `cargo xtask plugins` again",
    )?;
    finish(&partial, &output, started)
}

/// Creates `venv` with componentize-py installed from `requirements` unless
/// it already holds exactly that; returns the path of the `componentize-py` program.
fn python_venv(venv: &Path, requirements: &Path) -> anyhow::Result<PathBuf> {
    let bin = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let program = bin.join("componentize-py");
    // A copy of the requirements it was made from: reinstall when the pin changes.
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    if program.exists() && std::fs::read(&stamp).ok().as_ref() == Some(&wanted) {
        return Ok(program);
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("removing the outdated {}", venv.display()))?;
    }
    let python = std::env::var("WARDEN_PYTHON").unwrap_or_else(|_| "python3".into());
    run_program(
        Command::new(&python).args(["-m", "venv"]).arg(venv),
        &format!(
            "`{python}` was not found: building plugins/py-text needs Python 3 with its venv \
             module (Debian/Ubuntu: `apt-get install python3 python3-venv`), or set WARDEN_PYTHON \
             to an interpreter"
        ),
        &format!(
            "creating the venv {} (Debian/Ubuntu without the venv module: \
             `apt-get install python3-venv`)",
            venv.display()
        ),
    )?;
    run(Command::new(bin.join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "--requirement",
        ])
        .arg(requirements))
    .with_context(|| {
        format!(
            "installing componentize-py from PyPI into {} (needs PyPI to be reachable)",
            venv.display()
        )
    })?;
    std::fs::write(&stamp, wanted)?;
    Ok(program)
}

/// `plugins/js-text` -> `plugins/target/js/jstext.wasm` with componentize-js,
/// pinned with its dependencies in the plugin's `package-lock.json`. Skipped
/// while the component is newer than its inputs.
fn javascript_plugin(root: &Path) -> anyhow::Result<()> {
    let source = root.join("plugins/js-text");
    let output = root.join("plugins/target/js/jstext.wasm");
    let mut inputs = build_inputs(&source)?;
    inputs.push(root.join("wit/plugin.wit"));
    if is_fresh(&output, &inputs)? {
        return Ok(());
    }
    let lock = source.join("package-lock.json");
    // npm rewrites this copy of the lock file on every install.
    let installed = source.join("node_modules/.package-lock.json");
    if !is_fresh(&installed, &[lock, source.join("package.json")])? {
        run_program(
            Command::new("npm").current_dir(&source).args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
            ]),
            "npm was not found: building plugins/js-text needs Node.js 20 or later with npm \
             (Debian/Ubuntu: `apt-get install nodejs npm`)",
            "installing plugins/js-text's build tools from its package-lock.json \
             (needs the npm registry to be reachable)",
        )?;
    }
    let started = Instant::now();
    let partial = output.with_extension("wasm.partial");
    run_program(
        Command::new("node")
            .current_dir(&source)
            .arg("build.mjs")
            .arg(&partial),
        "node was not found: building plugins/js-text needs Node.js 20 or later \
         (Debian/Ubuntu: `apt-get install nodejs npm`)",
        "building plugins/js-text with componentize-js (plugins/js-text/build.mjs)",
    )?;
    finish(&partial, &output, started)
}

/// The files under a non-Rust plugin's folder that its component is built
/// from: everything but installed dependencies, caches and the manifest.
fn build_inputs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if matches!(name, "node_modules" | "__pycache__" | "plugin.toml") {
            continue;
        }
        if path.is_dir() {
            files.extend(build_inputs(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

/// Whether `output` exists and is newer than every one of `inputs`.
fn is_fresh(output: &Path, inputs: &[PathBuf]) -> anyhow::Result<bool> {
    let modified = |path: &Path| -> anyhow::Result<SystemTime> {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .with_context(|| format!("reading the modification time of {}", path.display()))
    };
    let Ok(built) = modified(output) else {
        return Ok(false);
    };
    for input in inputs {
        if modified(input)? > built {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Moves a finished build into place (an interrupted build never leaves a
/// partial component that looks up to date) and says what it built.
fn finish(partial: &Path, output: &Path, started: Instant) -> anyhow::Result<()> {
    std::fs::rename(partial, output)
        .with_context(|| format!("moving {} into place", partial.display()))?;
    let size = std::fs::metadata(output)?.len();
    println!(
        "built {} ({:.1} MB) in {:.1} s",
        output.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs a program from outside the Rust toolchain: `missing` is the error
/// when it is not installed, `failed` says what it was doing when it fails.
fn run_program(command: &mut Command, missing: &str, failed: &str) -> anyhow::Result<()> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("{failed}: {command:?} failed with {status}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{missing}"),
        Err(e) => Err(e).with_context(|| format!("{failed}: running {command:?}")),
    }
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
            "bad arguments are rejected before the plugin runs",
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
            "bob (researcher) asks the `demo` model through the gateway: allowed",
            &["chat", "demo", "hello from the quickstart", "--as", "bob"],
            0,
        ),
        (
            "alice (analyst) asks it too: her role grants no model",
            &["chat", "demo", "hello", "--as", "alice"],
            3,
        ),
        (
            "the last records of the audit trail",
            &["audit", "tail", "-n", "3"],
            0,
        ),
        ("verify the hash chains", &["audit", "verify"], 0),
    ];
    // The model's provider: a fake one that echoes, on the port the
    // example config names.
    println!("\n== a fake LLM provider for the `demo` model, on 127.0.0.1:{FAKE_PROVIDER_PORT}");
    let _provider = FakeProvider::start(root)?;
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
