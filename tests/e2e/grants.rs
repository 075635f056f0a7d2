//! Grant redirection (issue 12, class 1): a plugin holding a read-write grant
//! must not be able to turn another grant — its own or another plugin's —
//! into a door to the rest of the host. Grants are opened once at load, and a
//! config where a grant lies inside, equals or contains a read-write grant is
//! refused.

use crate::fixtures;
use std::path::Path;

use serde_json::{Value, json};
use warden::ErrorCode;
use warden::config::Config;

use crate::harness::{ALLOW_ALL, Harness, Host, Store, manifest, output, toml_path};

/// A `[plugins.NAME]` body for the hostile-fs fixture with these two grants.
fn hostile_fs(rw: &Path, ro: &Path) -> String {
    format!(
        "manifest = {}\ngrants = {{ directories = [{{ host = {}, guest = \"/rw\", access = \"rw\" }}, \
         {{ host = {}, guest = \"/ro\", access = \"ro\" }}] }}",
        toml_path(&manifest(fixtures::HOSTILE_FS)),
        toml_path(rw),
        toml_path(ro)
    )
}

fn mkdir(path: &Path) -> &Path {
    std::fs::create_dir_all(path).unwrap();
    path
}

async fn refused(harness: Harness, expected: &[&str]) {
    match harness.try_start().await {
        Ok(_) => panic!("expected the config to be refused (wanted {expected:?})"),
        Err((e, _)) => {
            let message = e.to_string();
            for part in expected {
                assert!(message.contains(part), "expected `{part}` in: {message}");
            }
        }
    }
}

#[tokio::test]
pub(crate) async fn grants_inside_equal_to_or_containing_a_read_write_grant_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let rw = mkdir(&t.path().join("rw")).to_path_buf();
    let sub = mkdir(&rw.join("sub")).to_path_buf();
    let elsewhere = mkdir(&t.path().join("elsewhere")).to_path_buf();
    let sibling = mkdir(&t.path().join("sibling")).to_path_buf();
    std::os::unix::fs::symlink(&rw, t.path().join("alias")).unwrap();

    let one = |rw: &Path, ro: &Path| {
        Harness::new(Store::Sqlite)
            .plugin_entry("attacker", &hostile_fs(rw, ro))
            .policy(ALLOW_ALL)
    };
    let two = |rw: &Path, ro: &Path| {
        Harness::new(Store::Sqlite)
            .plugin_entry("attacker", &hostile_fs(rw, &elsewhere))
            .plugin_entry("victim", &hostile_fs(&sibling, ro))
            .policy(ALLOW_ALL)
    };
    let attacker_rw = "`plugins.attacker.grants.directories[0].host`";
    // One plugin: its read-only grant inside, equal to, or containing its read-write one.
    refused(one(&rw, &sub), &["overlaps", attacker_rw]).await;
    refused(one(&rw, &rw), &["overlaps", attacker_rw]).await;
    refused(one(&sub, &rw), &["overlaps", attacker_rw]).await;
    // Two plugins, in each spelling: plain, through a symbolic link into the
    // read-write grant, and with `..` walking through it.
    let victim_ro = "plugins.victim.grants.directories[1].host";
    refused(two(&rw, &sub), &[victim_ro, attacker_rw]).await;
    refused(two(&rw, &rw), &[victim_ro, attacker_rw]).await;
    refused(two(&sub, &rw), &[victim_ro, attacker_rw]).await;
    refused(
        two(&rw, &t.path().join("alias/sub")),
        &[victim_ro, attacker_rw],
    )
    .await;
    refused(
        two(&rw, &rw.join("sub/../../elsewhere")),
        &[victim_ro, attacker_rw],
    )
    .await;
    // Two read-write grants on the same tree.
    refused(
        Harness::new(Store::Sqlite)
            .plugin_entry("attacker", &hostile_fs(&rw, &elsewhere))
            .plugin_entry("victim", &hostile_fs(&sub, &sibling))
            .policy(ALLOW_ALL),
        &["plugins.victim.grants.directories[0].host", attacker_rw],
    )
    .await;

    // Read-only grants may overlap each other, and siblings are fine.
    let ro_overlap = Harness::new(Store::Sqlite)
        .plugin_entry("attacker", &hostile_fs(&rw, &elsewhere))
        .plugin_entry("victim", &hostile_fs(&sibling, &elsewhere))
        .policy(ALLOW_ALL)
        .start()
        .await;
    let listed = ro_overlap
        .call("root", "victim.list", json!({"path": "/ro"}))
        .await;
    output(&listed);
}

/// Calls `tool` and returns its output, or the error message.
async fn attempt(host: &Host, tool: &str, args: Value) -> Result<Value, String> {
    let response = host.call("root", tool, args).await;
    match response.result {
        Ok(v) => Ok(v),
        Err(e) => {
            assert_ne!(e.code, ErrorCode::Internal, "{tool}: {e}");
            Err(e.message)
        }
    }
}

/// Starts a host from `harness`'s config, but with the victim's grants moved
/// inside the attacker's read-write directory: what the config check refuses,
/// so that the handles alone are tested.
async fn start_with_overlap(harness: Host, victim_rw: &Path, victim_ro: &Path) -> Host {
    let mut config = Config::load(&harness.config_path).unwrap();
    let victim = config.plugins.get_mut("victim").unwrap();
    victim.grants.directories.directories[0].host = victim_rw.to_path_buf();
    victim.grants.directories.directories[1].host = victim_ro.to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    config.audit_url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let kernel = warden::Kernel::start(&config).await.unwrap();
    Host {
        kernel,
        config_path: harness.config_path.clone(),
        dir,
        db: None,
    }
}

