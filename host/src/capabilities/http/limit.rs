//! A cap on the outgoing requests one call may have in flight, around the
//! egress hooks.

use std::sync::Arc;

use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode as P2ErrorCode;
use wasmtime_wasi_http::{
    Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks,
};

/// Outgoing HTTP requests one call may have in flight (connecting, waiting
/// for an answer or streaming its body) at once.
const MAX_REQUESTS_IN_FLIGHT: usize = 32;

/// The call's HTTP hooks with at most [`MAX_REQUESTS_IN_FLIGHT`] requests in
/// flight; everything else is `inner`'s (egress) decision.
pub struct RequestLimit<H> {
    pub(super) inner: H,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl<H> std::fmt::Debug for RequestLimit<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLimit").finish_non_exhaustive()
    }
}

impl<H> RequestLimit<H> {
    pub(super) fn new(inner: H) -> RequestLimit<H> {
        RequestLimit {
            inner,
            in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT)),
        }
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

impl<H: WasiHttpHooks> WasiHttpHooks for RequestLimit<H> {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        response_errors: IoFuture,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = MAX_REQUESTS_IN_FLIGHT,
                "outbound request refused: too many in flight"
            );
            return Box::new(async { Err(HttpError::ConnectionLimitReached) });
        };
        let sending = Box::into_pin(self.inner.send_request(request, options, response_errors));
        Box::new(async move {
            let (response, connection) = sending.await?;
            // The request stays in flight until its connection is done.
            let connection: IoFuture = Box::new(async move {
                let _permit = permit;
                Box::into_pin(connection).await
            });
            Ok((response, connection))
        })
    }

    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        self.inner.is_forbidden_header(name)
    }

    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        self.inner.forbidden_header_filter()
    }

    fn is_supported_scheme(&mut self, scheme: &http::uri::Scheme) -> bool {
        self.inner.is_supported_scheme(scheme)
    }

    fn set_host_header(&mut self) -> bool {
        self.inner.set_host_header()
    }

    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        self.inner.default_scheme()
    }

    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        self.inner.p2_outgoing_body_buffer_chunks()
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.inner.p2_outgoing_body_chunk_size()
    }

    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> P2ErrorCode {
        self.inner.p2_error_from_hyper(err)
    }

    fn p2_error_from_connect(&mut self, err: &std::io::Error) -> P2ErrorCode {
        self.inner.p2_error_from_connect(err)
    }

    fn p2_error_from_tls(&mut self, err: &std::io::Error) -> P2ErrorCode {
        self.inner.p2_error_from_tls(err)
    }
}
