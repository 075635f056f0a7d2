//! Messages for JSON Schema errors that say which keyword failed and what
//! the schema asks for, never what the content holds: the validator's own
//! messages quote the offending value (`"abc" is not of type "integer"`)
//! and the names of unexpected members.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind as K};

/// One line for a schema error: what the schema requires of the value at
/// the error's instance location, and the keyword's location in the schema.
pub(crate) fn describe(error: &ValidationError<'_>) -> String {
    let what = match error.kind() {
        K::AdditionalItems { limit } => format!("more items than the {limit} allowed"),
        K::AdditionalProperties { unexpected } => {
            format!(
                "{} member(s) not allowed by `additionalProperties`",
                unexpected.len()
            )
        }
        K::AnyOf { .. } => "matches none of the `anyOf` schemas".to_string(),
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            "`pattern` could not be evaluated".to_string()
        }
        K::Constant { .. } => "is not the `const` value".to_string(),
        K::Contains => "has no item matching `contains`".to_string(),
        K::ContentEncoding { content_encoding } => format!("is not valid {content_encoding}"),
        K::ContentMediaType { content_media_type } => {
            format!("is not valid {content_media_type}")
        }
        K::Custom { keyword, .. } => format!("fails `{keyword}`"),
        K::Enum { .. } => "is not one of the `enum` values".to_string(),
        K::ExclusiveMaximum { limit } => format!("must be < {limit}"),
        K::ExclusiveMinimum { limit } => format!("must be > {limit}"),
        K::FalseSchema => "is not allowed (schema `false`)".to_string(),
        K::Format { format } => format!("is not a valid `{format}`"),
        K::FromUtf8 { .. } => "does not decode to UTF-8".to_string(),
        K::MaxItems { limit } => format!("must have at most {limit} items"),
        K::Maximum { limit } => format!("must be <= {limit}"),
        K::MaxLength { limit } => format!("must be at most {limit} characters long"),
        K::MaxProperties { limit } => format!("must have at most {limit} members"),
        K::MinItems { limit } => format!("must have at least {limit} items"),
        K::Minimum { limit } => format!("must be >= {limit}"),
        K::MinLength { limit } => format!("must be at least {limit} characters long"),
        K::MinProperties { limit } => format!("must have at least {limit} members"),
        K::MultipleOf { multiple_of } => format!("must be a multiple of {multiple_of}"),
        K::Not { .. } => "matches the schema under `not`".to_string(),
        K::OneOfMultipleValid { .. } => "matches more than one `oneOf` schema".to_string(),
        K::OneOfNotValid { .. } => "matches none of the `oneOf` schemas".to_string(),
        K::Pattern { .. } => "does not match `pattern`".to_string(),
        K::PropertyNames { .. } => "has a member name `propertyNames` refuses".to_string(),
        K::Required { property } => match property.as_str() {
            Some(name) => format!("lacks the required member `{name}`"),
            None => "lacks a required member".to_string(),
        },
        K::Type { kind } => format!("must be of type {}", types(kind)),
        K::UnevaluatedItems { unexpected } => {
            format!(
                "{} item(s) not allowed by `unevaluatedItems`",
                unexpected.len()
            )
        }
        K::UnevaluatedProperties { unexpected } => {
            format!(
                "{} member(s) not allowed by `unevaluatedProperties`",
                unexpected.len()
            )
        }
        K::UniqueItems => "has duplicate items".to_string(),
        K::Referencing(_) => "a `$ref` could not be resolved".to_string(),
    };
    let at = error.instance_path().as_str();
    let at = if at.is_empty() {
        "the content"
    } else {
        "the value"
    };
    format!(
        "{at} {what} (`{}` at `{}`)",
        error.kind().keyword(),
        error.schema_path().as_str()
    )
}

fn types(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(set) => set
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}
