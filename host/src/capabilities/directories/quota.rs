//! Disk quotas on read-write directory grants (`grants.disk_quota_mb`).
//!
//! What counts is what the disk holds: allocated blocks (`st_blocks`, so a
//! sparse file costs the blocks it allocates, not its length or the bytes
//! passed to `write`) plus one block for every directory entry (a file,
//! directory or symbolic link costs an inode and a name even when empty).
//!
//! wasmtime-wasi changes files itself, so Warden re-links the
//! `wasi:filesystem` functions that can make usage grow and charges an
//! estimate that is never below what they allocate *before* they run; a
//! charge past the quota stops the call with `disk-quota` and the operation
//! never reaches the disk:
//! - `write`, `write-via-stream`, `append-via-stream`: every block the write
//!   touches, except the one the same descriptor or stream wrote last (so
//!   sequential small writes pay each block once), plus one block for the
//!   file's block map whenever a write does not continue the previous one
//!   (sparse writes at scattered offsets allocate map blocks too);
//! - `set-size`: the growth, although a hole allocates nothing;
//! - `open-at` creating a file, `create-directory-at`, `link-at`: one block;
//!   `symlink-at`: one block plus its target rounded up to blocks.
//!
//! The running count starts from a measurement of the plugin's read-write
//! directories, taken at a call's first growing operation when no other call
//! of the plugin is writing, so space freed since is credited back. The
//! measurement walks the directories through the handles opened at load
//! (`openat` relative to the parent, never following links, so no path is
//! too long and no link leads out), on a blocking thread rather than an async
//! worker, and fails closed: when it cannot finish (an entry it cannot stat or
//! open, a tree deeper than [`MAX_DEPTH`] or larger than [`MAX_ENTRIES`]) the
//! call's writes are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{
    DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

use super::Preopens;
use crate::capabilities::Host;

/// The version of `wasi:filesystem` wasmtime-wasi 48 links; guests importing
/// any 0.2.x resolve to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";
/// Directory levels the measurement descends; each holds one descriptor open
/// while it is walked. A deeper tree cannot be measured, so writes are refused.
const MAX_DEPTH: usize = 256;
/// Entries the measurement visits before it gives up (and writes are refused).
const MAX_ENTRIES: u64 = 1_000_000;
/// How the measurement opens directories: for reading, never through a link.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);
/// The smallest block size charged, whatever the file system reports.
const MIN_BLOCK: u64 = 4096;

/// One plugin's disk quota over all its read-write directories.
#[derive(Debug)]
pub struct DiskQuota {
    limit: u64,
    /// The file system's block size: the unit of allocation charged.
    block: u64,
    dirs: Vec<Arc<std::fs::File>>,
    state: Mutex<Usage>,
    /// One measurement at a time, and no call starts writing during one.
    measuring: tokio::sync::Mutex<()>,
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
pub enum DiskQuotaExceeded {
    /// The write would take usage past the quota.
    #[error("write past the disk quota of {limit} bytes on the plugin's read-write directories")]
    Full {
        /// The quota, in bytes.
        limit: u64,
    },
    /// The directories could not be measured; writes are refused until they can.
    #[error(
        "write, but its read-write directories could not be measured against the disk quota: {reason}"
    )]
    Unmeasured {
        /// Why the measurement failed.
        reason: String,
    },
}

