//! Directories: host directories mapped into the sandbox (`wasi:filesystem`),
//! opened once at load ([`preopens`]), with an optional disk quota over the
//! read-write ones ([`quota`]).

mod preopens;
mod quota;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmtime::component::Linker;

use super::{Capability, GrantLoad, Host, HostSettings, Invalid, Prepare};

pub use preopens::Preopens;
pub use quota::{CallQuota, DiskQuota, DiskQuotaExceeded};

/// The `directories` capability.
#[derive(Debug)]
pub struct Directories;

/// Access mode of a directory. `ro` < `rw`: the effective mode is the lesser
/// of what is requested and what is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read-only.
    Ro,
    /// Read and write.
    Rw,
}

impl Access {
    /// `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Ro => "ro",
            Access::Rw => "rw",
        }
    }
}

/// `[capabilities] directories`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DirectoryRequest {
    /// Directories, by guest path, with the access wanted.
    pub directories: Vec<RequestedDirectory>,
}

/// A directory a plugin asks for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedDirectory {
    /// Absolute path inside the sandbox, e.g. `/data`.
    pub guest: String,
    /// Access wanted.
    pub access: Access,
}

/// `[plugins.NAME.grants] directories, disk_quota_mb`: by default none.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DirectoryGrant {
    /// Host directories mapped to guest paths.
    pub directories: Vec<GrantedDirectory>,
    /// Most bytes the plugin's read-write directories may hold, in MiB.
    /// By default no quota beyond the host's disk.
    pub disk_quota_mb: Option<u64>,
}

/// A host directory granted to a plugin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantedDirectory {
    /// Directory on the host (relative paths are relative to the config file).
    pub host: PathBuf,
    /// Absolute path inside the sandbox.
    pub guest: String,
    /// Access granted.
    pub access: Access,
}

/// A plugin's directories: granted ∩ requested, opened once at load.
#[derive(Debug, Clone, Default)]
pub struct DirectoryAccess {
    /// The directories, with their effective access.
    pub granted: Vec<GrantedDirectory>,
    /// The same directories, opened once at load; calls never re-open them by path.
    pub preopens: Preopens,
    /// Quota over the read-write directories, shared by the plugin's calls.
    pub disk_quota: Option<Arc<DiskQuota>>,
}

impl Capability for Directories {
    const SUMMARY_FIELDS: &'static [&'static str] = &["directories"];
    type Request = DirectoryRequest;
    type Grant = DirectoryGrant;
    type Effective = DirectoryAccess;
    type State = Option<CallQuota>;

    fn validate_request(request: &DirectoryRequest) -> Result<(), Invalid> {
        for (i, dir) in request.directories.iter().enumerate() {
            if !dir.guest.starts_with('/') {
                return Err((
                    format!("directories[{i}].guest"),
                    format!("`{}` must be an absolute path", dir.guest),
                ));
            }
        }
        Ok(())
    }

    fn validate_grant(grant: &mut DirectoryGrant, load: &GrantLoad<'_>) -> Result<(), Invalid> {
        for (i, dir) in grant.directories.iter_mut().enumerate() {
            dir.host = load.base.join(&dir.host);
            if !dir.host.is_dir() {
                return Err((
                    format!("directories[{i}].host"),
                    format!("{} is not a directory", dir.host.display()),
                ));
            }
            if !dir.guest.starts_with('/') {
                return Err((
                    format!("directories[{i}].guest"),
                    format!("`{}` must be an absolute path", dir.guest),
                ));
            }
        }
        Ok(())
    }

    fn validate_across(grants: &[(&str, &DirectoryGrant)]) -> Result<(), Invalid> {
        check_grant_overlap(grants)
    }

    fn intersect(
        request: &DirectoryRequest,
        grant: &DirectoryGrant,
        _host: &HostSettings<'_>,
    ) -> Result<DirectoryAccess, String> {
        let granted: Vec<GrantedDirectory> = grant
            .directories
            .iter()
            .filter_map(|grant| {
                let request = request
                    .directories
                    .iter()
                    .find(|r| r.guest == grant.guest)?;
                Some(GrantedDirectory {
                    access: grant.access.min(request.access),
                    ..grant.clone()
                })
            })
            .collect();
        let preopens = Preopens::open(&granted)?;
        let disk_quota = grant
            .disk_quota_mb
            .map(|mb| Arc::new(DiskQuota::new(mb << 20, &preopens)));
        Ok(DirectoryAccess {
            granted,
            preopens,
            disk_quota,
        })
    }

    fn missing(request: &DirectoryRequest, grant: &DirectoryGrant, missing: &mut Vec<String>) {
        for dir in &request.directories {
            match grant.directories.iter().find(|g| g.guest == dir.guest) {
                None => missing.push(format!(
                    "directory {} ({}) is not granted",
                    dir.guest,
                    dir.access.as_str()
                )),
                Some(g) if g.access < dir.access => missing.push(format!(
                    "directory {} is requested {} but granted {}",
                    dir.guest,
                    dir.access.as_str(),
                    g.access.as_str()
                )),
                Some(_) => {}
            }
        }
    }

    fn summary(
        effective: &DirectoryAccess,
        summary: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        summary.insert(
            "directories".into(),
            effective
                .granted
                .iter()
                .map(|d| serde_json::json!({"guest": d.guest, "access": d.access}))
                .collect(),
        );
    }

    /// A read-write directory changes the host whatever the tool claims.
    fn without_side_effects(
        effective: &DirectoryAccess,
    ) -> Result<Option<DirectoryAccess>, String> {
        let writable: Vec<&str> = effective
            .granted
            .iter()
            .filter(|d| d.access == Access::Rw)
            .map(|d| d.guest.as_str())
            .collect();
        if writable.is_empty() {
            Ok(None)
        } else {
            Err(format!(
                "it holds a read-write grant on {}",
                writable.join(", ")
            ))
        }
    }

    /// `wasi:filesystem` itself is linked by the sandbox with the rest of
    /// WASI; this re-links the functions that can grow disk usage.
    fn link<T: Host>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        quota::link(linker)
    }

    fn prepare(effective: &DirectoryAccess, call: &mut Prepare<'_>) -> Option<CallQuota> {
        // The grants opened at load, never re-opened by path (see preopens.rs).
        *call.filesystem = effective.preopens.filesystem();
        effective.disk_quota.clone().map(CallQuota::new)
    }
}

