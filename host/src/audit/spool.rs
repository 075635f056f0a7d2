//! The local spool: when the audit store cannot commit, records are appended
//! to this file and fsync'd before callers are answered, then drained into the
//! store, in order, once it is back. Draining is idempotent (`(chain_id, seq)`
//! is unique), so a crash mid-drain neither loses nor duplicates a record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoredRecord;

/// One spooled record and the host label of its chain.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SpooledRecord {
    pub(super) host: String,
    pub(super) row: StoredRecord,
}

pub(super) struct Spool {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Spool {
    pub(super) fn open(path: &Path) -> std::io::Result<Spool> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let len = file.metadata()?.len();
        Ok(Spool {
            path: path.to_path_buf(),
            file,
            len,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
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
        let result = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += buffer.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Every complete record in the spool, in order. A torn last line (a crash
    /// while appending) was never acknowledged and is skipped.
    pub(super) fn read(&self) -> std::io::Result<Vec<SpooledRecord>> {
        let reader = BufReader::new(File::open(&self.path)?);
        let mut records = Vec::new();
        for line in reader.lines() {
            match serde_json::from_str(&line?) {
                Ok(record) => records.push(record),
                Err(_) => break,
            }
        }
        Ok(records)
    }

    pub(super) fn clear(&mut self) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }
}