impl DiskQuota {
    /// A quota of `limit` bytes over the read-write directories of `preopens`.
    pub fn new(limit: u64, preopens: &Preopens) -> DiskQuota {
        let dirs = preopens.rw().to_vec();
        let block = dirs
            .first()
            .and_then(|dir| rustix::fs::fstatvfs(dir).ok())
            .map_or(MIN_BLOCK, |vfs| vfs.f_bsize.max(MIN_BLOCK));
        DiskQuota {
            limit,
            block,
            dirs,
            state: Mutex::default(),
            measuring: tokio::sync::Mutex::new(()),
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
    async fn start_writing(&self) -> Result<(), DiskQuotaExceeded> {
        let _one_at_a_time = self.measuring.lock().await;
        if self.usage().writers == 0 {
            let dirs = self.dirs.clone();
            let block = self.block;
            let used = tokio::task::spawn_blocking(move || measure(&dirs, block))
                .await
                .map_err(|e| e.to_string())
                .and_then(|measured| measured)
                .map_err(|reason| DiskQuotaExceeded::Unmeasured { reason })?;
            self.usage().used = used;
        }
        self.usage().writers += 1;
        Ok(())
    }

    fn stop_writing(&self) {
        let mut usage = self.usage();
        usage.writers = usage.writers.saturating_sub(1);
    }

    fn charge(&self, bytes: u64) -> Result<(), DiskQuotaExceeded> {
        let mut usage = self.usage();
        match usage.used.checked_add(bytes) {
            Some(used) if used <= self.limit => {
                usage.used = used;
                Ok(())
            }
            _ => Err(DiskQuotaExceeded::Full { limit: self.limit }),
        }
    }

    /// Charges a write of `len` bytes at `offset` by a descriptor or stream
    /// whose previous write ended in block `last`; returns the block it ends in.
    fn charge_write(
        &self,
        last: Option<u64>,
        offset: u64,
        len: u64,
    ) -> Result<Option<u64>, DiskQuotaExceeded> {
        if len == 0 {
            return Ok(last);
        }
        let first = offset / self.block;
        let end = offset.saturating_add(len - 1) / self.block;
        let mut blocks = end - first + 1;
        match last {
            Some(last) if last == first => blocks -= 1,
            Some(last) if last.checked_add(1) == Some(first) => {}
            // Not continuing the previous write: the block map may grow.
            _ => blocks += 1,
        }
        self.charge(blocks.saturating_mul(self.block))?;
        Ok(Some(end))
    }

    /// What one new directory entry costs, with `content` bytes stored in it.
    fn entry_cost(&self, content: u64) -> u64 {
        self.block
            .saturating_add(content.div_ceil(self.block).saturating_mul(self.block))
    }
}

/// What the directories hold: allocated bytes plus one block per entry.
fn measure(dirs: &[Arc<std::fs::File>], block: u64) -> Result<u64, String> {
    let mut total = 0u64;
    let mut entries = 0u64;
    for dir in dirs {
        total = total.saturating_add(allocated(
            &rustix::fs::fstat(dir).map_err(|e| format!("stat: {e}"))?,
            block,
        ));
        // The grant's handle may be `O_PATH` (cap-std opens directories that
        // way): open it again, relative to itself, for reading.
        let root = rustix::fs::openat(dir, c".", DIR_FLAGS, Mode::empty())
            .map_err(|e| format!("open a read-write directory: {e}"))?;
        let mut stack = vec![rustix::fs::Dir::new(root).map_err(|e| format!("read: {e}"))?];
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                break;
            };
            let entry = match top.read() {
                None => {
                    stack.pop();
                    continue;
                }
                Some(entry) => entry.map_err(|e| format!("read a directory: {e}"))?,
            };
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            entries += 1;
            if entries > MAX_ENTRIES {
                return Err(format!("more than {MAX_ENTRIES} entries"));
            }
            let parent = top.fd().map_err(|e| format!("{e}"))?;
            let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                // Removed since it was listed: it holds nothing now.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(format!("stat {name:?}: {e}")),
            };
            total = total
                .saturating_add(block)
                .saturating_add(allocated(&stat, block));
            if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                if depth >= MAX_DEPTH {
                    return Err(format!("directories nested deeper than {MAX_DEPTH} levels"));
                }
                let child = match rustix::fs::openat(parent, name, DIR_FLAGS, Mode::empty()) {
                    Ok(child) => child,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => return Err(format!("open {name:?}: {e}")),
                };
                stack.push(rustix::fs::Dir::new(child).map_err(|e| format!("read {name:?}: {e}"))?);
            }
        }
    }
    Ok(total)
}

/// Bytes allocated to one file: its blocks, and at least its size for a
/// symbolic link (some file systems store short targets without blocks).
fn allocated(stat: &rustix::fs::Stat, block: u64) -> u64 {
    let blocks = u64::try_from(stat.st_blocks)
        .unwrap_or(0)
        .saturating_mul(512);
    if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink {
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        return blocks.max(size.div_ceil(block).saturating_mul(block));
    }
    blocks
}

/// A call's view of its plugin's quota.
#[derive(Debug)]
pub struct CallQuota {
    quota: Arc<DiskQuota>,
    writing: bool,
    /// The block each descriptor (by handle) last wrote with `write`.
    last_block: HashMap<u32, u64>,
}

impl CallQuota {
    pub(super) fn new(quota: Arc<DiskQuota>) -> CallQuota {
        CallQuota {
            quota,
            writing: false,
            last_block: HashMap::new(),
        }
    }

    /// The quota, for a call that is about to grow usage.
    async fn quota(&mut self) -> Result<&Arc<DiskQuota>, DiskQuotaExceeded> {
        if !self.writing {
            self.quota.start_writing().await?;
            self.writing = true;
        }
        Ok(&self.quota)
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
    /// Where the next write lands.
    position: u64,
    last_block: Option<u64>,
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
        let len = bytes.len() as u64;
        self.last_block = self
            .quota
            .charge_write(self.last_block, self.position, len)
            .map_err(|e| StreamError::Trap(e.into()))?;
        self.position = self.position.saturating_add(len);
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
fn guest_result<T: Host, V>(
    state: &mut T,
    result: FsResult<V>,
) -> wasmtime::Result<(Result<V, ErrorCode>,)> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => Ok((Err(types::Host::convert_error_code(
            &mut state.filesystem(),
            e,
        )?),)),
    }
}

