//! Plugins written in other languages run like Rust ones: `pytext` (Python,
//! componentize-py) and `jstext` (JavaScript, componentize-js), through the
//! whole pipeline and into the audit trail. One host per language, so each
//! large component is compiled once per run (then taken from the cache).

use serde_json::{Value, json};
use warden::ErrorCode;
use warden::digest::sha256_hex;
use warden::manifest::Manifest;

use crate::fixtures::{self, Fixture};
use crate::harness::{Harness, Store, error, manifest, output};

/// What one plugin must do.
struct Case {
    plugin: Fixture,
    tool: &'static str,
    input_schema: Value,
    output_schema: Value,
    /// Calls with their exact outputs.
    calls: Vec<(Value, Value)>,
}

fn python() -> Case {
    Case {
        plugin: fixtures::PYTEXT,
        tool: "word_count",
        input_schema: json!({
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 1048576}},
            "required": ["text"],
            "additionalProperties": false
        }),
        output_schema: json!({
            "type": "object",
            "properties": {
                "words": {"type": "integer", "minimum": 0},
                "chars": {"type": "integer", "minimum": 0}
            },
            "required": ["words", "chars"],
            "additionalProperties": false
        }),
        calls: vec![
            (
                json!({"text": "Hello, World!"}),
                json!({"words": 2, "chars": 13}),
            ),
            (
                json!({"text": " a  b\nc\t"}),
                json!({"words": 3, "chars": 8}),
            ),
            (json!({"text": ""}), json!({"words": 0, "chars": 0})),
            // Characters are code points, neither UTF-8 bytes nor UTF-16 units.
            (
                json!({"text": "héllo wörld 😀"}),
                json!({"words": 3, "chars": 13}),
            ),
        ],
    }
}

fn javascript() -> Case {
    let slug = |text: &str, slug: &str| (json!({"text": text}), json!({"slug": slug}));
    Case {
        plugin: fixtures::JSTEXT,
        tool: "slugify",
        input_schema: json!({
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 65536}},
            "required": ["text"],
            "additionalProperties": false
        }),
        output_schema: json!({
            "type": "object",
            "properties": {"slug": {"type": "string", "pattern": "^([a-z0-9]+(-[a-z0-9]+)*)?$"}},
            "required": ["slug"],
            "additionalProperties": false
        }),
        calls: vec![
            slug("Hello, World!", "hello-world"),
            // Only ASCII letters and digits are kept.
            slug("  --Crème Brûlée 2024!!  ", "cr-me-br-l-e-2024"),
            slug("ABC_def", "abc-def"),
            slug("already-a-slug", "already-a-slug"),
            slug("!!!", ""),
            slug("", ""),
        ],
    }
}

async fn runs_through_the_pipeline(case: Case) {
    let Case {
        plugin,
        tool,
        input_schema,
        output_schema,
        calls,
    } = case;
    let name = format!("{}.{tool}", plugin.name);
    let host = Harness::new(Store::Sqlite)
        .plugin(plugin, "{}")
        .start()
        .await;
    let component = Manifest::load(&manifest(plugin)).unwrap().component;
    let sha256 = sha256_hex(&std::fs::read(component).unwrap());

    // What it describes, as clients see it.
    let info = host.kernel.registry().tool(&name).unwrap().info();
    assert_eq!(info.input_schema, input_schema);
    assert_eq!(info.output_schema, output_schema);
    assert!(!info.side_effects);
    assert!(info.labels.is_empty());
    assert!(!info.description.is_empty());
    assert_eq!(info.plugin, plugin.name);
    assert_eq!(info.plugin_sha256.as_deref(), Some(sha256.as_str()));

    // Exact outputs, each audited with the plugin and its component's hash.
    for (args, expected) in &calls {
        let response = host.call("root", &name, args.clone()).await;
        assert_eq!(output(&response), expected, "{name} {args}");
        let record = host.record(&response.call_id).await.record;
        assert_eq!(record.tool, name);
        assert_eq!(record.plugin.as_deref(), Some(plugin.name));
        assert_eq!(record.plugin_sha256.as_deref(), Some(sha256.as_str()));
        assert_eq!(
            (record.decision.as_str(), record.outcome.as_str()),
            ("allow", "ok")
        );
    }

    // Arguments that violate the schema never reach the plugin.
    let invalid = [
        json!({"text": 5}),
        json!({"text": "x", "extra": 1}),
        json!({}),
        json!("text"),
    ];
    for args in &invalid {
        let response = host.call("root", &name, args.clone()).await;
        error(&response, ErrorCode::InvalidArgs);
        let record = host.record(&response.call_id).await.record;
        assert_eq!(
            (record.decision.as_str(), record.outcome.as_str()),
            ("allow", "invalid-args"),
            "{name} {args}"
        );
    }

    // The plugin checks its arguments itself too: called past the host's
    // schema check, it answers `invalid-input`.
    let loaded = host.kernel.registry().plugins().next().unwrap();
    for (tool, args) in [
        (tool, "not json"),
        (tool, "[1]"),
        (tool, r#"{"text": 1}"#),
        (tool, r#"{"text": "x", "extra": 1}"#),
        ("no_such_tool", r#"{"text": "x"}"#),
    ] {
        let result = host
            .kernel
            .sandbox()
            .invoke(
                plugin.name,
                &loaded.prepared,
                &loaded.capabilities,
                tool,
                args,
            )
            .await;
        match result {
            Err(e) => assert_eq!(e.code, ErrorCode::ToolInvalidInput, "{tool} {args}: {e}"),
            Ok(output) => panic!("{} {tool} {args}: answered {output}", plugin.name),
        }
    }

    let report = warden::audit::verify(host.kernel.audit().store())
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(report.records, calls.len() + invalid.len());
}

#[tokio::test]
async fn a_python_plugin_runs_through_the_pipeline() {
    runs_through_the_pipeline(python()).await;
}

#[tokio::test]
async fn a_javascript_plugin_runs_through_the_pipeline() {
    runs_through_the_pipeline(javascript()).await;
}
