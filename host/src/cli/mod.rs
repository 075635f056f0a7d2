//! One module per `warden` command; `main.rs` parses the arguments and
//! dispatches here.

pub(crate) mod audit;
pub(crate) mod call;
pub(crate) mod mcp;
pub(crate) mod migrate;
pub(crate) mod plugins;
pub(crate) mod policy;
pub(crate) mod serve;
pub(crate) mod tools;
