//! Outbound HTTP: the single choke point through which a plugin's `wasi:http`
//! requests leave the sandbox. Each request is checked against the plugin's
//! effective origins before any connection is made; refusals are remembered so
//! the call can be reported as `capability-denied`.

use http::uri::Scheme;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::capabilities::Origin;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

pub(super) struct Egress {
    allowed: Vec<Origin>,
    denied: Vec<String>,
}

impl Egress {
    pub(super) fn new(allowed: Vec<Origin>) -> Egress {
        Egress {
            allowed,
            denied: Vec::new(),
        }
    }

    /// Origins this call tried to reach and was refused.
    pub(super) fn denied(&self) -> &[String] {
        &self.denied
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.allowed.iter().any(|o| o.allows(scheme, host, port))
    }
}

impl WasiHttpHooks for Egress {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme().unwrap_or(&Scheme::HTTPS).as_str().to_string();
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        if !self.allows(&scheme, &host, port) {
            self.denied.push(format!("{scheme}://{host}:{port}"));
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        drop(fut);
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}
