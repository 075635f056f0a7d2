//! Side effects and labels are the operator's word, not the plugin's (issue
//! 12, class 6): a tool's claim of no side effects is refused when its
//! capabilities contradict it, enforced at egress when they do not, and
//! overridden by the operator's pins; an upstream's `readOnlyHint` is a claim.

use crate::fixtures;
use serde_json::json;
use warden::ErrorCode;

use crate::harness::{
    ALLOW_ALL, Harness, Store, TestServer, error, manifest, output, repo, toml_path,
};

/// Allows everything except a side effect in a session that read untrusted
/// content: the default bundle's flow rule on its own.
const FLOW_ONLY: &str = r#"
package warden.authz

deny contains sprintf("%q has side effects and this session carries untrusted content", [input.target.name]) if {
	input.target.side_effects
	"untrusted-content" in input.session.labels
}

decision := {"allow": count(deny) == 0, "reasons": sort(deny)}
"#;

/// `[plugins.hostile-egress]` with a read-write directory, `grants_extra`
/// inside its grants and `pins` after them.
fn hostile_egress_entry(dir: &std::path::Path, grants_extra: &str, pins: &str) -> String {
    format!(
        "manifest = {}\nallow_reduced = true\ngrants = {{ directories = [{{ host = {}, guest = \"/data\", access = \"rw\" }}]{grants_extra} }}\n{pins}",
        toml_path(&manifest(fixtures::HOSTILE_EGRESS)),
        toml_path(dir),
    )
}

#[tokio::test]
async fn a_claim_of_no_side_effects_that_a_writable_grant_contradicts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // No pin at all, then pins that leave one tool's claim standing (a pin
    // of labels alone does not accept a claim).
    for (pins, tool) in [
        ("", "request"),
        (
            "[plugins.hostile-egress.tools.request]\nside_effects = true\n\
             [plugins.hostile-egress.tools.write]\nlabels = [\"audited\"]\n",
            "write",
        ),
    ] {
        let refused = Harness::new(Store::Sqlite)
            .plugin_entry(
                "hostile-egress",
                &hostile_egress_entry(dir.path(), "", pins),
            )
            .policy(ALLOW_ALL)
            .try_start()
            .await
            .err()
            .expect("the claim must be refused")
            .0
            .to_string();
        assert!(
            refused.contains("plugin `hostile-egress`")
                && refused.contains(&format!("tool `{tool}`"))
                && refused
                    .contains("declares no side effects, but it holds a read-write grant on /data"),
            "{refused}"
        );
    }

    // A pin for a tool the plugin does not offer is refused too.
    let typo = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .plugin_entry(
            "fetch",
            &format!(
                "manifest = {}\ngrants = {{}}\n[plugins.fetch.tools.gett]\nside_effects = false\n",
                toml_path(&manifest(fixtures::FETCH))
            ),
        )
        .policy(ALLOW_ALL)
        .try_start()
        .await
        .err()
        .expect("a pin of an unknown tool must be refused")
        .0
        .to_string();
    assert!(
        typo.contains("pins tool `gett`, which `fetch` does not offer"),
        "{typo}"
    );
}

/// With every claim pinned, the plugin loads, and policy, the session and the
/// intent record follow the pinned values, not the plugin's.
#[tokio::test]
pub(crate) async fn pinned_side_effects_and_labels_are_what_policy_sees() {
    let dir = tempfile::tempdir().unwrap();
    let pins = "[plugins.hostile-egress.tools.write]\nside_effects = true\n\
                [plugins.hostile-egress.tools.request]\nside_effects = false\n\
                [plugins.hostile-egress.tools.log]\nside_effects = false\nlabels = [\"untrusted-content\"]\n";
    let host = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile-egress",
            &hostile_egress_entry(dir.path(), "", pins),
        )
        .policy(FLOW_ONLY)
        .audit_settings("store_policy_input = true")
        .start()
        .await;
    let write = host.kernel.registry().tool("hostile-egress.write").unwrap();
    assert!(write.side_effects);
    let log = host.kernel.registry().tool("hostile-egress.log").unwrap();
    assert_eq!(log.labels, vec!["untrusted-content".to_string()]);

    // In a clean session the write runs, after an intent record.
    let path = "/data/note.txt";
    let clean = host
        .call(
            "root",
            "hostile-egress.write",
            json!({"path": path, "content": "x"}),
        )
        .await;
    output(&clean);
    let records: Vec<_> = host
        .records()
        .await
        .into_iter()
        .filter(|r| r.record.call_id == clean.call_id)
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records[0].record.intent);
    let input: serde_json::Value =
        serde_json::from_str(records[1].record.policy_input.as_deref().unwrap()).unwrap();
    assert_eq!(input["target"]["side_effects"], true);
    std::fs::remove_file(dir.path().join("note.txt")).unwrap();

    // The operator's label marks the session; the write is then denied.
    // (`Host::call` uses one session for every call.)
    output(
        &host
            .call("root", "hostile-egress.log", json!({"messages": ["read"]}))
            .await,
    );
    let denied = host
        .call(
            "root",
            "hostile-egress.write",
            json!({"path": path, "content": "x"}),
        )
        .await;
    let e = error(&denied, ErrorCode::PolicyDenied);
    assert_eq!(
        e.reasons,
        vec![
            r#""hostile-egress.write" has side effects and this session carries untrusted content"#
        ]
    );
    assert!(!dir.path().join("note.txt").exists());
}

