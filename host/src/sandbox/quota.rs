//! Disk quotas on read-write directory grants (`grants.disk_quota_mb`).
//!
//! wasmtime-wasi writes files itself, so Warden re-links the four
//! `wasi:filesystem` functions through which a guest can grow a file —
//! `write`, `write-via-stream`, `append-via-stream` and `set-size` — and
//! charges every byte to the plugin's quota *before* it is written. A write
//! that would go past the quota stops the call with `disk-quota`, and nothing
//! of it reaches the disk.
//!
//! The counter starts from what the plugin's read-write directories hold,
//! measured at the first write of a call when no other call of the plugin is
//! writing (so space freed since is credited back); calls that write at the
//! same time share the running counter. Overwriting bytes counts as writing
//! them, so the charge is never too small.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{self, ErrorCode, HostDescriptor};
use wasmtime_wasi::p2::{
    DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

use super::CallState;

/// The version of `wasi:filesystem` wasmtime-wasi 48 links; guests importing
/// any 0.2.x resolve to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// One plugin's disk quota over all its read-write directories.
#[derive(Debug)]
pub struct DiskQuota {
    limit: u64,
    dirs: Vec<PathBuf>,
    state: Mutex<Usage>,
}

#[derive(Debug, Default)]
struct Usage {
    /// Bytes held or charged.
    used: u64,
    /// Calls that have written and not finished.
    writers: usize,
}

/// A write refused by the quota: the trap that stops the call.
#[derive(Debug, thiserror::Error)]
#[error("write past the disk quota of {limit} bytes on the plugin's read-write directories")]
pub struct DiskQuotaExceeded {
    /// The quota, in bytes.
    pub limit: u64,
}

impl DiskQuota {
    /// A quota of `limit` bytes over the files under `dirs`.
    pub fn new(limit: u64, dirs: Vec<PathBuf>) -> DiskQuota {
        DiskQuota {
            limit,
            dirs,
            state: Mutex::default(),
        }
    }

    /// The quota, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call starts writing: measure the directories unless others are
    /// writing (their charges may not have reached the disk yet).
    fn start_writing(&self) {
        let mut usage = self.usage();
        if usage.writers == 0 {
            usage.used = self.dirs.iter().map(|d| tree_size(d)).sum();
        }
        usage.writers += 1;
    }

    fn stop_writing(&self) {
        let mut usage = self.usage();
        usage.writers = usage.writers.saturating_sub(1);
    }

    fn charge(&self, bytes: u64) -> Result<(), DiskQuotaExceeded> {
        let mut usage = self.usage();
        if usage.used.saturating_add(bytes) > self.limit {
            return Err(DiskQuotaExceeded { limit: self.limit });
        }
        usage.used += bytes;
        Ok(())
    }
}

/// Total size of the regular files under `dir`; symbolic links are not followed.
fn tree_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(metadata) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                total += metadata.len();
            }
        }
    }
    total
}

/// A call's view of its plugin's quota.
#[derive(Debug)]
pub(super) struct CallQuota {
    quota: Arc<DiskQuota>,
    writing: bool,
}

impl CallQuota {
    pub(super) fn new(quota: Arc<DiskQuota>) -> CallQuota {
        CallQuota {
            quota,
            writing: false,
        }
    }

    /// The quota, for a call that is about to write.
    fn quota(&mut self) -> &Arc<DiskQuota> {
        if !self.writing {
            self.quota.start_writing();
            self.writing = true;
        }
        &self.quota
    }
}

impl Drop for CallQuota {
    fn drop(&mut self) {
        if self.writing {
            self.quota.stop_writing();
        }
    }
}

/// A file's output stream that charges each write to the quota first.
struct QuotaStream {
    inner: DynOutputStream,
    quota: Arc<DiskQuota>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.quota
            .charge(bytes.len() as u64)
            .map_err(|e| StreamError::Trap(e.into()))?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

/// A wasi:filesystem result as the guest receives it.
fn guest_result<T>(
    state: &mut CallState,
    result: FsResult<T>,
) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => Ok((Err(types::Host::convert_error_code(
            &mut state.filesystem(),
            e,
        )?),)),
    }
}

/// Puts a quota-charging wrapper around a new file stream, if the call has a quota.
fn charged_stream(
    state: &mut CallState,
    stream: FsResult<Resource<DynOutputStream>>,
) -> wasmtime::Result<(Result<Resource<DynOutputStream>, ErrorCode>,)> {
    let (Ok(stream), Some(quota)) = (&stream, state.quota.as_mut()) else {
        return guest_result(state, stream);
    };
    let quota = quota.quota().clone();
    let inner = state
        .table
        .delete(Resource::<DynOutputStream>::new_own(stream.rep()))?;
    let wrapped: DynOutputStream = Box::new(QuotaStream { inner, quota });
    Ok((Ok(state.table.push(wrapped)?),))
}

/// Re-links the functions that can grow a file so they charge the call's quota.
pub(super) fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(FILESYSTEM_TYPES)?;
    instance.func_wrap_async(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, CallState>, (fd, offset): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let stream = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
                charged_stream(state, stream)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, CallState>, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let stream = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
                charged_stream(state, stream)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, CallState>,
         (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                if let Some(quota) = state.quota.as_mut() {
                    quota.quota().charge(buffer.len() as u64)?;
                }
                let written =
                    HostDescriptor::write(&mut state.filesystem(), fd, buffer, offset).await;
                guest_result(state, written)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, CallState>, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                if state.quota.is_some() {
                    let borrowed = Resource::<Descriptor>::new_borrow(fd.rep());
                    let current = HostDescriptor::stat(&mut state.filesystem(), borrowed).await;
                    let grows = match current {
                        Ok(stat) => size.saturating_sub(stat.size),
                        Err(e) => return guest_result(state, Err(e)),
                    };
                    if let Some(quota) = state.quota.as_mut() {
                        quota.quota().charge(grows)?;
                    }
                }
                let resized = HostDescriptor::set_size(&mut state.filesystem(), fd, size).await;
                guest_result(state, resized)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
