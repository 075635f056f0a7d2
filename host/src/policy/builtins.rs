//! Builtins the host gives policies: its own parsers, so that a rule reads a
//! value exactly as the sandbox will act on it.
//!
//! - `warden.parse_url(url)`: the URL as egress reads it
//!   ([`crate::capabilities::http::parse_url`]): `{"scheme", "host", "port", "path",
//!   "query", "fragment", "username", "has_password"}`, or `null` when it is
//!   not a URL with a host (or not a string).
//!
//! The tree-walking engine (bundle tests) calls them as extensions; the
//! compiled VM that decides calls suspends on them as host-await calls
//! and [`answer`] supplies the value.

use regorus::Value;

/// Name of the URL builtin, as policies call it.
pub const PARSE_URL: &str = "warden.parse_url";

/// Each builtin and its number of arguments, for the VM compiler.
pub(crate) const HOST_AWAIT: &[(&str, usize)] = &[(PARSE_URL, 1)];

/// Registers the builtins with a tree-walking engine.
pub(crate) fn register(engine: &mut regorus::Engine) -> Result<(), String> {
    engine
        .add_extension(
            PARSE_URL.to_string(),
            1,
            Box::new(|args: Vec<Value>| {
                Ok::<_, anyhow::Error>(parse_url(args.first().unwrap_or(&Value::Null)))
            }),
        )
        .map_err(|e| format!("registering `{PARSE_URL}`: {e}"))
}

/// The value of the builtin `identifier` for the VM's host-await `argument`
/// (the array of the call's arguments).
pub(crate) fn answer(identifier: &Value, argument: &Value) -> Result<Value, String> {
    let arguments = argument.as_array().map_err(|e| e.to_string())?;
    match identifier.as_string().map(|s| s.as_ref()) {
        Ok(PARSE_URL) => Ok(parse_url(arguments.first().unwrap_or(&Value::Null))),
        _ => Err(format!(
            "the policy called `{identifier}`, which the host does not provide"
        )),
    }
}

fn parse_url(url: &Value) -> Value {
    let Ok(text) = url.as_string() else {
        return Value::Null;
    };
    let Some(url) = crate::capabilities::http::parse_url(text) else {
        return Value::Null;
    };
    let optional = |part: Option<String>| part.map_or(Value::Null, Value::from);
    // Built directly in the evaluator's type: this runs inside a decision.
    Value::from(
        [
            ("scheme", Value::from(url.scheme)),
            ("host", Value::from(url.host)),
            ("port", Value::from(u64::from(url.port))),
            ("path", Value::from(url.path)),
            ("query", optional(url.query)),
            ("fragment", optional(url.fragment)),
            ("username", Value::from(url.username)),
            ("has_password", Value::from(url.has_password)),
        ]
        .into_iter()
        .map(|(key, value)| (Value::from(key), value))
        .collect::<std::collections::BTreeMap<_, _>>(),
    )
}
