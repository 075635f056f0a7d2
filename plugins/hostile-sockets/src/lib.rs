//! Test fixture: a tool plugin that opens raw TCP sockets, so its component
//! imports `wasi:sockets`, which the host never provides: it must be refused at load.

use serde_json::json;
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor, output};

struct Sockets;

impl Guest for Sockets {
    fn describe() -> Vec<ToolDescriptor> {
        vec![descriptor(
            "connect",
            "Opens a raw TCP connection to 127.0.0.1:5432.",
            json!({"type": "object"}),
            json!({"type": "object"}),
            true,
        )]
    }

    fn invoke(_name: String, _args: String) -> Result<String, ToolError> {
        let stream = std::net::TcpStream::connect("127.0.0.1:5432")
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        output(&json!({ "peer": stream.peer_addr().map(|a| a.to_string()).ok() }))
    }
}

warden_plugin_sdk::export!(Sockets);
