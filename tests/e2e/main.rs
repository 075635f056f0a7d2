//! End-to-end tests: real compiled components, real Rego, real SQLite and
//! PostgreSQL. Build the plugins first (`cargo xtask test` does).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test stops at its first failure"
)]

mod harness;

mod audit;
mod audit_faults;
mod bounds;
mod calls;
mod cli;
mod containment;
mod exhaustion;
mod fuzz;
mod gateway;
mod grants;
mod hostile;
mod http_api;
mod languages;
mod loading;
mod mcp;
mod policy;
mod refusals;
mod secrets;
mod sessions;
mod side_effects;
mod url_parsing;
