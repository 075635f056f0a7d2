//! `hostile-fs`: a test fixture that attacks the host's grant handles,
//! descriptor table and disk quota (issue 12, classes 1, 4 and 7). Every tool
//! reports how far it got instead of stopping at the first refusal, so the
//! tests can tell "refused" from "never tried".

use serde::Deserialize;
use serde_json::json;
use warden_plugin_sdk::{Guest, ToolDescriptor, ToolError, descriptor, output, parse_args};
use wasip2::filesystem::preopens::get_directories;
use wasip2::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

struct HostileFs;

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct LinkArgs {
    /// Guest path of the link to create; what is there is moved aside first.
    path: String,
    target: String,
}

#[derive(Deserialize)]
struct CountArgs {
    path: String,
    count: u64,
}

#[derive(Deserialize)]
struct FloodArgs {
    url: String,
    count: u64,
    /// Wait on the first request after sending them all (it never answers).
    #[serde(default)]
    hold: bool,
}

#[derive(Deserialize)]
struct SparseArgs {
    path: String,
    count: u64,
    /// Distance between the one-byte writes.
    stride: u64,
    #[serde(default)]
    offset: u64,
}

#[derive(Deserialize)]
struct EntriesArgs {
    /// A directory to create and fill.
    path: String,
    count: u64,
    /// `file`, `dir` or `link`.
    kind: String,
    /// Length of each link's target.
    #[serde(default)]
    target_len: usize,
}

#[derive(Deserialize)]
struct DeepArgs {
    /// A read-write preopen, e.g. `/rw`.
    root: String,
    depth: u64,
    name_len: usize,
    /// Bytes written into `file` at the bottom.
    bytes: u64,
    file: String,
}

/// Every tool declares side effects: the plugin holds read-write grants, and
/// the host refuses a claim of none that its capabilities contradict.
fn tool(name: &str, description: &str) -> ToolDescriptor {
    descriptor(
        name,
        description,
        json!({"type": "object"}),
        json!({"type": "object"}),
        true,
    )
}

fn failed(what: impl std::fmt::Display) -> ToolError {
    ToolError::Failed(what.to_string())
}

