//! The local spool: when the audit store cannot commit, records are appended
//! to a file and fsync'd before callers are answered, then drained into the
//! store, in order, once it is back. Draining is idempotent (`(chain_id, seq)`
//! is unique), so a crash mid-drain neither loses nor duplicates a record.
//!
//! Each spool file belongs to one process, which holds an exclusive lock
//! (`flock`) on it for as long as it runs: the configured path if it is free,
//! else `PATH.<uuid>` beside it. A process never appends to, drains or clears
//! a file another live process holds; it drains files whose owner is gone
//! (the lock is free) together with its own, and removes them once stored.
//!
//! A line that does not parse (the torn tail of an append cut short by a
//! crash: it was never acknowledged) is skipped, never taken as the end of the
//! file, and the file is repaired on open so later appends start on a fresh
//! line. Records the store refuses for what they contain go to
//! `PATH.rejected`, so one bad record cannot block a drain forever.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoredRecord;

/// One spooled record and the host label of its chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SpooledRecord {
    pub(super) host: String,
    pub(super) row: StoredRecord,
}

/// A locked spool file.
#[derive(Debug)]
struct Locked {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Locked {
    /// Opens and locks `path`, or `None` if another process holds it.
    fn open(path: &Path, create: bool) -> std::io::Result<Option<Locked>> {
        let file = OpenOptions::new()
            .create(create)
            .append(true)
            .read(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let mut locked = Locked {
            path: path.to_path_buf(),
            len: file.metadata()?.len(),
            file,
        };
        locked.repair()?;
        Ok(Some(locked))
    }

    /// Ends a torn last line, so the next append starts a line of its own.
    fn repair(&mut self) -> std::io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let mut last = [0u8; 1];
        self.file.seek(SeekFrom::Start(self.len - 1))?;
        self.file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            tracing::warn!(spool = %self.path.display(), "audit spool ends with a torn line (a crash mid-append); it is skipped");
            self.file.write_all(b"\n")?;
            self.file.sync_data()?;
            self.len += 1;
        }
        Ok(())
    }

    /// Every record that parses, in order; lines that do not are skipped.
    fn read(&self) -> std::io::Result<Vec<SpooledRecord>> {
        let mut reader = BufReader::new(File::open(&self.path)?);
        let (mut records, mut skipped) = (Vec::new(), 0usize);
        let mut line = Vec::new();
        let mut offset = 0u64;
        // Only the bytes present when this process took the lock or last
        // appended: nobody else writes to a locked file.
        while offset < self.len {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            match serde_json::from_slice::<SpooledRecord>(&line) {
                Ok(record) => records.push(record),
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(spool = %self.path.display(), skipped, "audit spool lines that do not parse were skipped (torn by a crash, never acknowledged)");
        }
        Ok(records)
    }

    fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}

/// This process's spool and the files it drains.
#[derive(Debug)]
pub(super) struct Spool {
    /// The configured path: other processes' files and the rejected file sit beside it.
    base: PathBuf,
    own: Locked,
    /// Files left by processes that are gone, locked by us until drained.
    abandoned: Vec<Locked>,
}

impl Spool {
    /// Takes the configured spool, or a file of its own beside it when another
    /// process holds it; then locks whatever earlier processes left behind.
    pub(super) fn open(base: &Path) -> std::io::Result<Spool> {
        let own = match Locked::open(base, true)? {
            Some(own) => own,
            None => {
                let path = sibling(base, &uuid::Uuid::new_v4().simple().to_string());
                Locked::open(&path, true)?
                    .ok_or_else(|| std::io::Error::other(format!("{} is locked", path.display())))?
            }
        };
        let mut spool = Spool {
            base: base.to_path_buf(),
            own,
            abandoned: Vec::new(),
        };
        spool.adopt()?;
        Ok(spool)
    }