/// A tool that claims no side effects keeps only the safe methods; the
/// operator's pin gives the others back and policy sees side effects.
#[tokio::test]
async fn a_tool_claiming_no_side_effects_sends_only_safe_methods() {
    let server = TestServer::start("ok").await;
    let grant = server.grant();
    let entry = |pins: &str| {
        format!(
            "manifest = {}\nallow_reduced = true\ngrants = {grant}\n{pins}",
            toml_path(&manifest(fixtures::HOSTILE_EGRESS)),
        )
    };
    let host = Harness::new(Store::Sqlite)
        .plugin_entry("hostile-egress", &entry(""))
        .policy(ALLOW_ALL)
        .start()
        .await;
    let tool = host
        .kernel
        .registry()
        .tool("hostile-egress.request")
        .unwrap();
    assert!(!tool.side_effects);
    let send = |method: &str| json!({"method": method, "authority": server.addr.to_string(), "path": "/x", "body": null});
    for method in ["GET", "HEAD", "OPTIONS"] {
        let response = host
            .call("root", "hostile-egress.request", send(method))
            .await;
        assert_eq!(output(&response)["status"], 200, "{method}");
    }
    let allowed = server.hits();
    for method in ["POST", "PUT", "DELETE", "PATCH", "post", "PROPFIND"] {
        let response = host
            .call("root", "hostile-egress.request", send(method))
            .await;
        let e = error(&response, ErrorCode::CapabilityDenied);
        assert!(
            e.message.contains("claims no side effects"),
            "{method}: {}",
            e.message
        );
    }
    assert_eq!(
        server.hits(),
        allowed,
        "an unsafe method reached the server"
    );

    let pinned = Harness::new(Store::Sqlite)
        .plugin_entry(
            "hostile-egress",
            &entry("[plugins.hostile-egress.tools.request]\nside_effects = true\n"),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;
    assert!(
        pinned
            .kernel
            .registry()
            .tool("hostile-egress.request")
            .unwrap()
            .side_effects
    );
    let response = pinned
        .call("root", "hostile-egress.request", send("POST"))
        .await;
    assert_eq!(output(&response)["status"], 200);
    assert_eq!(server.hits(), allowed + 1);
}

/// The fetch plugin claims no side effects; its GETs keep working, and the
/// operator can drop its label when they say so.
#[tokio::test]
async fn operator_labels_add_unless_the_operator_replaces_them() {
    let server = TestServer::start("page").await;
    let fetch = |pins: &str| {
        format!(
            "manifest = {}\ngrants = {}\n{pins}",
            toml_path(&manifest(fixtures::FETCH)),
            server.grant()
        )
    };
    let added = Harness::new(Store::Sqlite)
        .plugin_entry(
            "fetch",
            &fetch("[plugins.fetch.tools.get]\nlabels = [\"web\"]\n"),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;
    let get = added.kernel.registry().tool("fetch.get").unwrap();
    assert_eq!(get.labels, vec!["untrusted-content", "web"]);
    assert!(!get.side_effects);
    let page = added
        .call(
            "root",
            "fetch.get",
            json!({"url": format!("{}/", server.origin())}),
        )
        .await;
    assert_eq!(output(&page)["body"], "page");

    let replaced = Harness::new(Store::Sqlite)
        .plugin_entry(
            "fetch",
            &fetch("[plugins.fetch.tools.get]\nlabels = [\"web\"]\nreplace_labels = true\n"),
        )
        .policy(ALLOW_ALL)
        .start()
        .await;
    assert_eq!(
        replaced.kernel.registry().tool("fetch.get").unwrap().labels,
        vec!["web"]
    );
}

/// `readOnlyHint` is the upstream's claim: unpinned, every upstream tool has
/// side effects (the notes server's `crash` says read-only and kills it).
#[tokio::test]
async fn an_upstream_read_only_hint_is_a_claim() {
    let upstream = |pins: &str| {
        format!(
            "[upstreams.notes]\ncommand = [{}, {}, \"stdio\"]\n\
             [upstreams.notes.pins.write_note]\nlabels = [\"untrusted-content\"]\n{pins}",
            toml_path(&crate::mcp::python()),
            toml_path(&repo().join("tests/e2e/notes_server.py")),
        )
    };
    let host = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy(FLOW_ONLY)
        .extra_config(&upstream(""))
        .start()
        .await;
    for tool in [
        "notes.read_note",
        "notes.crash",
        "notes.stats",
        "notes.write_note",
    ] {
        let entry = host.kernel.registry().tool(tool).unwrap();
        assert!(entry.side_effects, "{tool} claims read-only, unpinned");
    }
    output(
        &host
            .call(
                "root",
                "notes.write_note",
                json!({"name": "a", "text": "b"}),
            )
            .await,
    );
    let denied = host.call("root", "notes.stats", json!({})).await;
    error(&denied, ErrorCode::PolicyDenied);

    let pinned = Harness::new(Store::Sqlite)
        .plugin(fixtures::TEXT, "{}")
        .policy(FLOW_ONLY)
        .extra_config(&upstream(
            "[upstreams.notes.pins.stats]\nside_effects = false\n",
        ))
        .start()
        .await;
    assert!(
        !pinned
            .kernel
            .registry()
            .tool("notes.stats")
            .unwrap()
            .side_effects
    );
    assert!(
        pinned
            .kernel
            .registry()
            .tool("notes.crash")
            .unwrap()
            .side_effects
    );
    output(
        &pinned
            .call(
                "root",
                "notes.write_note",
                json!({"name": "a", "text": "b"}),
            )
            .await,
    );
    output(&pinned.call("root", "notes.stats", json!({})).await);
}