/// A granted directory as the overlap check sees it.
struct GrantPath {
    field: String,
    access: Access,
    /// Every directory that opening the path walks through (lexically and
    /// with symbolic links resolved), the directory itself last.
    walked: Vec<PathBuf>,
    /// The directory itself, lexically and resolved.
    forms: Vec<PathBuf>,
}

/// Refuses grants whose host paths lie inside, equal or contain a read-write
/// grant, within one plugin or across plugins: the holder of the read-write
/// grant could otherwise replace a directory on the other grant's path (a
/// relative symbolic link suffices) before the host next opens it.
fn check_grant_overlap(plugins: &[(&str, &DirectoryGrant)]) -> Result<(), Invalid> {
    let mut grants = Vec::new();
    for (name, grant) in plugins {
        for (i, dir) in grant.directories.iter().enumerate() {
            let field = format!("plugins.{name}.grants.directories[{i}].host");
            let absolute = std::path::absolute(&dir.host)
                .map_err(|e| (field.clone(), format!("{}: {e}", dir.host.display())))?;
            let walked = walked_directories(&absolute);
            let mut forms = vec![lexical(&absolute)];
            forms.extend(std::fs::canonicalize(&absolute).ok());
            grants.push(GrantPath {
                field,
                access: dir.access,
                walked,
                forms,
            });
        }
    }
    for (i, a) in grants.iter().enumerate() {
        for (j, b) in grants.iter().enumerate() {
            if i == j || b.access != Access::Rw {
                continue;
            }
            // `a` walks through `b` (lies inside or equals it), or `b` walks
            // through `a` (`a` contains it).
            let inside = |x: &GrantPath, y: &GrantPath| {
                x.walked
                    .iter()
                    .any(|w| y.forms.iter().any(|f| w.starts_with(f)))
            };
            if inside(a, b) || inside(b, a) {
                return Err((
                    a.field.clone(),
                    format!(
                        "{} overlaps the read-write grant `{}` ({}): a granted directory may \
                         not lie inside, equal or contain a read-write one, or the plugin \
                         holding it could redirect the other grant",
                        a.forms[0].display(),
                        b.field,
                        b.forms[0].display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `path` with `.` removed and `..` applied to the components before it.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The directories opening `path` walks through below the root, each as
/// written (with `..` applied) and, where it exists, with symbolic links
/// resolved. `/a/b/../c` walks `/a`, `/a/b`, `/a` and `/a/c`.
fn walked_directories(path: &Path) -> Vec<PathBuf> {
    let mut walked = Vec::new();
    let mut current = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => continue,
            std::path::Component::ParentDir => {
                current.pop();
            }
            other => current.push(other),
        }
        if current.parent().is_some() {
            walked.push(current.clone());
            walked.extend(std::fs::canonicalize(&current).ok());
        }
    }
    walked
}
