//! The data dir's small state files: the nightly watermarks (`DIR/state/watermarks.json`) and the
//! run lock (`DIR/.spotcost.lock`), plus the sweep of a killed run's temporary files.
//! Dataset-agnostic: a watermark is keyed by two strings. Every state file is replaced atomically
//! (temporary file, fsync, rename, fsync of the folder), so a crash leaves the old one or the new one.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({message}); move it aside to start the watermarks afresh (the next run then re-reads from start_date)")]
    Damaged { path: PathBuf, message: String },
    #[error("another spotcost run holds the lock {path} ({holder}); this run did not start")]
    Locked { path: PathBuf, holder: String },
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let error = |source| StateError::Write {
        path: path.to_owned(),
        source,
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(error)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp_path = folder.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp_path, path)?;
        if let Ok(dir) = File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result.map_err(error)
}

/// Removes the hidden temporary files (`.<name>.tmp-<pid>…`) that a killed run left in the lake, the
/// state folder, the reports and the data dir itself, and the `reports/latest.tmp-<pid>` link a run
/// killed while switching `latest` leaves. Call it only while holding the [`RunLock`]: then no other
/// writer exists, so every such file is a leftover. Returns how many were removed.
pub fn sweep_temporary_files(data_dir: &Path) -> usize {
    fn sweep(folder: &Path, recursive: bool) -> usize {
        let Ok(entries) = std::fs::read_dir(folder) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if recursive {
                    removed += sweep(&path, true);
                }
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let leftover = (name.starts_with('.') && name.contains(".tmp-"))
                || name.starts_with("latest.tmp-");
            if leftover && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        removed
    }
    sweep(data_dir, false)
        + sweep(&data_dir.join("lake"), true)
        + sweep(&data_dir.join("state"), true)
        + sweep(&data_dir.join("reports"), true)
}

/// The last day each (dataset, scope) was loaded up to by the nightly job.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    /// Format version of the file, for upgrades.
    version: u32,
    /// `"<dataset>/<scope>"` → last loaded day, `YYYY-MM-DD`.
    entries: BTreeMap<String, String>,
}

const WATERMARKS_VERSION: u32 = 1;

impl Watermarks {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("state").join("watermarks.json")
    }

    /// The saved watermarks; none yet is an empty set.
    pub fn load(data_dir: &Path) -> Result<Watermarks, StateError> {
        let path = Watermarks::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Watermarks {
                    version: WATERMARKS_VERSION,
                    entries: BTreeMap::new(),
                })
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let watermarks: Watermarks =
            serde_json::from_str(&text).map_err(|error| StateError::Damaged {
                path: path.clone(),
                message: error.to_string(),
            })?;
        if let Some((key, day)) = watermarks
            .entries
            .iter()
            .find(|(_, day)| parse_day(day).is_none())
        {
            return Err(StateError::Damaged {
                path,
                message: format!("{key} has no YYYY-MM-DD day but {day:?}"),
            });
        }
        if watermarks.version != WATERMARKS_VERSION {
            return Err(StateError::Damaged {
                path,
                message: format!(
                    "format version {} is not {WATERMARKS_VERSION}",
                    watermarks.version
                ),
            });
        }
        Ok(watermarks)
    }

    pub fn get(&self, dataset: &str, scope: &str) -> Option<NaiveDate> {
        self.entries
            .get(&key(dataset, scope))
            .and_then(|day| parse_day(day))
    }

    /// Moves a watermark forward to `day`, never backwards.
    pub fn advance(&mut self, dataset: &str, scope: &str, day: NaiveDate) {
        if self.get(dataset, scope).is_none_or(|current| current < day) {
            self.entries
                .insert(key(dataset, scope), day.format("%Y-%m-%d").to_string());
        }
    }

    pub fn save(&self, data_dir: &Path) -> Result<(), StateError> {
        let mut saved = self.clone();
        saved.version = WATERMARKS_VERSION;
        let mut text = serde_json::to_string_pretty(&saved).unwrap_or_default();
        text.push('\n');
        write_atomically(&Watermarks::path(data_dir), text.as_bytes())
    }
}

fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

fn key(dataset: &str, scope: &str) -> String {
    format!("{dataset}/{scope}")
}

