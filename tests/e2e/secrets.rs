//! Secret reflection (issue 12, class 8): an injected credential never comes
//! back to the plugin, whether the server echoes it through TRACE, in a
//! response header, in the body (also split across chunks), or compressed;
//! and a binding can restrict the methods and paths that carry it.

use crate::fixtures;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden::ErrorCode;

use crate::harness::{ALLOW_ALL, Harness, Host, Store, error, manifest, output, toml_path};

const SECRET: &str = "s3cr3t-reflected-7f3a9c";

/// A request as the echo server received it: method, path, headers.
type Seen = (String, String, Vec<(String, String)>);

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every method (TRACE
/// included) by echoing the request: each header back as `x-echo-NAME`, and
/// the request line and headers as the body. `/stream…` sends the body in
/// 3-byte chunks, one at a time; `/gzip…` labels it `content-encoding: gzip`.
struct EchoServer {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl EchoServer {
    async fn start() -> EchoServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(echo(stream, log.clone()));
            }
        });
        EchoServer { addr, seen }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Whether the request to `path` (the last one) carried the secret.
    fn carried_secret(&self, method: &str, path: &str) -> bool {
        let seen = self.seen();
        let (_, _, headers) = seen
            .iter()
            .rev()
            .find(|(m, p, _)| m == method && p == path)
            .unwrap_or_else(|| panic!("{method} {path} was not received: {seen:?}"));
        headers.iter().any(|(_, v)| v.contains(SECRET))
    }
}

