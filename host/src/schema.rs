//! Validate: JSON Schemas for tool arguments and outputs, compiled once at load.
//!
//! Schemas come from plugins and upstream servers, so they are hostile input
//! too. Two bounds keep validation from becoming a denial of service:
//!
//! - at load, a schema whose expansion (every subschema, with each local
//!   `$ref` counted as a copy of its target) exceeds [`EXPANDED_MAX`] is
//!   refused, and so is any `$ref` that is not a local JSON Pointer: nested
//!   `anyOf`s referring twice to the next level double per level and would
//!   otherwise cost seconds and gigabytes per call;
//! - per call, an instance whose size times the schema's expansion exceeds
//!   [`INLINE_WORK`] is validated on the blocking pool, at most
//!   [`HEAVY_AT_ONCE`] at a time, within the call's time limit, so no
//!   validation runs on an async worker long enough to stall other calls.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::Value;

/// Most subschemas a schema may expand to.
pub(crate) const EXPANDED_MAX: u64 = 10_000;
/// Validations estimated above this much work (instance nodes × expanded
/// schema size) leave the async worker.
const INLINE_WORK: u64 = 200_000;
/// Heavy validations running at once; more wait (within their time limit).
const HEAVY_AT_ONCE: usize = 2;

static HEAVY_SLOTS: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(HEAVY_AT_ONCE));

/// A compiled JSON Schema together with its source document.
#[derive(Clone)]
pub struct Schema {
    document: Value,
    validator: Arc<jsonschema::Validator>,
    /// Subschemas in the expanded schema (see [`EXPANDED_MAX`]).
    expanded: u64,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("document", &self.document)
            .finish()
    }
}

impl Schema {
    /// Parses JSON text and compiles it as a JSON Schema.
    pub fn parse(text: &str) -> Result<Schema, String> {
        let document: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        Schema::from_value(document)
    }

    /// Compiles a schema document, refusing one that expands past [`EXPANDED_MAX`].
    pub fn from_value(document: Value) -> Result<Schema, String> {
        let expanded = Expansion::new(&document).size()?;
        let validator = jsonschema::validator_for(&document).map_err(|e| e.to_string())?;
        Ok(Schema {
            document,
            validator: Arc::new(validator),
            expanded,
        })
    }

    /// The schema document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Checks `instance`; on failure names the JSON Pointer of the first
    /// violation (`/` for the document itself) and what is wrong there.
    /// Runs on the calling thread whatever the cost: see [`Schema::check_within`].
    pub fn check(&self, instance: &Value) -> Result<(), String> {
        first_error(&self.validator, instance)
    }

    /// [`Schema::check`], on the blocking pool and within `limit` when the
    /// work could be large.
    pub async fn check_within(&self, instance: &Value, limit: Duration) -> Result<(), String> {
        let work = node_count(instance, INLINE_WORK).saturating_mul(self.expanded);
        if work <= INLINE_WORK {
            return self.check(instance);
        }
        let too_slow = || {
            format!(
                "could not be validated within {} ms (the instance is large for its schema)",
                limit.as_millis()
            )
        };
        let heavy = async {
            let _slot = HEAVY_SLOTS
                .acquire()
                .await
                .map_err(|_| "validation is shut down".to_string())?;
            let validator = self.validator.clone();
            let instance = instance.clone();
            // The work is bounded (the schema's expansion times the instance's
            // size), so a validation that outlives `limit` still ends.
            tokio::task::spawn_blocking(move || first_error(&validator, &instance))
                .await
                .map_err(|e| format!("validation failed: {e}"))?
        };
        tokio::time::timeout(limit, heavy)
            .await
            .unwrap_or_else(|_| Err(too_slow()))
    }
}

fn first_error(validator: &jsonschema::Validator, instance: &Value) -> Result<(), String> {
    match validator.iter_errors(instance).next() {
        None => Ok(()),
        Some(error) => {
            let path = error.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_string()
            } else {
                path
            };
            Err(format!("at {path}: {error}"))
        }
    }
}

/// Values in `value`, counting no further than `cap`. Recursive without
/// allocating: instances come from serde_json, whose parser stops at 128
/// levels of nesting.
fn node_count(value: &Value, cap: u64) -> u64 {
    fn count(value: &Value, cap: u64, seen: &mut u64) {
        *seen += 1;
        match value {
            Value::Array(items) => items.iter().for_each(|v| count_within(v, cap, seen)),
            Value::Object(fields) => fields.values().for_each(|v| count_within(v, cap, seen)),
            _ => {}
        }
    }
    fn count_within(value: &Value, cap: u64, seen: &mut u64) {
        if *seen < cap {
            count(value, cap, seen);
        }
    }
    let mut seen = 0;
    count(value, cap, &mut seen);
    seen.min(cap)
}

/// Sizes a schema with its local `$ref`s expanded in place.
struct Expansion<'a> {
    root: &'a Value,
    /// Expanded size of each `$ref` target already measured.
    sizes: HashMap<&'a str, u64>,
    /// `$ref` targets being measured: a reference back into one of them is
    /// recursion, which the instance's own depth bounds; it counts once.
    open: Vec<&'a str>,
}