/// An exclusive advisory lock on `DIR/.spotcost.lock`, held for a run's lifetime. The operating
/// system drops it when the process ends, however it ends, so a lock left by a killed run is
/// simply free; the file only says who held it last.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(".spotcost.lock")
    }

    /// Takes the lock or says who holds it. `command` and `now` are written into the file.
    pub fn acquire(
        data_dir: &Path,
        command: &str,
        now: DateTime<Utc>,
    ) -> Result<RunLock, StateError> {
        let path = RunLock::path(data_dir);
        let write_error = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(write_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(write_error)?;
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes who it is just after taking the lock: a run started at the
                // same moment may look in between, so it looks again for a little while.
                for _ in 0..25 {
                    previous.clear();
                    let _ = file
                        .rewind()
                        .and_then(|()| file.read_to_string(&mut previous));
                    if !previous.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                let holder = previous.trim();
                return Err(StateError::Locked {
                    path,
                    holder: if holder.is_empty() {
                        "holder unknown".to_owned()
                    } else {
                        holder.to_owned()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(write_error(source)),
        }
        let _ = file.read_to_string(&mut previous);
        if !previous.trim().is_empty() {
            tracing::warn!(
                lock = %path.display(),
                "taking over a lock left by a run that ended without releasing it ({})",
                previous.trim()
            );
        }
        let holder = format!(
            "pid {} ran `spotcost {command}` from {}",
            std::process::id(),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        );
        file.set_len(0).map_err(write_error)?;
        file.rewind().map_err(write_error)?;
        file.write_all(holder.as_bytes()).map_err(write_error)?;
        file.sync_all().map_err(write_error)?;
        Ok(RunLock { file, path })
    }

    pub fn file_path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // An empty file marks a clean release; the lock itself goes with the descriptor.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[test]
    fn watermarks_only_move_forward_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut watermarks = Watermarks::load(dir.path()).unwrap();
        assert_eq!(watermarks.get("ocean_costs", "act-1"), None);
        watermarks.advance("ocean_costs", "act-1", day("2026-03-05"));
        watermarks.advance("ocean_costs", "act-1", day("2026-03-01"));
        assert_eq!(
            watermarks.get("ocean_costs", "act-1"),
            Some(day("2026-03-05"))
        );
        watermarks.advance("ocean_costs", "act-1", day("2026-03-06"));
        watermarks.save(dir.path()).unwrap();
        let reloaded = Watermarks::load(dir.path()).unwrap();
        assert_eq!(
            reloaded.get("ocean_costs", "act-1"),
            Some(day("2026-03-06"))
        );
        assert_eq!(reloaded.get("ocean_costs", "act-2"), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["watermarks.json"]);
    }

    #[test]
    fn a_damaged_watermark_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        std::fs::write(Watermarks::path(dir.path()), "{\"version\":1,").unwrap();
        let error = Watermarks::load(dir.path()).unwrap_err();
        assert!(error.to_string().contains("watermarks.json"), "{error}");
    }

    #[test]
    fn leftover_temporary_files_are_swept_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let partition = dir.path().join("lake/ocean_costs/day=2026-03-01");
        std::fs::create_dir_all(&partition).unwrap();
        let keep = partition.join("part-act-1.parquet");
        std::fs::write(&keep, "data").unwrap();
        std::fs::write(partition.join(".part-act-1.parquet.tmp-123-4"), "half").unwrap();
        std::fs::write(dir.path().join(".warehouse.duckdb.tmp-123"), "half").unwrap();
        std::fs::write(dir.path().join("warehouse.duckdb"), "db").unwrap();
        let reports = dir.path().join("reports/2026-03-02");
        std::fs::create_dir_all(&reports).unwrap();
        std::fs::write(reports.join(".tmp-123-index.html"), "half").unwrap();
        std::fs::write(reports.join("index.html"), "page").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("2026-03-02", dir.path().join("reports/latest.tmp-123"))
                .unwrap();
            std::os::unix::fs::symlink("2026-03-02", dir.path().join("reports/latest")).unwrap();
        }
        let expected = if cfg!(unix) { 4 } else { 3 };
        assert_eq!(sweep_temporary_files(dir.path()), expected);
        assert!(reports.join("index.html").exists());
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_link(dir.path().join("reports/latest")).unwrap(),
            Path::new("2026-03-02")
        );
        assert!(keep.exists());
        assert!(dir.path().join("warehouse.duckdb").exists());
        assert_eq!(std::fs::read_dir(&partition).unwrap().count(), 1);
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let first = RunLock::acquire(dir.path(), "run", now).unwrap();
        let error = RunLock::acquire(dir.path(), "schedule", now).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("another spotcost run"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(message.contains("spotcost run"), "{message}");
        drop(first);
        let again = RunLock::acquire(dir.path(), "run", now).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // What a SIGKILLed run leaves behind: the file with its holder, and no lock.
        std::fs::write(
            RunLock::path(dir.path()),
            "pid 999999 ran `spotcost run` from 2026-01-01T02:00:00Z",
        )
        .unwrap();
        let lock = RunLock::acquire(dir.path(), "run", Utc::now()).unwrap();
        let text = std::fs::read_to_string(lock.file_path()).unwrap();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
    }
}
