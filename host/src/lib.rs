//! Warden: a policy-enforcement kernel for LLM tool calls.
//!
//! A [`Kernel`](kernel::Kernel) is built from a [`Config`](config::Config). It
//! loads plugins ([`registry`]) as WebAssembly components into a
//! [`Sandbox`](sandbox::Sandbox), compiles a Rego [`policy`] bundle, and opens
//! the hash-chained [`audit`] trail. [`Kernel::call`](kernel::Kernel::call)
//! runs one request through the pipeline: resolve -> session context
//! ([`session`]) -> decide ([`policy`]) -> validate ([`schema`]) -> run
//! ([`sandbox`]) -> check output -> record ([`audit`]). The [`server`] and
//! [`mcp`] modules expose it over HTTP and MCP; the `warden` binary over the
//! command line. `docs/ARCHITECTURE.md` maps the modules.

#![deny(missing_docs)]

pub mod audit;
pub(crate) mod backend;
pub(crate) mod bounds;
pub mod budget;
pub mod capabilities;
pub mod config;
pub mod contract;
pub mod digest;
pub mod error;
pub(crate) mod gateway;
pub mod glob;
pub mod kernel;
pub mod manifest;
pub mod mcp;
pub mod metrics;
pub mod openai;
pub mod policy;
pub(crate) mod principal;
pub(crate) mod registry;
pub(crate) mod sandbox;
pub(crate) mod schema;
pub mod server;
pub mod session;
pub mod telemetry;
pub mod tokens;
pub mod trace;
pub(crate) mod upstream;
pub mod verify;

pub use error::{CallError, Error, ErrorCode};
pub use kernel::{CallRequest, CallResponse, Kernel};