/// Puts a quota-charging wrapper around a new file stream, if the call has a quota.
async fn charged_stream<T: Host>(
    state: &mut T,
    stream: FsResult<Resource<DynOutputStream>>,
    position: u64,
) -> wasmtime::Result<(Result<Resource<DynOutputStream>, ErrorCode>,)> {
    let rep = match (&stream, call_quota(state)) {
        (Ok(stream), Some(_)) => stream.rep(),
        _ => return guest_result(state, stream),
    };
    let quota = match call_quota(state) {
        Some(quota) => quota.quota().await?.clone(),
        None => return guest_result(state, stream),
    };
    let inner = state
        .ctx()
        .table
        .delete(Resource::<DynOutputStream>::new_own(rep))?;
    let wrapped: DynOutputStream = Box::new(QuotaStream {
        inner,
        quota,
        position,
        last_block: None,
    });
    Ok((Ok(state.ctx().table.push(wrapped)?),))
}

/// Whether `fd` is a directory the call may change (entries in read-only
/// grants are refused by wasmtime-wasi and cost nothing).
fn writable_dir<T: Host>(state: &mut T, fd: &Resource<Descriptor>) -> bool {
    matches!(
        state.ctx().table.get(fd),
        Ok(Descriptor::Dir(dir)) if dir.perms == FsPerms::ReadWrite
    )
}

/// Charges `bytes` to the call's quota, if it has one.
async fn charge<T: Host>(state: &mut T, bytes: u64) -> Result<(), DiskQuotaExceeded> {
    match call_quota(state) {
        Some(quota) => quota.quota().await?.charge(bytes),
        None => Ok(()),
    }
}

/// Charges one new entry at `path` holding `content` bytes, if `fd` is a
/// writable directory and nothing is there yet (the operation fails otherwise).
async fn charge_entry<T: Host>(
    state: &mut T,
    fd: &Resource<Descriptor>,
    path: &str,
    content: u64,
) -> Result<(), DiskQuotaExceeded> {
    if call_quota(state).is_none() || !writable_dir(state, fd) {
        return Ok(());
    }
    let exists = HostDescriptor::stat_at(
        &mut state.filesystem(),
        borrow(fd),
        PathFlags::empty(),
        path.to_string(),
    )
    .await
    .is_ok();
    if exists {
        return Ok(());
    }
    let cost = call_quota(state).map_or(0, |quota| quota.quota.entry_cost(content));
    charge(state, cost).await
}

/// The call's quota, if its plugin has one.
fn call_quota<T: Host>(state: &mut T) -> Option<&mut CallQuota> {
    state.capabilities().directories.as_mut()
}

fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

/// Re-links the functions that can grow usage so they charge the call's quota.
pub(super) fn link<T: Host>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut instance = linker.instance(FILESYSTEM_TYPES)?;
    instance.func_wrap_async(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd, offset): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let stream = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
                charged_stream(state, stream, offset).await
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, T>, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let end = match call_quota(state) {
                    Some(_) => HostDescriptor::stat(&mut state.filesystem(), borrow(&fd))
                        .await
                        .map_or(0, |stat| stat.size),
                    None => 0,
                };
                let stream = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
                charged_stream(state, stream, end).await
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, T>,
         (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                if let Some(call) = call_quota(state) {
                    let last = call.last_block.get(&fd.rep()).copied();
                    let end =
                        call.quota()
                            .await?
                            .charge_write(last, offset, buffer.len() as u64)?;
                    if let Some(end) = end {
                        call.last_block.insert(fd.rep(), end);
                    }
                }
                let written =
                    HostDescriptor::write(&mut state.filesystem(), fd, buffer, offset).await;
                guest_result(state, written)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, T>, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                if call_quota(state).is_some() {
                    let current = HostDescriptor::stat(&mut state.filesystem(), borrow(&fd)).await;
                    let grows = match current {
                        Ok(stat) => size.saturating_sub(stat.size),
                        Err(e) => return guest_result(state, Err(e)),
                    };
                    charge(state, grows).await?;
                }
                let resized = HostDescriptor::set_size(&mut state.filesystem(), fd, size).await;
                guest_result(state, resized)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if open_flags.contains(OpenFlags::CREATE) {
                    charge_entry(state, &fd, &path, 0).await?;
                }
                let opened = HostDescriptor::open_at(
                    &mut state.filesystem(),
                    fd,
                    path_flags,
                    path,
                    open_flags,
                    flags,
                )
                .await;
                guest_result(state, opened)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store: StoreContextMut<'_, T>, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                let state = store.data_mut();
                charge_entry(state, &fd, &path, 0).await?;
                let created =
                    HostDescriptor::create_directory_at(&mut state.filesystem(), fd, path).await;
                guest_result(state, created)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, target, path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                let state = store.data_mut();
                charge_entry(state, &fd, &path, target.len() as u64).await?;
                let linked =
                    HostDescriptor::symlink_at(&mut state.filesystem(), fd, target, path).await;
                guest_result(state, linked)
            })
        },
    )?;
    instance.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store: StoreContextMut<'_, T>,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                charge_entry(state, &new_fd, &new_path, 0).await?;
                let linked = HostDescriptor::link_at(
                    &mut state.filesystem(),
                    fd,
                    old_flags,
                    old_path,
                    new_fd,
                    new_path,
                )
                .await;
                guest_result(state, linked)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
