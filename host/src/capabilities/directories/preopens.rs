//! Granted directories, opened once when the plugin loads.
//!
//! Re-opening a grant by path at every call would follow whatever symbolic
//! links lie on that path *now*: a plugin able to write on the path (through a
//! read-write grant of its own) could turn another grant into a door to the
//! rest of the host. So each grant is opened once, here, and every call's WASI
//! context gets a clone of that handle; nothing below a grant is ever looked up
//! by host path again. The config loader refuses grants whose paths overlap a
//! read-write grant, so no plugin can change the path of another grant before
//! a restart either.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtx, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::{Access, GrantedDirectory};

/// A plugin's granted directories as open handles, shared by all its calls.
#[derive(Clone, Default)]
pub struct Preopens {
    /// The preopens exactly as a call's WASI context holds them.
    filesystem: WasiFilesystemCtx,
    /// The read-write directories, for the disk quota's measurement.
    rw: Vec<Arc<std::fs::File>>,
}

impl std::fmt::Debug for Preopens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preopens").finish_non_exhaustive()
    }
}

impl Preopens {
    /// Opens every directory once. Fails, naming the directory, when one
    /// cannot be opened or when what was opened is not what the path names a
    /// moment later (the path changed while loading: fail closed).
    pub fn open(directories: &[GrantedDirectory]) -> Result<Preopens, String> {
        let mut builder = WasiCtxBuilder::new();
        for dir in directories {
            let perms = match dir.access {
                Access::Ro => FsPerms::ReadOnly,
                Access::Rw => FsPerms::ReadWrite,
            };
            builder
                .preopened_dir(&dir.host, &dir.guest, perms)
                .map_err(|e| {
                    format!("cannot open granted directory {}: {e}", dir.host.display())
                })?;
        }
        let mut filesystem = std::mem::take(builder.build().filesystem());

        // Take the handles back out (wasmtime keeps them private) to check
        // their identity and to give the quota its read-write ones.
        let mut table = ResourceTable::new();
        let handles = WasiFilesystemCtxView {
            ctx: &mut filesystem,
            table: &mut table,
        }
        .get_directories()
        .map_err(|e| format!("cannot list the granted directories: {e}"))?;
        let mut rw = Vec::new();
        for ((resource, _), dir) in handles.into_iter().zip(directories) {
            let handle = match table.get(&resource) {
                Ok(Descriptor::Dir(opened)) => Arc::clone(&opened.dir),
                _ => return Err(format!("{} is not a directory", dir.host.display())),
            };
            same_file(&handle, &dir.host)?;
            if dir.access == Access::Rw {
                rw.push(handle);
            }
        }
        Ok(Preopens { filesystem, rw })
    }

    /// The preopens for one call's WASI context.
    pub(super) fn filesystem(&self) -> WasiFilesystemCtx {
        self.filesystem.clone()
    }

    /// Handles on the read-write directories.
    pub(super) fn rw(&self) -> &[Arc<std::fs::File>] {
        &self.rw
    }
}

/// Whether `handle` is the directory `path` names (device and inode).
fn same_file(handle: &std::fs::File, path: &Path) -> Result<(), String> {
    let opened = rustix::fs::fstat(handle)
        .map_err(|e| format!("cannot stat granted directory {}: {e}", path.display()))?;
    let named = rustix::fs::stat(path)
        .map_err(|e| format!("cannot stat granted directory {}: {e}", path.display()))?;
    if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino) {
        return Err(format!(
            "granted directory {} changed while it was being opened",
            path.display()
        ));
    }
    Ok(())
}
