//! Malformed contracts: each is an error naming the contract and what is
//! wrong, and the published schema (`docs/schemas/contract.v1.json`) agrees
//! with the verifier on every case it can express.

use super::error_of;

const SCHEMA: &str = include_str!("../../../../docs/schemas/contract.v1.json");

fn published() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    jsonschema::draft202012::new(&schema).unwrap()
}

/// `(contract, expected error)`: refused by the verifier and the schema.
const REFUSED: &[(&str, &str)] = &[
    ("[]", "contract 0: contract: must be an object"),
    (
        "{}",
        "contract 0: contract: a contract needs `schema`, `rules` or both",
    ),
    (
        r#"{"rule": []}"#,
        "contract 0: contract: unknown member `rule` (expected `schema`, `rules`)",
    ),
    (
        r#"{"schema": 3}"#,
        "contract 0: /schema: must be a JSON Schema (an object or a boolean)",
    ),
    (
        r#"{"rules": {}}"#,
        "contract 0: /rules: must be an array of rules",
    ),
    (
        r#"{"rules": [{}]}"#,
        "contract 0: /rules/0: a rule is an object with exactly one member, one of `compare`, `requires`, `exclusive`, `hosts`, `range`",
    ),
    (
        r#"{"rules": [{"range": {"pointer": "/a", "min": 0}, "hosts": {"pointer": "/a", "allowed": ["a.b"]}}]}"#,
        "contract 0: /rules/0: a rule is an object with exactly one member",
    ),
    (
        r#"{"rules": [{"regex": {}}]}"#,
        "contract 0: /rules/0/regex: unknown rule kind (expected `compare`",
    ),
    (
        r#"{"rules": [{"compare": {"left": "/a", "op": "=<", "right": "/b"}}]}"#,
        "contract 0: /rules/0/compare/op: must be one of `<`, `<=`, `==`, `!=`, `>=`, `>`",
    ),
    (
        r#"{"rules": [{"compare": {"left": "/a", "op": "<"}}]}"#,
        "contract 0: /rules/0/compare: missing member `right`",
    ),
    (
        r#"{"rules": [{"compare": {"left": "a", "op": "<", "right": "/b"}}]}"#,
        "contract 0: /rules/0/compare/left: `a` is not a JSON Pointer: it must be empty or start with `/`",
    ),
    (
        r#"{"rules": [{"compare": {"left": "/a~2", "op": "<", "right": "/b"}}]}"#,
        "contract 0: /rules/0/compare/left: `/a~2` is not a JSON Pointer: `~` must be followed by `0` or `1`",
    ),
    (
        r#"{"rules": [{"compare": {"left": "/a", "op": "<", "right": "/b", "flip": true}}]}"#,
        "contract 0: /rules/0/compare: unknown member `flip` (expected `left`, `op`, `right`)",
    ),
    (
        r#"{"rules": [{"requires": {"if": "/a", "then": []}}]}"#,
        "contract 0: /rules/0/requires/then: must list at least 1 pointers",
    ),
    (
        r#"{"rules": [{"requires": {"if": "/a", "then": "/b"}}]}"#,
        "contract 0: /rules/0/requires/then: must be an array of JSON Pointers",
    ),
    (
        r#"{"rules": [{"requires": {"when": "/a", "then": ["/b"]}}]}"#,
        "contract 0: /rules/0/requires: unknown member `when`",
    ),
    (
        r#"{"rules": [{"exclusive": ["/a"]}]}"#,
        "contract 0: /rules/0/exclusive: must list at least 2 pointers",
    ),
    (
        r#"{"rules": [{"exclusive": ["/a", 3]}]}"#,
        "contract 0: /rules/0/exclusive/1: must be a JSON Pointer string",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": []}}]}"#,
        "contract 0: /rules/0/hosts/allowed: must be a non-empty array of host names",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["*"]}}]}"#,
        "contract 0: /rules/0/hosts/allowed: `*` is not a host name",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["https://example.com/"]}}]}"#,
        "contract 0: /rules/0/hosts/allowed: `https://example.com/` is not a host name",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["user@example.com"]}}]}"#,
        "is not a host name",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["*.*.example.com"]}}]}"#,
        "is not a host name",
    ),
    (
        r#"{"rules": [{"range": {"pointer": "/n"}}]}"#,
        "contract 0: /rules/0/range: needs `min`, `max` or both",
    ),
    (
        r#"{"rules": [{"range": {"pointer": "/n", "min": "0"}}]}"#,
        "contract 0: /rules/0/range/min: must be a number",
    ),
    (
        r#"{"rules": [{"range": {"pointer": "/n", "max": 1, "step": 1}}]}"#,
        "contract 0: /rules/0/range: unknown member `step`",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["exa mple.com"]}}]}"#,
        "is not a host name",
    ),
];

