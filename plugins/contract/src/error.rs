//! Why a verdict could not be given: a contract that cannot be used, or
//! content that cannot be checked within the verifier's bounds.

/// An error `verify` returns; the host turns it into an `error` verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A contract is not JSON.
    #[error("contract {index}: not JSON: {reason}")]
    NotJson {
        /// Position of the contract in `subject.contracts`.
        index: usize,
        /// The parser's message.
        reason: String,
    },
    /// A contract does not have the contract format (`docs/schemas/contract.v1.json`).
    #[error("contract {index}: {at}: {problem}")]
    Format {
        /// Position of the contract in `subject.contracts`.
        index: usize,
        /// Where in the contract, as a JSON Pointer (`/rules/2/compare/op`), or `contract`.
        at: String,
        /// What is wrong.
        problem: String,
    },
    /// A contract's `schema` does not compile.
    #[error("contract {index}: /schema does not compile: {reason}")]
    Schema {
        /// Position of the contract in `subject.contracts`.
        index: usize,
        /// The validator's message.
        reason: String,
    },
    /// The content is not JSON.
    #[error("content is not JSON: {0}")]
    Content(String),
    /// A pointer matched more values than the verifier checks: the content
    /// cannot be checked in full, so it is not passed.
    #[error(
        "contract {index}, rule {rule}: `{pointer}` matches more than {limit} values in the content"
    )]
    TooManyMatches {
        /// Position of the contract in `subject.contracts`.
        index: usize,
        /// Position of the rule in the contract's `rules`.
        rule: usize,
        /// The rule's pointer.
        pointer: String,
        /// [`crate::pointer::MAX_MATCHES`].
        limit: usize,
    },
}
