//! Keeping a store honest over months of use: locks that serialise work on
//! one key across processes, a full verification pass, quarantine of
//! corrupt files, and garbage collection.
//!
//! Locks are OS file locks (`flock`-style, `std::fs::File::lock`): the
//! kernel drops them when the holding process dies, however it dies, so a
//! lock left by a killed run is simply free — no stale-lock detection or
//! manual unlock step is needed, and no timestamp can lie about liveness.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::{io_err, read_dir_sorted, IndexEntry, Store, StoreError};

/// An exclusive lock on one stage key, held while its value is computed
/// and published. Dropping it releases the lock.
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

/// A shared (running) or exclusive (collecting garbage) lock on the whole
/// store.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Whether a lock was free or had to be waited for (and who held it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    Immediately,
    AfterWaiting { holder: String },
}

/// What `verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Artifacts re-hashed.
    pub checked: usize,
    pub bytes: u64,
    /// Artifacts whose bytes no longer hash to their name.
    pub corrupt: Vec<Corruption>,
    /// Artifacts no key entry points at (e.g. a run killed between
    /// publishing the object and its key; harmless, collected by `gc`).
    pub orphaned: Vec<String>,
    /// Key entries whose artifact file is gone (recomputed on the next run).
    pub missing: Vec<IndexEntry>,
    /// Key entries that cannot be parsed.
    pub bad_index: Vec<PathBuf>,
    /// Leftover temporary files from interrupted writes.
    pub stray_temp: Vec<PathBuf>,
}

impl VerifyReport {
    pub fn clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty() && self.bad_index.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Corruption {
    pub artifact: String,
    pub path: PathBuf,
    pub actual: String,
    /// Key entries pointing at it.
    pub instances: Vec<String>,
}

/// One thing `gc` removes (or would remove).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    pub artifact: String,
    pub bytes: u64,
    /// Key entries dropped with it (empty for orphans).
    pub instances: Vec<String>,
    /// Their keys.
    pub keys: Vec<String>,
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err(path))
}

fn holder_of(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        "another ptft process".into()
    } else {
        s.to_string()
    }
}

fn note_holder(file: &mut File) {
    let _ = file.set_len(0);
    let _ = write!(file, "ptft process {}", std::process::id());
    let _ = file.flush();
}

impl Store {
    fn lock_path(&self, key: &str) -> PathBuf {
        self.root
            .join("locks")
            .join(&key[..2.min(key.len())])
            .join(format!("{key}.lock"))
    }

    /// Takes the exclusive lock on `key`, waiting if another process holds
    /// it; `on_wait` is called once, with the holder, before waiting.
    pub fn lock_key(
        &self,
        key: &str,
        on_wait: impl FnOnce(&str),
    ) -> Result<(KeyLock, Acquired), StoreError> {
        let path = self.lock_path(key);
        let mut file = open_lock_file(&path)?;
        let acquired = match file.try_lock() {
            Ok(()) => Acquired::Immediately,
            Err(fs::TryLockError::WouldBlock) => {
                let holder = holder_of(&mut file);
                on_wait(&holder);
                file.lock().map_err(io_err(&path))?;
                Acquired::AfterWaiting { holder }
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
        };
        note_holder(&mut file);
        Ok((KeyLock { _file: file }, acquired))
    }

    /// Shared lock held by every run for its whole duration, so `gc` never
    /// deletes what a running process may be using.
    pub fn lock_for_run(&self) -> Result<StoreLock, StoreError> {
        let path = self.root.join("store.lock");
        let file = open_lock_file(&path)?;
        file.lock_shared().map_err(io_err(&path))?;
        Ok(StoreLock { _file: file })
    }

    /// Exclusive lock for `gc`; `None` while any run holds the store.
    pub fn try_lock_exclusive(&self) -> Result<Option<StoreLock>, StoreError> {
        let path = self.root.join("store.lock");
        let file = open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StoreLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(io_err(&path)(e)),
        }
    }

    /// Does the artifact file still hash to its name? (`Ok(None)` when it
    /// does, `Ok(Some(actual))` when it does not.)
    pub fn check_artifact(&self, hash: &str) -> Result<Option<String>, StoreError> {
        let path = self.object_path(hash);
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(File::open(&path).map_err(io_err(&path))?)
            .map_err(io_err(&path))?;
        let actual = hasher.finalize().to_hex().to_string();
        Ok((actual != hash).then_some(actual))
    }

    /// Moves a corrupt artifact out of `objects/` into `quarantine/` (kept
    /// for inspection, never read again), so the next publish of its key
    /// writes a fresh copy. Returns where it went.
    pub fn quarantine(&self, hash: &str) -> Result<PathBuf, StoreError> {
        let from = self.object_path(hash);
        let dir = self.root.join("quarantine");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let to = dir.join(format!("{hash}.{stamp}.parquet"));
        match fs::rename(&from, &to) {
            Ok(()) => Ok(to),
            // Another process quarantined it first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(to),
            Err(e) => Err(io_err(&from)(e)),
        }
    }