#[tokio::test]
pub(crate) async fn relative_links_planted_on_a_grant_path_redirect_no_grant() {
    let t = tempfile::tempdir().unwrap();
    let attacker_rw = mkdir(&t.path().join("attacker")).to_path_buf();
    let attacker_ro = mkdir(&t.path().join("attacker-ro")).to_path_buf();
    for secret in ["", "y", "outside/y"] {
        let dir = mkdir(&t.path().join(secret)).to_path_buf();
        std::fs::write(dir.join("host-secret.txt"), "HOST SECRET").unwrap();
    }
    let harness = Harness::new(Store::Sqlite)
        .plugin_entry("attacker", &hostile_fs(&attacker_rw, &attacker_ro))
        .plugin_entry(
            "victim",
            &hostile_fs(mkdir(&t.path().join("p1")), mkdir(&t.path().join("p2"))),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;

    // The victim's grants lie inside the attacker's read-write directory.
    let victim_rw = mkdir(&attacker_rw.join("w")).to_path_buf();
    let victim_ro = mkdir(&attacker_rw.join("x/y")).to_path_buf();
    std::fs::write(victim_ro.join("readme.txt"), "victim data").unwrap();
    let host = start_with_overlap(harness, &victim_rw, &victim_ro).await;
    let up = "../".repeat(t.path().components().count() + 4);
    let t_name = t.path().file_name().unwrap().to_string_lossy().into_owned();

    // Each spelling replaces a directory on the victim's paths with a relative link.
    for (path, target) in [
        ("/rw/x", "../outside".to_string()),
        ("/rw/x", format!("../../{t_name}/outside")), // a `..` chain through the parent
        ("/rw/x", "..".to_string()),                  // the parent
        ("/rw/x", "x".to_string()),                   // a loop
        ("/rw/x/y", format!("{up}etc")),              // the victim's grant root itself
        ("/rw/w", "..".to_string()),                  // the victim's read-write root
    ] {
        attempt(
            &host,
            "attacker.plant_link",
            json!({"path": path, "target": target}),
        )
        .await
        .unwrap_or_else(|e| panic!("plant {path} -> {target}: {e}"));

        // The victim still sees its own directories, whatever now lies on their paths.
        for read in [
            "/ro/passwd",
            "/ro/host-secret.txt",
            "/ro/../passwd",
            "/rw/host-secret.txt",
            "/rw/y/host-secret.txt",
        ] {
            let got = attempt(&host, "victim.read", json!({"path": read})).await;
            assert!(
                got.is_err(),
                "{path} -> {target}: victim read {read}: {got:?}"
            );
        }
        let readme = attempt(&host, "victim.read", json!({"path": "/ro/readme.txt"})).await;
        assert_eq!(
            readme.map(|v| v["content"].clone()),
            Ok(json!("victim data")),
            "{path} -> {target}"
        );
        attempt(
            &host,
            "victim.write",
            json!({"path": "/rw/pwned.txt", "content": "x"}),
        )
        .await
        .unwrap_or_else(|e| panic!("{path} -> {target}: the victim's own write failed: {e}"));
        for outside in ["pwned.txt", "outside/pwned.txt", "attacker/pwned.txt"] {
            assert!(
                !t.path().join(outside).exists(),
                "{path} -> {target}: {outside}"
            );
        }

        // The attacker cannot follow its own links out either.
        for read in [
            format!("{path}/passwd"),
            format!("{path}/host-secret.txt"),
            format!("{path}/y/host-secret.txt"),
        ] {
            let got = attempt(&host, "attacker.read", json!({"path": read})).await;
            assert!(
                got.is_err(),
                "{path} -> {target}: attacker read {read}: {got:?}"
            );
        }
        let wrote = attempt(
            &host,
            "attacker.write",
            json!({"path": format!("{path}/pwned.txt"), "content": "x"}),
        )
        .await;
        assert!(wrote.is_err(), "{path} -> {target}: {wrote:?}");
        assert!(!t.path().join("pwned.txt").exists());
        assert!(!t.path().join("outside/pwned.txt").exists());
        assert!(!Path::new("/etc/pwned.txt").exists());

        // Undo, for the next spelling.
        let planted = attacker_rw.join(&path[4..]);
        std::fs::remove_file(&planted).unwrap();
        std::fs::rename(planted.with_extension("orig"), &planted).unwrap();
    }
}

#[tokio::test]
async fn a_grant_swapped_for_a_link_after_load_keeps_its_original_directory() {
    let t = tempfile::tempdir().unwrap();
    let rw = mkdir(&t.path().join("rw")).to_path_buf();
    let ro = mkdir(&t.path().join("ro")).to_path_buf();
    std::fs::write(ro.join("readme.txt"), "granted data").unwrap();
    let host = Harness::new(Store::Sqlite)
        .plugin_entry("victim", &hostile_fs(&rw, &ro))
        .policy(ALLOW_ALL)
        .start()
        .await;

    // Someone with write access to the parent swaps both grants for links.
    std::fs::rename(&ro, t.path().join("ro.orig")).unwrap();
    std::os::unix::fs::symlink("/etc", &ro).unwrap();
    std::fs::rename(&rw, t.path().join("rw.orig")).unwrap();
    std::os::unix::fs::symlink(".", &rw).unwrap();

    let passwd = attempt(&host, "victim.read", json!({"path": "/ro/passwd"})).await;
    assert!(passwd.is_err(), "{passwd:?}");
    let readme = attempt(&host, "victim.read", json!({"path": "/ro/readme.txt"})).await;
    assert_eq!(readme.unwrap()["content"], "granted data");
    attempt(
        &host,
        "victim.write",
        json!({"path": "/rw/new.txt", "content": "x"}),
    )
    .await
    .unwrap();
    assert!(t.path().join("rw.orig/new.txt").exists());
    assert!(!t.path().join("new.txt").exists());
}
