//! A plugin's stdout and stderr: captured per call, never the host's.
//!
//! The first [`CAPTURE_BYTES`] are kept (they are quoted when a plugin traps);
//! the rest is accepted and dropped, so a chatty plugin neither fails nor grows
//! host memory.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of output kept per call.
pub(super) const CAPTURE_BYTES: usize = 16 * 1024;

/// Shared capture buffer for one call's stdout and stderr.
#[derive(Clone, Default)]
pub(super) struct CapturedOutput {
    kept: Arc<Mutex<Vec<u8>>>,
}

impl CapturedOutput {
    /// What the plugin wrote, up to [`CAPTURE_BYTES`].
    pub(super) fn contents(&self) -> String {
        self.kept
            .lock()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .unwrap_or_default()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Ok(mut kept) = self.kept.lock() {
            let room = CAPTURE_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..buf.len().min(room)]);
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