    /// Marks a key as used now (its entry's modification time), for
    /// `gc --older-than`.
    pub fn touch_key(&self, key: &str) {
        if let Ok(f) = File::options().write(true).open(self.key_path(key)) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// When a key was last published or used.
    pub fn key_used(&self, key: &str) -> Option<SystemTime> {
        fs::metadata(self.key_path(key))
            .and_then(|m| m.modified())
            .ok()
    }

    fn all_objects(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let mut out = Vec::new();
        for shard in read_dir_sorted(&self.root.join("objects"))? {
            for f in read_dir_sorted(&shard)? {
                if f.extension().and_then(|e| e.to_str()) == Some("parquet") {
                    if let Some(stem) = f.file_stem().and_then(|s| s.to_str()) {
                        out.push((stem.to_string(), f.clone()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Key entries, tolerating unreadable ones (returned separately).
    fn entries_lenient(&self) -> Result<(Vec<IndexEntry>, Vec<PathBuf>), StoreError> {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for shard in read_dir_sorted(&self.root.join("keys"))? {
            for f in read_dir_sorted(&shard)? {
                if f.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                match fs::read(&f)
                    .ok()
                    .and_then(|t| serde_json::from_slice::<IndexEntry>(&t).ok())
                {
                    Some(e) => good.push(e),
                    None => bad.push(f),
                }
            }
        }
        Ok((good, bad))
    }

    /// Re-hashes every artifact and cross-checks the key index.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let (entries, bad_index) = self.entries_lenient()?;
        let objects = self.all_objects()?;
        let mut report = VerifyReport {
            bad_index,
            ..Default::default()
        };
        let referenced: BTreeSet<&str> = entries.iter().map(|e| e.artifact.as_str()).collect();
        let present: BTreeSet<&str> = objects.iter().map(|(h, _)| h.as_str()).collect();
        for (hash, path) in &objects {
            report.checked += 1;
            report.bytes += fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if let Some(actual) = self.check_artifact(hash)? {
                report.corrupt.push(Corruption {
                    artifact: hash.clone(),
                    path: path.clone(),
                    actual,
                    instances: entries
                        .iter()
                        .filter(|e| &e.artifact == hash)
                        .map(|e| e.instance.clone())
                        .collect(),
                });
            }
            if !referenced.contains(hash.as_str()) {
                report.orphaned.push(hash.clone());
            }
        }
        report.missing = entries
            .into_iter()
            .filter(|e| !present.contains(e.artifact.as_str()))
            .collect();
        report.stray_temp = read_dir_sorted(&self.root.join("tmp"))?;
        Ok(report)
    }

    /// What garbage collection would remove: every key entry not in `keep`
    /// (when given) or last used before `unused_since` (when given), every
    /// artifact no remaining entry points at, and stray temporary files.
    /// Nothing is deleted here; see [`Store::collect`].
    pub fn gc_plan(
        &self,
        keep: Option<&BTreeSet<String>>,
        unused_since: Option<SystemTime>,
    ) -> Result<Vec<Removal>, StoreError> {
        let (entries, _) = self.entries_lenient()?;
        let doomed = |e: &IndexEntry| {
            let unreachable = keep.is_some_and(|k| !k.contains(&e.key));
            let stale = unused_since.is_some_and(|t| self.key_used(&e.key).is_some_and(|u| u < t));
            unreachable || stale
        };
        let (drop, stay): (Vec<&IndexEntry>, Vec<&IndexEntry>) =
            entries.iter().partition(|e| doomed(e));
        let kept: BTreeSet<&str> = stay.iter().map(|e| e.artifact.as_str()).collect();
        let mut out = Vec::new();
        for (hash, path) in self.all_objects()? {
            if kept.contains(hash.as_str()) {
                continue;
            }
            let dropped: Vec<&&IndexEntry> = drop.iter().filter(|e| e.artifact == hash).collect();
            out.push(Removal {
                bytes: fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                instances: dropped.iter().map(|e| e.instance.clone()).collect(),
                keys: dropped.iter().map(|e| e.key.clone()).collect(),
                artifact: hash,
            });
        }
        Ok(out)
    }

    /// Deletes what [`Store::gc_plan`] listed: key entries first (so no
    /// entry ever points at a deleted file), then the artifacts. The caller
    /// holds the exclusive store lock.
    pub fn collect(&self, removals: &[Removal]) -> Result<u64, StoreError> {
        for key in removals.iter().flat_map(|r| &r.keys) {
            let p = self.key_path(key);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p)(e)),
            }
        }
        let mut freed = 0;
        for r in removals {
            let p = self.object_path(&r.artifact);
            match fs::remove_file(&p) {
                Ok(()) => freed += r.bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p)(e)),
            }
        }
        for t in read_dir_sorted(&self.root.join("tmp"))? {
            let _ = fs::remove_file(t);
        }
        Ok(freed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_cannot_take_the_store_while_a_run_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = store.lock_for_run().unwrap();
        let second_run = store.lock_for_run().unwrap(); // runs share it
        assert!(store.try_lock_exclusive().unwrap().is_none());
        drop((run, second_run));
        assert!(store.try_lock_exclusive().unwrap().is_some());
    }

    #[test]
    fn a_second_locker_of_a_key_waits_and_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (held, how) = store.lock_key("abcdef", |_| panic!("free lock")).unwrap();
        assert_eq!(how, Acquired::Immediately);
        let s2 = store.clone();
        let waiter = std::thread::spawn(move || {
            let (_l, how) = s2.lock_key("abcdef", |_| {}).unwrap();
            how
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(held);
        match waiter.join().unwrap() {
            Acquired::AfterWaiting { holder } => {
                assert!(holder.contains(&std::process::id().to_string()), "{holder}")
            }
            other => panic!("expected to wait, got {other:?}"),
        }
    }
}