    /// Locks every non-empty spool file beside ours that no live process holds.
    pub(super) fn adopt(&mut self) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (self.base.parent(), self.base.file_name()) else {
            return Ok(());
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let name = name.to_string_lossy().into_owned();
        let prefix = format!("{name}.");
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            let ours = file_name == name || file_name.starts_with(&prefix);
            if !ours
                || file_name.ends_with(".rejected")
                || path == self.own.path
                || self.abandoned.iter().any(|a| a.path == path)
            {
                continue;
            }
            match Locked::open(&path, false) {
                Ok(Some(locked)) if locked.len > 0 => self.abandoned.push(locked),
                Ok(Some(empty)) => remove_unless_base(&self.base, empty),
                Ok(None) => {}
                // Removed between listing and opening: another process drained it.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether anything waits to be drained.
    pub(super) fn is_empty(&self) -> bool {
        self.own.len == 0 && self.abandoned.is_empty()
    }

    /// Whether this process has records of its own waiting (new records must join them).
    pub(super) fn holds_own(&self) -> bool {
        self.own.len > 0
    }

    /// Appends `rows` durably; on failure the file is cut back so no partial batch remains.
    pub(super) fn append(&mut self, host: &str, rows: &[StoredRecord]) -> std::io::Result<()> {
        let mut buffer = Vec::new();
        for row in rows {
            serde_json::to_writer(
                &mut buffer,
                &SpooledRecord {
                    host: host.to_string(),
                    row: row.clone(),
                },
            )?;
            buffer.push(b'\n');
        }
        let own = &mut self.own;
        let result = own
            .file
            .write_all(&buffer)
            .and_then(|()| own.file.sync_data());
        match result {
            Ok(()) => {
                own.len += buffer.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = own.file.set_len(own.len);
                Err(e)
            }
        }
    }

    /// Every record waiting: files of processes that are gone first (older),
    /// then our own, each in order.
    pub(super) fn read(&self) -> std::io::Result<Vec<SpooledRecord>> {
        let mut records = Vec::new();
        for file in self.abandoned.iter().chain(std::iter::once(&self.own)) {
            records.extend(file.read()?);
        }
        Ok(records)
    }

    /// Forgets what [`Spool::read`] returned, once all of it is stored.
    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        for mut file in self.abandoned.drain(..) {
            file.clear()?;
            remove_unless_base(&self.base, file);
        }
        self.own.clear()
    }

    /// Keeps a record the store refuses in `PATH.rejected`, for an operator.
    pub(super) fn reject(&self, record: &SpooledRecord, error: &str) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Rejected<'a> {
            error: &'a str,
            #[serde(flatten)]
            record: &'a SpooledRecord,
        }
        let path = sibling(&self.base, "rejected");
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut line = serde_json::to_vec(&Rejected { error, record })?;
        line.push(b'\n');
        file.write_all(&line)?;
        file.sync_data()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        // An empty file of our own beside the configured one has served its purpose.
        if self.own.len == 0 && self.own.path != self.base {
            let _ = std::fs::remove_file(&self.own.path);
        }
    }
}

/// `PATH.suffix`.
fn sibling(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a drained file (while still holding its lock), unless it is the configured path.
fn remove_unless_base(base: &Path, file: Locked) {
    if file.path != base {
        let _ = std::fs::remove_file(&file.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> StoredRecord {
        StoredRecord {
            id: 0,
            chain_id: "chain".into(),
            seq,
            prev_hash: String::new(),
            hash: String::new(),
            record: crate::audit::tests::record_with_every_field(&format!("r{seq}")),
        }
    }

    fn seqs(spool: &Spool) -> Vec<i64> {
        spool.read().unwrap().iter().map(|r| r.row.seq).collect()
    }

    #[test]
    fn a_torn_line_is_skipped_and_nothing_after_it_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.spool");
        {
            let mut spool = Spool::open(&path).unwrap();
            spool.append("h", &[row(0), row(1)]).unwrap();
        }
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"host":"h","row":{"id":0,"cha"#)
            .unwrap();
        drop(file);
        let mut spool = Spool::open(&path).unwrap();
        spool.append("h", &[row(2), row(3)]).unwrap();
        assert_eq!(seqs(&spool), vec![0, 1, 2, 3]);
        spool.clear().unwrap();
        assert!(spool.is_empty());
        assert!(seqs(&spool).is_empty());
    }

    #[test]
    fn a_second_process_gets_its_own_file_and_a_dead_ones_file_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.spool");
        let mut first = Spool::open(&path).unwrap();
        let mut second = Spool::open(&path).unwrap();
        assert_ne!(first.own.path, second.own.path);
        first.append("a", &[row(0)]).unwrap();
        second.append("b", &[row(10), row(11)]).unwrap();
        assert_eq!(seqs(&first), vec![0]);
        assert_eq!(seqs(&second), vec![10, 11]);
        // A live process's file is never adopted.
        first.adopt().unwrap();
        assert_eq!(seqs(&first), vec![0]);
        let second_path = second.own.path.clone();
        drop(second);
        first.adopt().unwrap();
        assert_eq!(seqs(&first), vec![10, 11, 0]);
        first.clear().unwrap();
        assert!(!second_path.exists(), "a drained extra file is removed");
        assert!(path.exists());
    }
}
