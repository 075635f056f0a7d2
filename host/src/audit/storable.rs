//! Making a record storable before it is hashed.
//!
//! Every string in an [`AuditRecord`] may come from a caller or a plugin. A
//! few values that are valid UTF-8 and valid JSON are still refused by a
//! store, and a refused record used to take its whole group-commit batch (and,
//! spooled, every later drain) down with it. So the writer rewrites them
//! *before* it hashes the record: the hash chain then covers exactly what is
//! stored, and `verify` never sees a difference.
//!
//! - NUL (`U+0000`): PostgreSQL `text` and `jsonb` refuse it. It is stored as
//!   the six characters `\u0000`. A caller who sends those six characters
//!   literally is recorded the same way; the argument digest is computed over
//!   the original arguments, so the two stay distinguishable there.
//! - Indexed columns (principal, tenant, session, tool, call id, decision,
//!   outcome) longer than [`MAX_INDEXED_BYTES`]: a PostgreSQL b-tree entry
//!   holds at most ~2.7 kB, so a longer value is refused. It is cut at a
//!   character boundary and ends with the SHA-256 and length of the whole
//!   value, so it still identifies what was sent.
//!
//! Other control characters are stored as they are: both stores accept them,
//! and every reader prints records as JSON, which escapes them.

use sha2::{Digest, Sha256};

use super::AuditRecord;

/// Longest value kept whole in an indexed column. PostgreSQL refuses b-tree
/// entries over 2704 bytes; this leaves room for the other indexed column
/// (`recorded_at`) and for the digest suffix.
pub(super) const MAX_INDEXED_BYTES: usize = 1024;

/// What a NUL is stored as.
const NUL_ESCAPE: &str = "\\u0000";

/// Rewrites `record` so that every store accepts it; returns whether anything changed.
pub(super) fn make_storable(record: &mut AuditRecord) -> bool {
    let mut changed = false;
    for value in [
        &mut record.call_id,
        &mut record.principal,
        &mut record.tenant,
        &mut record.tool,
        &mut record.decision,
        &mut record.outcome,
    ] {
        changed |= indexed(value);
    }
    if let Some(session) = &mut record.session {
        changed |= indexed(session);
    }
    for value in [&mut record.policy_hash, &mut record.args_digest] {
        changed |= escape_nul(value);
    }
    for value in [
        &mut record.plugin,
        &mut record.plugin_sha256,
        &mut record.upstream,
        &mut record.output_digest,
        &mut record.error,
        &mut record.shadow,
        &mut record.policy_input,
        &mut record.completion,
        &mut record.sealed_text,
        &mut record.spend,
    ]
    .into_iter()
    .flatten()
    {
        changed |= escape_nul(value);
    }
    for text in record.reasons.iter_mut().chain(record.refusals.iter_mut()) {
        changed |= escape_nul(text);
    }
    for verdict in &mut record.verdicts {
        for text in [
            &mut verdict.stage,
            &mut verdict.verifier,
            &mut verdict.sha256,
            &mut verdict.verdict,
        ]
        .into_iter()
        .chain(verdict.error.as_mut())
        {
            changed |= escape_nul(text);
        }
        for finding in &mut verdict.findings {
            for text in [
                &mut finding.kind,
                &mut finding.label,
                &mut finding.severity,
                &mut finding.message,
            ]
            .into_iter()
            .chain(finding.pointer.as_mut())
            .chain(finding.digest.as_mut())
            {
                changed |= escape_nul(text);
            }
        }
    }
    for stage in &mut record.decisions {
        changed |= escape_nul(&mut stage.stage) | escape_nul(&mut stage.decision);
        for reason in &mut stage.reasons {
            changed |= escape_nul(reason);
        }
    }
    changed
}

/// Escapes NULs in `value`; returns whether it changed.
pub(crate) fn escape_nul(value: &mut String) -> bool {
    if !value.contains('\0') {
        return false;
    }
    *value = value.replace('\0', NUL_ESCAPE);
    true
}

/// Escapes NULs and bounds the length of a value kept in an index.
fn indexed(value: &mut String) -> bool {
    let escaped = escape_nul(value);
    if value.len() <= MAX_INDEXED_BYTES {
        return escaped;
    }
    let digest = hex::encode(Sha256::digest(value.as_bytes()));
    let suffix = format!("…[sha256:{digest}, {} bytes]", value.len());
    let cut = crate::bounds::prefix(value, MAX_INDEXED_BYTES - suffix.len()).len();
    value.truncate(cut);
    value.push_str(&suffix);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_escaped_in_every_string_field() {
        let mut record = crate::audit::tests::record_with_every_field("a\0b");
        assert!(make_storable(&mut record));
        assert!(
            !format!("{record:?}").contains("\\0"),
            "a NUL survived: {record:?}"
        );
        assert_eq!(record.tool, "a\\u0000b");
        assert_eq!(record.reasons, vec!["a\\u0000b".to_string()]);
        assert!(!make_storable(&mut record), "already storable");
    }

    #[test]
    fn long_indexed_values_are_cut_at_a_character_boundary_with_their_digest() {
        let mut value = "é".repeat(2000);
        assert!(indexed(&mut value));
        assert!(value.len() <= MAX_INDEXED_BYTES, "{}", value.len());
        assert!(value.ends_with(", 4000 bytes]"), "{value}");
        let mut short = "x".repeat(MAX_INDEXED_BYTES);
        assert!(!indexed(&mut short));
    }
}
