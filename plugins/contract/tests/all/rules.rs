//! Each rule kind, passing and failing, with wildcards and escaped segments.

use super::{f, found, verdict_of};

const DATES: &str = r#"{"rules": [{"compare": {"left": "/start", "op": "<=", "right": "/end"}}]}"#;

#[test]
fn compare_orders_numbers_and_dates() {
    assert!(found(r#"{"start": 1, "end": 2}"#, &[DATES]).is_empty());
    assert!(found(r#"{"start": 2, "end": 2.0}"#, &[DATES]).is_empty());
    assert_eq!(
        found(r#"{"start": 3, "end": 2}"#, &[DATES]),
        [f("compare-failed", "/start", 0, 0)]
    );
    assert!(found(r#"{"start": "2024-05-01", "end": "2024-05-02"}"#, &[DATES]).is_empty());
    assert_eq!(
        found(r#"{"start": "2024-05-03", "end": "2024-05-02"}"#, &[DATES]),
        [f("compare-failed", "/start", 0, 10)]
    );
    // Offsets count: 10:00+02:00 is 08:00Z.
    assert!(
        found(
            r#"{"start": "2024-05-01T10:00:00+02:00", "end": "2024-05-01T09:00:00Z"}"#,
            &[DATES]
        )
        .is_empty()
    );
    let message = &verdict_of(r#"{"start": 3, "end": 2}"#, &[DATES]).findings[0].message;
    assert_eq!(message, "contract 0, rule 0: `/start` must be <= `/end`");
}

#[test]
fn compare_skips_absent_and_null_sides_and_flags_incomparable_ones() {
    assert!(found(r#"{"start": 3}"#, &[DATES]).is_empty());
    assert!(found(r#"{"start": 3, "end": null}"#, &[DATES]).is_empty());
    assert!(found(r#"{}"#, &[DATES]).is_empty());
    assert_eq!(
        found(r#"{"start": "soon", "end": 2}"#, &[DATES]),
        [f("compare-failed", "/start", 0, 4)]
    );
    let verdict = verdict_of(r#"{"start": "soon", "end": "later"}"#, &[DATES]);
    assert!(
        verdict.findings[0]
            .message
            .contains("cannot be compared with <=")
    );
    assert!(!verdict.findings[0].message.contains("soon"));
}

#[test]
fn compare_equality_takes_strings() {
    let same = r#"{"rules": [{"compare": {"left": "/a", "op": "==", "right": "/b"}}]}"#;
    let differ = r#"{"rules": [{"compare": {"left": "/a", "op": "!=", "right": "/b"}}]}"#;
    assert!(found(r#"{"a": "EUR", "b": "EUR"}"#, &[same]).is_empty());
    assert_eq!(
        found(r#"{"a": "EUR", "b": "USD"}"#, &[same]),
        [f("compare-failed", "/a", 0, 3)]
    );
    assert!(found(r#"{"a": "EUR", "b": "USD"}"#, &[differ]).is_empty());
    assert_eq!(
        found(r#"{"a": true, "b": true}"#, &[differ]),
        [f("compare-failed", "/a", 0, 0)]
    );
}

#[test]
fn compare_pairs_aligned_wildcards() {
    let each = r#"{"rules": [{"compare": {"left": "/items/*/start", "op": "<", "right": "/items/*/end"}}]}"#;
    let content = r#"{"items": [{"start": 1, "end": 2}, {"start": 5, "end": 4}, {"start": 1}, {"start": 9, "end": 10}]}"#;
    // Item 1 fails; item 0 is not compared with item 1's end, nor item 3 with item 0's.
    assert_eq!(
        found(content, &[each]),
        [f("compare-failed", "/items/1/start", 0, 0)]
    );
    // One side without wildcards: every value meets it.
    let budget =
        r#"{"rules": [{"compare": {"left": "/items/*/price", "op": "<=", "right": "/budget"}}]}"#;
    let content =
        r#"{"budget": 10, "items": [{"price": 3}, {"price": 11}, {"price": 10}, {"price": 12}]}"#;
    assert_eq!(
        found(content, &[budget]),
        [
            f("compare-failed", "/items/1/price", 0, 0),
            f("compare-failed", "/items/3/price", 0, 0)
        ]
    );
    // Nested wildcards pair on the ones both sides have.
    let nested = r#"{"rules": [{"compare": {"left": "/orders/*/lines/*/qty", "op": "<=", "right": "/orders/*/max"}}]}"#;
    let content = r#"{"orders": {"a": {"max": 2, "lines": [{"qty": 1}, {"qty": 3}]}, "b": {"max": 5, "lines": [{"qty": 3}]}}}"#;
    assert_eq!(
        found(content, &[nested]),
        [f("compare-failed", "/orders/a/lines/1/qty", 0, 0)]
    );
}

#[test]
fn requires_needs_every_then_member_where_if_is_present() {
    let rule = r#"{"rules": [{"requires": {"if": "/discount", "then": ["/coupon", "/reason"]}}]}"#;
    assert!(found(r#"{"total": 3}"#, &[rule]).is_empty());
    assert!(found(r#"{"discount": null}"#, &[rule]).is_empty());
    assert!(found(r#"{"discount": 5, "coupon": "X", "reason": "r"}"#, &[rule]).is_empty());
    // A missing member is reported at its parent (here the root), 0..0.
    assert_eq!(
        found(r#"{"discount": 5, "coupon": "X"}"#, &[rule]),
        [f("missing-required", "", 0, 0)]
    );
    // A null member is reported where it is.
    assert_eq!(
        found(r#"{"discount": 5, "coupon": null, "reason": "r"}"#, &[rule]),
        [f("missing-required", "/coupon", 0, 0)]
    );
    let message = &verdict_of(r#"{"discount": 5}"#, &[rule]).findings[1].message;
    assert_eq!(
        message,
        "contract 0, rule 0: `/reason` is required when `/discount` is present"
    );
}

#[test]
fn requires_binds_wildcards_and_reports_the_deepest_existing_parent() {
    let rule = r#"{"rules": [{"requires": {"if": "/items/*/discount", "then": ["/items/*/coupon/code", "/total"]}}]}"#;
    let content = r#"{"total": 1, "items": [{"discount": 1, "coupon": {"code": "A"}}, {"discount": 2}, {"price": 3}, {"discount": 4, "coupon": {}}]}"#;
    assert_eq!(
        found(content, &[rule]),
        [
            f("missing-required", "/items/1", 0, 0),
            f("missing-required", "/items/3/coupon", 0, 0)
        ]
    );
}

#[test]
fn exclusive_allows_at_most_one_per_element() {
    let rule = r#"{"rules": [{"exclusive": ["/card", "/iban", "/wallet"]}]}"#;
    assert!(found(r#"{"card": "4111"}"#, &[rule]).is_empty());
    assert!(found(r#"{"card": "4111", "iban": null}"#, &[rule]).is_empty());
    assert_eq!(
        found(r#"{"iban": "DE89", "card": "4111", "wallet": 1}"#, &[rule]),
        [f("exclusive-violated", "/iban", 0, 4)]
    );
    let message = &verdict_of(r#"{"iban": "DE89", "card": "4111"}"#, &[rule]).findings[0].message;
    assert_eq!(
        message,
        "contract 0, rule 0: at most one of `/card`, `/iban`, `/wallet` may be present; `/card` and `/iban` are"
    );
    let each = r#"{"rules": [{"exclusive": ["/pay/*/card", "/pay/*/iban"]}]}"#;
    let content = r#"{"pay": [{"card": 1}, {"iban": 2}, {"card": 3, "iban": 4}]}"#;
    assert_eq!(
        found(content, &[each]),
        [f("exclusive-violated", "/pay/2/iban", 0, 0)]
    );
}

#[test]
fn range_bounds_are_inclusive_and_optional() {
    let rule = r#"{"rules": [{"range": {"pointer": "/items/*/price", "min": 0, "max": 10000}}]}"#;
    let content = r#"{"items": [{"price": 0}, {"price": 10000}, {"price": -0.01}, {"price": 10000.5}, {"price": "12"}, {"price": null}, {}]}"#;
    assert_eq!(
        found(content, &[rule]),
        [
            f("out-of-range", "/items/2/price", 0, 0),
            f("out-of-range", "/items/3/price", 0, 0),
            f("out-of-range", "/items/4/price", 0, 2),
        ]
    );
    let messages: Vec<String> = verdict_of(content, &[rule])
        .findings
        .into_iter()
        .map(|f| f.message)
        .collect();
    assert_eq!(
        messages[0],
        "contract 0, rule 0: `/items/*/price` must be between 0 and 10000"
    );
    assert_eq!(
        messages[2],
        "contract 0, rule 0: `/items/*/price` must be a number"
    );
    let min_only = r#"{"rules": [{"range": {"pointer": "", "min": 1.5}}]}"#;
    assert!(found("2", &[min_only]).is_empty());
    assert_eq!(found("1", &[min_only]), [f("out-of-range", "", 0, 0)]);
    let max_only = r#"{"rules": [{"range": {"pointer": "/n", "max": 9007199254740992}}]}"#;
    // Exact for integers past 2^53.
    assert_eq!(
        found(r#"{"n": 9007199254740993}"#, &[max_only]),
        [f("out-of-range", "/n", 0, 0)]
    );
}

#[test]
fn escaped_segments_name_members_with_slash_and_tilde() {
    let rule = r#"{"rules": [{"range": {"pointer": "/a~1b/c~0d", "max": 1}}, {"range": {"pointer": "/m/*/v", "max": 1}}]}"#;
    let content = r#"{"a/b": {"c~d": 2}, "m": {"x/~y": {"v": 5}}}"#;
    assert_eq!(
        found(content, &[rule]),
        [
            f("out-of-range", "/a~1b/c~0d", 0, 0),
            f("out-of-range", "/m/x~1~0y/v", 0, 0)
        ]
    );
}

#[test]
fn schema_errors_are_located_and_never_quote_the_content() {
    let contract = r#"{"schema": {"type": "object", "required": ["id", "total"], "additionalProperties": false,
        "properties": {"id": {"type": "string", "pattern": "^[0-9]+$"}, "total": {"type": "integer"},
        "email": {"format": "email"}, "when": {"format": "date-time"}, "tags": {"items": {"enum": ["a"]}}}}}"#;
    let content = r#"{"id": "secret-ish", "email": "not an email", "when": "yesterday", "tags": ["a", "zzz"], "sneaky-name": 1}"#;
    let verdict = verdict_of(content, &[contract]);
    let mut got: Vec<(String, String, u32, u32)> = verdict
        .findings
        .iter()
        .map(|f| {
            let l = f.location.as_ref().unwrap();
            (f.kind.clone(), l.pointer.clone(), l.start, l.end)
        })
        .collect();
    got.sort();
    let mut expected = vec![
        f("schema-violation", "", 0, 0),
        f("schema-violation", "", 0, 0),
        f("schema-violation", "/email", 0, 12),
        f("schema-violation", "/id", 0, 10),
        f("schema-violation", "/tags/1", 0, 3),
        f("schema-violation", "/when", 0, 9),
    ];
    expected.sort();
    assert_eq!(got, expected);
    for finding in &verdict.findings {
        for value in [
            "secret-ish",
            "not an email",
            "yesterday",
            "zzz",
            "sneaky-name",
        ] {
            assert!(!finding.message.contains(value), "{}", finding.message);
        }
        assert!(
            finding.message.starts_with("contract 0, schema: "),
            "{}",
            finding.message
        );
    }
    let messages: Vec<&str> = verdict
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert!(messages.contains(&"contract 0, schema: the content lacks the required member `total` (`required` at `/required`)"), "{messages:?}");
    assert!(messages.contains(&"contract 0, schema: the value is not a valid `email` (`format` at `/properties/email/format`)"), "{messages:?}");
}

#[test]
fn schema_and_rules_together_and_several_contracts() {
    let operator = r#"{"schema": {"type": "object", "required": ["total"]}, "rules": [{"range": {"pointer": "/total", "min": 0}}]}"#;
    let request = r#"{"rules": [{"compare": {"left": "/paid", "op": "<=", "right": "/total"}}]}"#;
    assert!(found(r#"{"total": 5, "paid": 5}"#, &[operator, request]).is_empty());
    let verdict = verdict_of(r#"{"total": -1, "paid": 5}"#, &[operator, request]);
    let got: Vec<(&str, &str)> = verdict
        .findings
        .iter()
        .map(|f| (f.kind.as_str(), &f.message[..21]))
        .collect();
    assert_eq!(
        got,
        [
            ("out-of-range", "contract 0, rule 0: `"),
            ("compare-failed", "contract 1, rule 0: `")
        ]
    );
    assert_eq!(
        found(r#"{"paid": 5}"#, &[operator, request]),
        [f("schema-violation", "", 0, 0)]
    );
    // No contracts, no findings, whatever the content.
    assert!(found("not json", &[]).is_empty());
}

#[test]
fn content_may_be_a_bare_string_or_number() {
    let string = r#"{"schema": {"type": "string", "maxLength": 3}}"#;
    assert!(found(r#""abc""#, &[string]).is_empty());
    assert_eq!(
        found(r#""abcd""#, &[string]),
        [f("schema-violation", "", 0, 4)]
    );
    let url = r#"{"rules": [{"hosts": {"pointer": "", "allowed": ["example.com"]}}]}"#;
    assert!(found(r#""https://example.com/""#, &[url]).is_empty());
    assert_eq!(
        found(r#""https://evil.test/""#, &[url]),
        [f("host-not-allowed", "", 0, 18)]
    );
    let number = r#"{"rules": [{"range": {"pointer": "", "min": 0, "max": 1}}]}"#;
    assert!(found("0.5", &[number]).is_empty());
    assert_eq!(found("2", &[number]), [f("out-of-range", "", 0, 0)]);
    // A pointer into a scalar names nothing.
    let deep = r#"{"rules": [{"range": {"pointer": "/a", "min": 0}}]}"#;
    assert!(found("5", &[deep]).is_empty());
}