impl<'a> Expansion<'a> {
    fn new(root: &'a Value) -> Expansion<'a> {
        Expansion {
            root,
            sizes: HashMap::new(),
            open: Vec::new(),
        }
    }

    fn size(mut self) -> Result<u64, String> {
        let size = self.measure(self.root)?;
        if size > EXPANDED_MAX {
            return Err(too_large());
        }
        Ok(size)
    }

    fn measure(&mut self, node: &'a Value) -> Result<u64, String> {
        let mut size = 1u64;
        match node {
            Value::Object(fields) => {
                for (key, value) in fields {
                    size = size.saturating_add(match (key.as_str(), value) {
                        ("$ref" | "$dynamicRef" | "$recursiveRef", Value::String(target)) => {
                            self.reference(target)?
                        }
                        // Values under these keywords are data, not subschemas.
                        ("const" | "enum" | "examples" | "default", _) => 1,
                        _ => self.measure(value)?,
                    });
                    if size > EXPANDED_MAX {
                        return Err(too_large());
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    size = size.saturating_add(self.measure(item)?);
                    if size > EXPANDED_MAX {
                        return Err(too_large());
                    }
                }
            }
            _ => {}
        }
        Ok(size)
    }

    fn reference(&mut self, target: &'a str) -> Result<u64, String> {
        let Some(pointer) = target.strip_prefix('#') else {
            return Err(format!(
                "`$ref: {target}`: only references inside the schema (`#/...`) are allowed"
            ));
        };
        if let Some(size) = self.sizes.get(target) {
            return Ok(*size);
        }
        if self.open.contains(&target) {
            return Ok(1);
        }
        let node = self.root.pointer(pointer).ok_or_else(|| {
            format!(
                "`$ref: {target}`: no such location in the schema (only JSON Pointers are allowed)"
            )
        })?;
        self.open.push(target);
        let size = self.measure(node);
        self.open.pop();
        let size = size?;
        self.sizes.insert(target, size);
        Ok(size)
    }
}

fn too_large() -> String {
    format!(
        "expands to more than {EXPANDED_MAX} subschemas (counting each `$ref` as a copy of its \
         target); validating it could cost unbounded time and memory"
    )
}

#[cfg(test)]
mod tests {
    use super::{EXPANDED_MAX, Schema};
    use serde_json::{Value, json};

    /// `levels` definitions, each an `anyOf` referring twice to the next:
    /// 2^levels subschemas once expanded, from a document of a few lines.
    fn doubling(levels: usize, keyword: &str) -> Value {
        let mut defs = serde_json::Map::new();
        for level in 0..levels {
            let next = json!({"$ref": format!("#/$defs/l{}", level + 1)});
            defs.insert(
                format!("l{level}"),
                json!({ keyword: [next.clone(), next] }),
            );
        }
        defs.insert(format!("l{levels}"), json!({"type": "string"}));
        json!({"$defs": defs, "$ref": "#/$defs/l0"})
    }

    #[test]
    fn schemas_that_expand_exponentially_are_refused() {
        for keyword in ["anyOf", "oneOf", "allOf"] {
            let e = Schema::from_value(doubling(19, keyword)).unwrap_err();
            assert!(e.contains("expands to more than"), "{keyword}: {e}");
            // A small one of the same shape is fine.
            Schema::from_value(doubling(4, keyword)).unwrap();
        }
        // Nesting without $ref: the document itself is the expansion.
        let mut nested = json!({"type": "string"});
        for _ in 0..15 {
            nested = json!({"anyOf": [nested.clone(), nested]});
        }
        assert!(Schema::from_value(nested).is_err());
        let wide: Vec<Value> = (0..EXPANDED_MAX)
            .map(|_| json!({"type": "string"}))
            .collect();
        assert!(Schema::from_value(json!({"anyOf": wide})).is_err());
    }

    #[test]
    fn only_local_references_are_allowed() {
        for target in [
            "https://example.com/s.json",
            "other.json#/x",
            "#/$defs/missing",
        ] {
            let e = Schema::from_value(json!({"$ref": target})).unwrap_err();
            assert!(e.contains(target), "{e}");
        }
        // Recursion is fine: the instance's depth bounds it.
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"
        });
        let schema = Schema::from_value(tree).unwrap();
        assert!(
            schema
                .check(&json!({"children": [{"children": []}]}))
                .is_ok()
        );
        assert!(
            schema
                .check(&json!({"children": [{"children": 1}]}))
                .is_err()
        );
    }

    #[test]
    fn data_keywords_are_not_counted_as_subschemas() {
        let values: Vec<Value> = (0..2 * EXPANDED_MAX).map(|i| json!(i)).collect();
        Schema::from_value(json!({"enum": values})).unwrap();
    }

    #[tokio::test]
    async fn heavy_instances_are_checked_off_the_worker_within_the_limit() {
        let wide: Vec<Value> = (0..3_000).map(|i| json!({"const": i})).collect();
        let schema =
            Schema::from_value(json!({"type": "array", "items": {"anyOf": wide}})).unwrap();
        let instance = json!((0..2_000).collect::<Vec<_>>());
        let limit = std::time::Duration::from_secs(60);
        assert!(schema.check_within(&instance, limit).await.is_ok());
        let bad = json!([1, 2, "x"]);
        let e = schema.check_within(&bad, limit).await.unwrap_err();
        assert!(e.starts_with("at /2:"), "{e}");
        let huge = json!((0..30_000).map(|i| i % 3_000).collect::<Vec<_>>());
        let e = schema
            .check_within(&huge, std::time::Duration::from_millis(1))
            .await
            .unwrap_err();
        assert!(e.contains("could not be validated within 1 ms"), "{e}");
    }
}