async fn echo(mut stream: tokio::net::TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if stream.read_exact(&mut body).await.is_err() {
        return;
    }
    // A body of unknown length comes chunked: read it to its last chunk, or
    // closing with unread bytes would reset the connection.
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        let mut rest = Vec::new();
        while !rest.ends_with(b"0\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => rest.push(byte[0]),
                _ => return,
            }
        }
    }
    seen.lock()
        .unwrap()
        .push((method.clone(), path.clone(), headers.clone()));

    let mut echoed = format!("{method} {path}\n");
    let mut response_headers = String::new();
    for (name, value) in &headers {
        echoed.push_str(&format!("{name}: {value}\n"));
        response_headers.push_str(&format!("x-echo-{name}: {value}\r\n"));
    }
    if path.starts_with("/gzip") {
        response_headers.push_str("content-encoding: gzip\r\n");
    }
    if path.starts_with("/stream") {
        let head = format!(
            "HTTP/1.1 200 OK\r\n{response_headers}transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in echoed.as_bytes().chunks(3) {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if stream.write_all(&frame).await.is_err() || stream.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    } else {
        let body = if method == "HEAD" {
            ""
        } else {
            echoed.as_str()
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\n{response_headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            echoed.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
    }
    let _ = stream.shutdown().await;
}

/// The fetch plugin and the hostile-egress plugin (pinned as side-effecting,
/// so it may use any method), both granted the echo server with the secret
/// bound to it as `authorization: Bearer …`, `binding_extra` added.
async fn host(server: &EchoServer, binding_extra: &str) -> Host {
    let grants = format!(
        "{{ outbound_http = [\"{origin}\"], private_ranges = [\"127.0.0.1/32\"], \
         secrets = [{{ secret = \"api\", origin = \"{origin}\", header = \"authorization\", \
         format = \"Bearer {{secret}}\"{binding_extra} }}] }}",
        origin = server.origin()
    );
    Harness::new(Store::Sqlite)
        .secret("api", SECRET)
        .plugin_entry(
            "fetch",
            &format!(
                "manifest = {}\ngrants = {grants}",
                toml_path(&manifest(fixtures::FETCH))
            ),
        )
        .plugin_entry(
            "hostile-egress",
            &format!(
                "manifest = {}\nallow_reduced = true\ngrants = {grants}\n\
                 [plugins.hostile-egress.tools.request]\nside_effects = true\n",
                toml_path(&manifest(fixtures::HOSTILE_EGRESS))
            ),
        )
        .policy(ALLOW_ALL)
        .start()
        .await
}

fn send(server: &EchoServer, method: &str, path: &str) -> Value {
    json!({"method": method, "authority": server.addr.to_string(), "path": path})
}

#[tokio::test]
pub(crate) async fn trace_track_and_connect_are_never_sent() {
    let server = EchoServer::start().await;
    let host = host(&server, "").await;
    for method in ["TRACE", "trace", "TRACK", "Track", "CONNECT"] {
        let response = host
            .call("root", "hostile-egress.request", send(&server, method, "/"))
            .await;
        let e = error(&response, ErrorCode::CapabilityDenied);
        assert!(
            e.message
                .contains("TRACE, TRACK and CONNECT are never sent"),
            "{method}: {}",
            e.message
        );
        assert!(!e.message.contains(SECRET));
    }
    // Swallowed, the refusal is still recorded.
    let mut args = send(&server, "TRACE", "/");
    args["swallow"] = json!(true);
    let response = host.call("root", "hostile-egress.request", args).await;
    assert!(!output(&response).to_string().contains(SECRET));
    let record = host.record(&response.call_id).await.record;
    assert!(
        record.refusals[0].contains("never sent"),
        "{:?}",
        record.refusals
    );
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[tokio::test]
async fn a_reflected_secret_never_reaches_the_plugin() {
    let server = EchoServer::start().await;
    let host = host(&server, "").await;
    let cases = [
        ("GET", "/"),
        ("POST", "/submit"),
        ("PUT", "/a/b"),
        ("DELETE", "/x"),
        ("OPTIONS", "/"),
        ("GET", "/stream"),
        ("POST", "/stream/long"),
    ];
    for (method, path) in cases {
        let response = host
            .call(
                "root",
                "hostile-egress.request",
                send(&server, method, path),
            )
            .await;
        let out = output(&response).to_string();
        assert!(server.carried_secret(method, path), "{method} {path}");
        assert!(
            !out.contains(SECRET),
            "{method} {path} reflected the secret: {out}"
        );
        assert!(
            out.contains(&"*".repeat(SECRET.len())),
            "{method} {path}: {out}"
        );
        let record = host.record(&response.call_id).await.record;
        assert_eq!(
            record.refusals,
            vec![format!(
                "secret `api` was scrubbed from the response of {}",
                server.origin()
            )]
        );
    }

    // The fetch plugin, through its own GETs (and a path the server streams).
    for path in ["/page", "/stream/page"] {
        let response = host
            .call(
                "root",
                "fetch.get",
                json!({"url": format!("{}{path}", server.origin())}),
            )
            .await;
        let body = output(&response)["body"].as_str().unwrap().to_string();
        assert!(body.contains("authorization: Bearer ****"), "{body}");
        assert!(!body.contains(SECRET), "{body}");
    }

    // A compressed echo could not be scrubbed: the host asked for none, and
    // refuses a response that is encoded all the same.
    let response = host
        .call(
            "root",
            "hostile-egress.request",
            send(&server, "GET", "/gzip"),
        )
        .await;
    let e = error(&response, ErrorCode::CapabilityDenied);
    assert!(e.message.contains("cannot be scrubbed"), "{}", e.message);
    let (_, _, headers) = server.seen().pop().unwrap();
    assert!(
        headers.contains(&("accept-encoding".into(), "identity".into())),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_secret_binding_restricts_methods_and_paths() {
    let server = EchoServer::start().await;
    let host = host(
        &server,
        ", methods = [\"GET\"], path_prefixes = [\"/api/\", \"/v2\"]",
    )
    .await;
    let cases = [
        ("GET", "/api/items", true),
        ("GET", "/api/", true),
        ("GET", "/v2", true),
        ("GET", "/v2/x?y=1", true),
        ("POST", "/api/items", false),
        ("PUT", "/api/items", false),
        ("GET", "/apix", false),
        ("GET", "/v2x", false),
        ("GET", "/API/items", false),
        ("GET", "/api/../echo", false),
        ("GET", "/api/./x", false),
        ("GET", "/%61pi/items", false),
        ("GET", "/api%2f..%2fecho", false),
        ("GET", "/", false),
    ];
    for (method, path, carries) in cases {
        let response = host
            .call(
                "root",
                "hostile-egress.request",
                send(&server, method, path),
            )
            .await;
        let out = output(&response).to_string();
        assert_eq!(
            server.carried_secret(method, path),
            carries,
            "{method} {path}"
        );
        assert!(!out.contains(SECRET), "{method} {path}: {out}");
    }
}

#[tokio::test]
async fn bindings_that_cannot_be_honoured_are_refused_at_load() {
    for (extra, expected) in [
        (
            ", methods = [\"TRACE\"]",
            "`TRACE` is not a method a secret can be sent with",
        ),
        (", methods = [\"connect\"]", "`connect` is not a method"),
        (
            ", path_prefixes = [\"api/\"]",
            "`api/` must be an absolute path",
        ),
        (
            ", path_prefixes = [\"/a/../b\"]",
            "`/a/../b` must be an absolute path",
        ),
        (
            ", path_prefixes = [\"/a%2fb\"]",
            "`/a%2fb` must be an absolute path",
        ),
    ] {
        let server = EchoServer::start().await;
        let grants = format!(
            "{{ outbound_http = [\"{origin}\"], secrets = [{{ secret = \"api\", \
             origin = \"{origin}\", header = \"authorization\"{extra} }}] }}",
            origin = server.origin()
        );
        let refused = Harness::new(Store::Sqlite)
            .secret("api", SECRET)
            .plugin_entry(
                "fetch",
                &format!(
                    "manifest = {}\ngrants = {grants}",
                    toml_path(&manifest(fixtures::FETCH))
                ),
            )
            .policy(ALLOW_ALL)
            .try_start()
            .await
            .err()
            .expect("refused")
            .0
            .to_string();
        assert!(
            refused.contains("plugins.fetch.grants.secrets[0]") && refused.contains(expected),
            "{refused}"
        );
    }
}