/// Refused by the verifier only: the schema cannot express these.
const REFUSED_BY_THE_VERIFIER: &[(&str, &str)] = &[
    (
        r#"{"rules": [{"range": {"pointer": "/n", "min": 2, "max": 1}}]}"#,
        "contract 0: /rules/0/range: `min` is greater than `max`",
    ),
    (
        r#"{"rules": [{"requires": {"if": "/a", "then": ["/b/*"]}}]}"#,
        "contract 0: /rules/0/requires/then/0: has more `*` segments than `if`",
    ),
    (
        r#"{"rules": [{"exclusive": ["/a/*", "/b"]}]}"#,
        "contract 0: /rules/0/exclusive: every pointer must have as many `*` segments",
    ),
    (
        r#"{"rules": [{"hosts": {"pointer": "/u", "allowed": ["*.10.0.0.1"]}}]}"#,
        "is not a host name",
    ),
    (
        r#"{"schema": {"type": "integr"}}"#,
        "contract 0: /schema does not compile: ",
    ),
    (
        r#"{"schema": {"$ref": "https://example.com/s.json"}}"#,
        "contract 0: /schema does not compile: ",
    ),
    (
        r##"{"schema": {"$ref": "#/$defs/missing"}}"##,
        "contract 0: /schema does not compile: ",
    ),
    (
        r#"{"schema": {"pattern": "(unclosed"}}"#,
        "contract 0: /schema does not compile: ",
    ),
];

#[test]
fn malformed_contracts_are_errors_naming_the_problem() {
    let schema = published();
    for (contract, expected) in REFUSED {
        let error = error_of("{}", &[contract]).to_string();
        assert!(
            error.starts_with(expected) || error.contains(expected),
            "{contract}\n  got:      {error}\n  expected: {expected}"
        );
        let value: serde_json::Value = serde_json::from_str(contract).unwrap();
        assert!(!schema.is_valid(&value), "the schema accepts {contract}");
    }
    for (contract, expected) in REFUSED_BY_THE_VERIFIER {
        let error = error_of("{}", &[contract]).to_string();
        assert!(
            error.starts_with(expected) || error.contains(expected),
            "{contract}\n  got:      {error}\n  expected: {expected}"
        );
        let value: serde_json::Value = serde_json::from_str(contract).unwrap();
        if contract.contains("\"rules\"") {
            assert!(
                schema.is_valid(&value),
                "the schema now refuses {contract}: move it to REFUSED"
            );
        }
    }
}

#[test]
fn the_error_names_which_contract() {
    let good = r#"{"rules": [{"range": {"pointer": "/n", "max": 1}}]}"#;
    let error = error_of("{}", &[good, good, "{not json"]).to_string();
    assert!(error.starts_with("contract 2: not JSON: "), "{error}");
    let error = error_of(
        "{}",
        &[good, r#"{"rules": [{"range": {"pointer": "/n"}}]}"#],
    )
    .to_string();
    assert!(error.starts_with("contract 1: /rules/0/range: "), "{error}");
    // A malformed contract is an error even when the content is not JSON.
    let error = error_of("not json", &["{}"]).to_string();
    assert!(error.starts_with("contract 0: "), "{error}");
    let error = error_of("not json", &[good]).to_string();
    assert!(error.starts_with("content is not JSON: "), "{error}");
}

#[test]
fn the_documented_example_is_valid_for_both() {
    let example = r#"{
      "schema": {"type": "object"},
      "rules": [
        {"compare": {"left": "/start", "op": "<=", "right": "/end"}},
        {"requires": {"if": "/discount", "then": ["/coupon", "/reason"]}},
        {"exclusive": ["/card", "/iban"]},
        {"hosts": {"pointer": "/links/*/url", "allowed": ["example.com", "*.example.org"]}},
        {"range": {"pointer": "/items/*/price", "min": 0, "max": 10000}}
      ]
    }"#;
    let value: serde_json::Value = serde_json::from_str(example).unwrap();
    assert!(published().is_valid(&value));
    super::verdict_of("{}", &[example]);
    let warm_up: serde_json::Value = serde_json::from_str(warden_contract::WARM_UP.0).unwrap();
    assert!(published().is_valid(&warm_up));
}