/// The preopen holding guest path `path` and the path relative to it.
fn locate(path: &str) -> Result<(Descriptor, String), ToolError> {
    let (dir, root) = get_directories()
        .into_iter()
        .filter(|(_, root)| {
            path.strip_prefix(root.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|(_, root)| root.len())
        .ok_or_else(|| failed(format!("{path} is not under a preopen")))?;
    let relative = path[root.len()..].trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    Ok((dir, relative.to_string()))
}

fn open_dir(parent: &Descriptor, path: &str) -> Result<Descriptor, ToolError> {
    parent
        .open_at(
            PathFlags::empty(),
            path,
            OpenFlags::DIRECTORY,
            DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY,
        )
        .map_err(|e| failed(format!("open {path}: {e:?}")))
}

fn create_file(parent: &Descriptor, path: &str) -> Result<Descriptor, ToolError> {
    parent
        .open_at(
            PathFlags::empty(),
            path,
            OpenFlags::CREATE,
            DescriptorFlags::READ | DescriptorFlags::WRITE,
        )
        .map_err(|e| failed(format!("create {path}: {e:?}")))
}

/// Moves whatever is at `path` aside and puts a symbolic link to `target` there.
fn plant_link(args: &LinkArgs) -> Result<serde_json::Value, ToolError> {
    let (dir, relative) = locate(&args.path)?;
    let moved = dir
        .rename_at(&relative, &dir, &format!("{relative}.orig"))
        .is_ok();
    dir.symlink_at(&args.target, &relative)
        .map_err(|e| failed(format!("symlink {relative} -> {}: {e:?}", args.target)))?;
    Ok(json!({ "linked": true, "moved": moved }))
}

/// Holds `count` open descriptors on one file.
fn open_many(args: &CountArgs) -> serde_json::Value {
    let mut files = Vec::new();
    let mut error = None;
    for _ in 0..args.count {
        match std::fs::File::open(&args.path) {
            Ok(file) => files.push(file),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    json!({ "opened": files.len(), "error": error })
}

/// Sends `count` GET requests to `url` without waiting for any answer.
fn flood(args: &FloodArgs) -> Result<serde_json::Value, ToolError> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let rest = args
        .url
        .strip_prefix("http://")
        .ok_or_else(|| ToolError::InvalidInput("url must be http://".into()))?;
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let mut pending = Vec::new();
    let mut error = None;
    for _ in 0..args.count {
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_method(&Method::Get);
        let _ = request.set_scheme(Some(&Scheme::Http));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(&path));
        let Ok(body) = request.body() else {
            error = Some("no request body".to_string());
            break;
        };
        match outgoing_handler::handle(request, None) {
            Ok(response) => {
                let _ = OutgoingBody::finish(body, None);
                pending.push(response);
            }
            Err(e) => {
                error = Some(format!("{e:?}"));
                break;
            }
        }
    }
    if args.hold
        && let Some(first) = pending.first()
    {
        first.subscribe().block();
    }
    Ok(json!({ "sent": pending.len(), "error": error }))
}

/// One-byte writes `stride` bytes apart, starting at `offset`.
fn sparse(args: &SparseArgs) -> Result<serde_json::Value, ToolError> {
    let (dir, relative) = locate(&args.path)?;
    let file = create_file(&dir, &relative)?;
    let mut written = 0u64;
    for i in 0..args.count {
        let at = args.offset.saturating_add(i.saturating_mul(args.stride));
        if let Err(e) = file.write(&[1], at) {
            return Ok(json!({ "written": written, "error": format!("{e:?}") }));
        }
        written += 1;
    }
    Ok(json!({ "written": written, "error": null }))
}

/// Creates a directory holding `count` empty files, directories or links.
fn entries(args: &EntriesArgs) -> Result<serde_json::Value, ToolError> {
    let (dir, relative) = locate(&args.path)?;
    let _ = dir.create_directory_at(&relative);
    let parent = open_dir(&dir, &relative)?;
    let target = "t".repeat(args.target_len.max(1));
    let mut made = 0u64;
    for i in 0..args.count {
        let name = format!("e{i}");
        let result = match args.kind.as_str() {
            "file" => create_file(&parent, &name).map(drop),
            "dir" => parent
                .create_directory_at(&name)
                .map_err(|e| failed(format!("{e:?}"))),
            "link" => parent
                .symlink_at(&target, &name)
                .map_err(|e| failed(format!("{e:?}"))),
            other => return Err(ToolError::InvalidInput(format!("kind `{other}`"))),
        };
        if let Err(e) = result {
            return Ok(json!({ "made": made, "error": format!("{e:?}") }));
        }
        made += 1;
    }
    Ok(json!({ "made": made, "error": null }))
}

/// Nests directories until their host path is far longer than PATH_MAX, then
/// writes a file at the bottom, always relative to the directory above.
fn deep(args: &DeepArgs) -> Result<serde_json::Value, ToolError> {
    let (mut dir, _) = locate(&args.root)?;
    let name = "d".repeat(args.name_len.max(1));
    for level in 0..args.depth {
        let _ = dir.create_directory_at(&name);
        dir = match open_dir(&dir, &name) {
            Ok(next) => next,
            Err(e) => {
                return Ok(json!({ "depth": level, "written": 0, "error": format!("{e:?}") }));
            }
        };
    }
    let file = create_file(&dir, &args.file)?;
    let chunk = vec![9u8; 64 << 10];
    let mut written = 0u64;
    while written < args.bytes {
        let n = chunk
            .len()
            .min(usize::try_from(args.bytes - written).unwrap_or(usize::MAX));
        if let Err(e) = file.write(&chunk[..n], written) {
            return Ok(
                json!({ "depth": args.depth, "written": written, "error": format!("{e:?}") }),
            );
        }
        written += n as u64;
    }
    Ok(json!({ "depth": args.depth, "written": written, "error": null }))
}

impl Guest for HostileFs {
    fn describe() -> Vec<ToolDescriptor> {
        vec![
            tool("read", "Reads a file by guest path."),
            tool("write", "Writes a file by guest path."),
            tool("list", "Lists a directory by guest path."),
            tool("plant_link", "Replaces a path with a symbolic link."),
            tool("open_many", "Holds many open descriptors on one file."),
            tool("flood", "Sends many requests without waiting for answers."),
            tool("sparse", "Writes single bytes far apart."),
            tool("entries", "Creates many empty files, directories or links."),
            tool("deep", "Writes below a path longer than PATH_MAX."),
        ]
    }

    fn invoke(name: String, args: String) -> Result<String, ToolError> {
        match name.as_str() {
            "read" => {
                let a: PathArgs = parse_args(&args)?;
                let content = std::fs::read_to_string(&a.path)
                    .map_err(|e| failed(format!("{}: {e}", a.path)))?;
                output(&json!({ "content": content }))
            }
            "write" => {
                let a: WriteArgs = parse_args(&args)?;
                std::fs::write(&a.path, a.content.as_bytes())
                    .map_err(|e| failed(format!("{}: {e}", a.path)))?;
                output(&json!({ "written": a.content.len() }))
            }
            "list" => {
                let a: PathArgs = parse_args(&args)?;
                let names: Vec<String> = std::fs::read_dir(&a.path)
                    .map_err(|e| failed(format!("{}: {e}", a.path)))?
                    .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                    .collect();
                output(&json!({ "names": names }))
            }
            "plant_link" => output(&plant_link(&parse_args(&args)?)?),
            "open_many" => output(&open_many(&parse_args(&args)?)),
            "flood" => output(&flood(&parse_args(&args)?)?),
            "sparse" => output(&sparse(&parse_args(&args)?)?),
            "entries" => output(&entries(&parse_args(&args)?)?),
            "deep" => output(&deep(&parse_args(&args)?)?),
            other => Err(warden_plugin_sdk::unknown_tool(other)),
        }
    }
}

warden_plugin_sdk::export!(HostileFs);
