//! Validate: JSON Schemas for tool arguments and outputs, compiled once at load.

use serde_json::Value;

/// A compiled JSON Schema together with its source document.
pub struct Schema {
    document: Value,
    validator: jsonschema::Validator,
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

    /// Compiles a schema document.
    pub fn from_value(document: Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(&document).map_err(|e| e.to_string())?;
        Ok(Schema {
            document,
            validator,
        })
    }

    /// The schema document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Checks `instance`; on failure names the JSON Pointer of the first
    /// violation (`/` for the document itself) and what is wrong there.
    pub fn check(&self, instance: &Value) -> Result<(), String> {
        match self.validator.iter_errors(instance).next() {
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
}
