//! What `docs/deploy.md` ships is real: the Kubernetes manifests validate
//! against the Kubernetes schemas, the config in the ConfigMap starts a host
//! with the bundle image's layout, and the Dockerfile's bundle builds every
//! shipped plugin where its manifest expects it.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{TestDb, repo};

/// The manifests `kubectl apply -k deploy/kubernetes` applies.
const MANIFESTS: &[&str] = &[
    "configmap.yaml",
    "secret.yaml",
    "deployment.yaml",
    "service.yaml",
    "pdb.yaml",
    "hpa.yaml",
];

/// The oldest Kubernetes the manifests are for (`preStop.sleep` is 1.30's).
const KUBERNETES: &str = "1.30.0";

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    let python = crate::mcp::python();
    Command::new(python.with_file_name("kubernetes-validate"))
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn the_kubernetes_manifests_validate_against_the_kubernetes_schemas() {
    let kustomization =
        std::fs::read_to_string(kubernetes_dir().join("kustomization.yaml")).unwrap();
    for file in MANIFESTS {
        assert!(
            kustomization.contains(&format!("  - {file}\n")),
            "kustomization.yaml does not apply {file}"
        );
    }
    let files: Vec<_> = MANIFESTS.iter().map(|f| kubernetes_dir().join(f)).collect();
    let run = validate(&files);
    let report =
        String::from_utf8_lossy(&run.stdout).to_string() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{report}");
    assert_eq!(
        report.matches(" passed for resource ").count(),
        MANIFESTS.len(),
        "{report}"
    );

    // The validator is strict: a misspelt field fails.
    let dir = tempfile::tempdir().unwrap();
    let deployment = std::fs::read_to_string(&files[2]).unwrap();
    let misspelt = dir.path().join("deployment.yaml");
    std::fs::write(
        &misspelt,
        deployment.replace("readinessProbe:", "readinessProbes:"),
    )
    .unwrap();
    let run = validate(&[misspelt]);
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("readinessProbes"),
        "{run:?}"
    );
}

/// `warden.toml` as the ConfigMap carries it.
fn shipped_config() -> String {
    let configmap = std::fs::read_to_string(kubernetes_dir().join("configmap.yaml")).unwrap();
    let (_, rest) = configmap.split_once("  warden.toml: |\n").unwrap();
    rest.lines()
        .map(|line| line.strip_prefix("    ").unwrap_or(line.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_shipped_config_starts_a_host_from_the_bundle_layout() {
    let db = TestDb::create().await;
    let cache = tempfile::tempdir().unwrap();
    // The bundle image's /opt/warden holds plugins/ and policy/ as the
    // repository does.
    let bundle = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("plugins"), bundle.path().join("plugins")).unwrap();
    std::os::unix::fs::symlink(repo().join("policies"), bundle.path().join("policy")).unwrap();
    let text = shipped_config()
        .replace("/opt/warden", bundle.path().to_str().unwrap())
        .replace("/var/cache/warden", cache.path().to_str().unwrap())
        .replace("postgres://warden@postgres.warden.svc:5432/warden", &db.url);
    let path = cache.path().join("warden.toml");
    std::fs::write(&path, &text).unwrap();
    let config = warden::config::Config::load(&path).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:8080");
    assert_eq!(
        config.sessions.store,
        warden::config::SessionStore::Database
    );
    let kernel = warden::Kernel::start(&config).await.unwrap();
    assert!(kernel.registry().tool("text.transform").is_some());
    assert!(kernel.readiness().await.ready);
}

/// The plugins the Dockerfile's bundle builds (its `names=` list).
fn bundled_plugins(dockerfile: &str) -> Vec<String> {
    let (_, rest) = dockerfile.split_once("names=\"").unwrap();
    let (names, _) = rest.split_once('"').unwrap();
    names.split_whitespace().map(str::to_string).collect()
}

#[test]
fn the_bundle_image_builds_every_shipped_plugin_where_its_manifest_expects_it() {
    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile")).unwrap();
    let bundled = bundled_plugins(&dockerfile);
    let workspace = std::fs::read_to_string(repo().join("plugins/Cargo.toml")).unwrap();
    let members = workspace
        .lines()
        .find_map(|l| l.strip_prefix("members = "))
        .unwrap();
    // Every plugin of the workspace but the SDK and the hostile fixtures.
    let shipped: Vec<String> = members
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| m != "sdk" && !m.starts_with("hostile"))
        .collect();
    assert_eq!(bundled, shipped, "the Dockerfile's bundle and plugins/");
    for name in &bundled {
        let dir = repo().join("plugins").join(name);
        let manifest = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
        let component =
            format!("component = \"../target/wasm32-wasip2/release/warden_{name}.wasm\"");
        assert!(manifest.contains(&component), "{name}: {manifest}");
        let cargo = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            cargo.contains(&format!("name = \"warden-{name}\"")),
            "{name}'s crate is not warden-{name}"
        );
    }
}
