//! Content-addressed artifact store: Arrow tables on disk as Parquet, each
//! file carrying its own provenance.
//!
//! Data flows in one direction. A caller (the engine) hands [`Store::publish`]
//! a stage key, an Arrow [`RecordBatch`] and a provenance JSON document. The
//! store serialises the batch to Parquet with the provenance in the file's
//! key-value metadata, names the file by the blake3 hash of its bytes
//! (`objects/ab/abcd….parquet`), publishes it atomically (temp file in the
//! same filesystem, fsync, rename), and only then records the key → artifact
//! mapping (`keys/ab/abcd….json`). Readers go the other way:
//! [`Store::lookup`] a key, then [`Store::read`] the artifact, which re-hashes
//! the bytes and refuses a file whose hash no longer matches its name.
//!
//! Why this layout: a file named by its own hash can be verified by anyone
//! with `b3sum`; one index file per key means two processes never rewrite a
//! shared index (the rename of a single small file is atomic); and because
//! the key entry is written after the object, a crash at any point leaves
//! either nothing or a complete artifact — never a key that points at a
//! half-written file.
//!
//! The store knows nothing about stages or workflows: keys are opaque
//! strings, provenance is opaque JSON. It also keeps small per-workflow
//! "history" documents (the last instance records a workflow ran) so the
//! engine can explain *why* something will recompute.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

mod maintenance;
pub use maintenance::{Acquired, Corruption, KeyLock, Removal, StoreLock, VerifyReport};

/// Parquet key-value metadata key under which the provenance JSON is stored.
pub const PROVENANCE_KEY: &str = "ptft.provenance";

/// Everything that can go wrong in the store. Each variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("artifact {path}: cannot encode/decode Parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    #[error(
        "artifact {path} is corrupt: its blake3 hash is {actual}, but its name says {expected}"
    )]
    Corrupt {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("artifact {path} has no `{PROVENANCE_KEY}` metadata or it is not valid JSON")]
    MissingProvenance { path: PathBuf },
    #[error("no artifact or key matches `{0}` in this store")]
    NotFound(String),
    #[error(
        "`{prefix}` is ambiguous in this store: it matches {count} entries; give more characters"
    )]
    Ambiguous { prefix: String, count: usize },
    #[error("index entry {path} is unreadable: {message}")]
    BadIndex { path: PathBuf, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The index record for one stage key: which artifact holds its output and
/// enough labels to list the store without opening Parquet files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub key: String,
    pub artifact: String,
    pub workflow: String,
    pub instance: String,
    pub kind: String,
    pub rows: u64,
    pub bytes: u64,
    pub created: String,
}

/// An artifact read back from the store.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub hash: String,
    pub path: PathBuf,
    pub batch: RecordBatch,
    pub provenance: serde_json::Value,
}

/// A handle on a store directory. Cheap to clone; safe to share across
/// threads (every operation is a self-contained filesystem transaction).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        for sub in ["objects", "keys", "history", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        Ok(Store { root })
    }

    /// Opens a store only if it already exists; used by read-only commands
    /// so that `ptft ls` in the wrong directory does not create a store.
    pub fn open_existing(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root = root.into();
        if !root.join("objects").is_dir() {
            return Err(StoreError::NotFound(format!(
                "store {} (no objects/ directory; run a workflow first or pass --store)",
                root.display()
            )));
        }
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn object_path(&self, hash: &str) -> PathBuf {
        self.root
            .join("objects")
            .join(&hash[..2.min(hash.len())])
            .join(format!("{hash}.parquet"))
    }

    pub(crate) fn key_path(&self, key: &str) -> PathBuf {
        self.root
            .join("keys")
            .join(&key[..2.min(key.len())])
            .join(format!("{key}.json"))
    }

    fn history_path(&self, workflow: &str) -> PathBuf {
        let safe: String = workflow
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join("history").join(format!("{safe}.json"))
    }

    /// Serialises `batch` to Parquet with `provenance` embedded, publishes it
    /// under its content hash, then records `key → artifact`. Returns the
    /// index entry. Publishing the same bytes twice is a no-op.
    pub fn publish(
        &self,
        key: &str,
        batch: &RecordBatch,
        provenance: &serde_json::Value,
        labels: EntryLabels<'_>,
    ) -> Result<IndexEntry, StoreError> {
        let bytes = encode_parquet(batch, provenance, &self.root)?;
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let path = self.object_path(&hash);
        if !path.exists() {
            self.write_atomic(&path, &bytes)?;
        }
        let entry = IndexEntry {
            key: key.to_string(),
            artifact: hash,
            workflow: labels.workflow.to_string(),
            instance: labels.instance.to_string(),
            kind: labels.kind.to_string(),
            rows: batch.num_rows() as u64,
            bytes: bytes.len() as u64,
            created: labels.created.to_string(),
        };
        let json = serde_json::to_vec_pretty(&entry).expect("index entry serialises");
        self.write_atomic(&self.key_path(key), &json)?;
        Ok(entry)
    }

    /// Writes `bytes` to `dest` so that `dest` either does not exist or holds
    /// all of `bytes`: temp file in the store's own `tmp/` (same filesystem,
    /// so rename is atomic), fsync the data, rename, fsync the directory.
    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = dest.parent().expect("store paths have a parent");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let tmp_dir = self.root.join("tmp");
        let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(io_err(&tmp_dir))?;
        injected_write_fault().map_err(io_err(dest))?;
        tmp.write_all(bytes).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(dest))?;
        tmp.persist(dest).map_err(|e| StoreError::Io {
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        // Durability of the rename itself; best effort on filesystems that
        // refuse to open directories.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The index entry for `key`, if the key was published *and* its
    /// artifact file still exists.
    pub fn lookup(&self, key: &str) -> Result<Lookup, StoreError> {
        let path = self.key_path(key);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Lookup::Absent),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let entry: IndexEntry =
            serde_json::from_slice(&text).map_err(|e| StoreError::BadIndex {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if self.object_path(&entry.artifact).exists() {
            Ok(Lookup::Present(entry))
        } else {
            Ok(Lookup::ArtifactMissing(entry))
        }
    }

    /// Like [`Store::lookup`], and also re-hashes a present artifact: a file
    /// whose bytes changed is reported as [`Lookup::Corrupt`] instead of
    /// being trusted as a cache hit.
    pub fn lookup_verified(&self, key: &str) -> Result<Lookup, StoreError> {
        match self.lookup(key)? {
            Lookup::Present(entry) => match self.check_artifact(&entry.artifact) {
                Ok(None) => Ok(Lookup::Present(entry)),
                Ok(Some(_)) => Ok(Lookup::Corrupt(entry)),
                // Deleted between the two calls.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(Lookup::ArtifactMissing(entry))
                }
                Err(e) => Err(e),
            },
            other => Ok(other),
        }
    }

    /// Reads and verifies an artifact by its full hash.
    pub fn read(&self, hash: &str) -> Result<Artifact, StoreError> {
        let path = self.object_path(hash);
        let raw = fs::read(&path).map_err(io_err(&path))?;
        let actual = blake3::hash(&raw).to_hex().to_string();
        if actual != hash {
            return Err(StoreError::Corrupt {
                path,
                expected: hash.to_string(),
                actual,
            });
        }
        let (batch, provenance) = decode_parquet(Bytes::from(raw), &path)?;
        Ok(Artifact {
            hash: hash.to_string(),
            path,
            batch,
            provenance,
        })
    }

    /// The on-disk path of an artifact (for users who want to open it with
    /// other tools).
    pub fn artifact_path(&self, hash: &str) -> PathBuf {
        self.object_path(hash)
    }

    /// All index entries, sorted by creation time then instance.
    pub fn entries(&self) -> Result<Vec<IndexEntry>, StoreError> {
        let mut out = Vec::new();
        let keys = self.root.join("keys");
        for shard in read_dir_sorted(&keys)? {
            if !shard.is_dir() {
                continue;
            }
            for file in read_dir_sorted(&shard)? {
                if file.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let text = fs::read(&file).map_err(io_err(&file))?;
                let entry: IndexEntry =
                    serde_json::from_slice(&text).map_err(|e| StoreError::BadIndex {
                        path: file.clone(),
                        message: e.to_string(),
                    })?;
                out.push(entry);
            }
        }
        out.sort_by(|a, b| (&a.created, &a.instance).cmp(&(&b.created, &b.instance)));
        Ok(out)
    }

    /// Resolves a user-typed reference — a key, an artifact hash, or a unique
    /// prefix of either (at least 6 characters) — to an index entry or a
    /// bare artifact hash.
    pub fn resolve_hash_prefix(&self, prefix: &str) -> Result<String, StoreError> {
        if prefix.len() < 6 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::NotFound(prefix.to_string()));
        }
        let prefix = prefix.to_ascii_lowercase();
        let mut hits: Vec<String> = Vec::new();
        for e in self.entries()? {
            if (e.key.starts_with(&prefix) || e.artifact.starts_with(&prefix))
                && !hits.contains(&e.artifact)
            {
                hits.push(e.artifact.clone());
            }
        }
        // Artifacts whose key entry was lost still count.
        let shard = self.root.join("objects").join(&prefix[..2]);
        if shard.is_dir() {
            for f in read_dir_sorted(&shard)? {
                if let Some(stem) = f.file_stem().and_then(|s| s.to_str()) {
                    if stem.starts_with(&prefix) && !hits.iter().any(|h| h == stem) {
                        hits.push(stem.to_string());
                    }
                }
            }
        }
        match hits.len() {
            0 => Err(StoreError::NotFound(prefix)),
            1 => Ok(hits.remove(0)),
            count => Err(StoreError::Ambiguous { prefix, count }),
        }
    }

    /// The history document of a workflow (opaque JSON), if any.
    pub fn read_history(&self, workflow: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let path = self.history_path(workflow);
        match fs::read(&path) {
            Ok(t) => serde_json::from_slice(&t)
                .map(Some)
                .map_err(|e| StoreError::BadIndex {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Replaces the history document of a workflow, atomically.
    pub fn write_history(
        &self,
        workflow: &str,
        history: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_vec_pretty(history).expect("history serialises");
        self.write_atomic(&self.history_path(workflow), &json)
    }
}

/// Fault injection for tests of the disk-full path: with
/// `PTFT_FAIL_WRITES_AFTER=N`, every atomic write after the first N fails
/// as a full disk would (after its temp file exists, the worst moment).
/// A real full disk cannot be produced portably in CI; this exercises the
/// same code path.
fn injected_write_fault() -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let Some(limit) = std::env::var("PTFT_FAIL_WRITES_AFTER")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Ok(());
    };
    if WRITES.fetch_add(1, Ordering::SeqCst) >= limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (injected by PTFT_FAIL_WRITES_AFTER)",
        ));
    }
    Ok(())
}

/// Labels recorded in the key index next to the artifact hash.
#[derive(Debug, Clone, Copy)]
pub struct EntryLabels<'a> {
    pub workflow: &'a str,
    pub instance: &'a str,
    pub kind: &'a str,
    pub created: &'a str,
}

/// Result of looking a key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Never published.
    Absent,
    /// Published and its artifact file is present.
    Present(IndexEntry),
    /// Published, but the artifact file has since disappeared.
    ArtifactMissing(IndexEntry),
    /// Published, but the artifact's bytes no longer match its hash.
    Corrupt(IndexEntry),
}

pub(crate) fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for ent in rd {
        out.push(ent.map_err(io_err(dir))?.path());
    }
    out.sort();
    Ok(out)
}

/// Encodes a batch as a Parquet file in memory. Snappy keeps files small at
/// negligible cost and is pure Rust (no C toolchain needed on CI).
pub fn encode_parquet(
    batch: &RecordBatch,
    provenance: &serde_json::Value,
    context: &Path,
) -> Result<Vec<u8>, StoreError> {
    let perr = |e: parquet::errors::ParquetError| StoreError::Parquet {
        path: context.to_path_buf(),
        message: e.to_string(),
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("ptft {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new(
            PROVENANCE_KEY.to_string(),
            serde_json::to_string(provenance).expect("provenance serialises"),
        )]))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(perr)?;
    writer.write(batch).map_err(perr)?;
    writer.close().map_err(perr)?;
    Ok(buf)
}

/// Decodes a Parquet file (already in memory) into one batch and its
/// provenance.
pub fn decode_parquet(
    raw: Bytes,
    path: &Path,
) -> Result<(RecordBatch, serde_json::Value), StoreError> {
    let perr = |m: String| StoreError::Parquet {
        path: path.to_path_buf(),
        message: m,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(raw).map_err(|e| perr(e.to_string()))?;
    let provenance = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kvs| kvs.iter().find(|kv| kv.key == PROVENANCE_KEY))
        .and_then(|kv| kv.value.as_deref())
        .and_then(|v| serde_json::from_str(v).ok())
        .ok_or_else(|| StoreError::MissingProvenance {
            path: path.to_path_buf(),
        })?;
    // The Arrow reader copies file key-value metadata (our provenance) into
    // the schema; strip it so a read-back batch equals the published one.
    let schema = Arc::new(
        builder
            .schema()
            .as_ref()
            .clone()
            .with_metadata(std::collections::HashMap::new()),
    );
    let reader = builder.build().map_err(|e| perr(e.to_string()))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| perr(e.to_string()))?);
    }
    let batches: Vec<RecordBatch> = batches
        .into_iter()
        .map(|b| b.with_schema(schema.clone()))
        .collect::<Result<_, _>>()
        .map_err(|e| perr(e.to_string()))?;
    let batch =
        arrow::compute::concat_batches(&schema, &batches).map_err(|e| perr(e.to_string()))?;
    Ok((batch, provenance))
}

/// blake3 of a batch's *data* (schema and values, in Arrow IPC stream form),
/// independent of the provenance. Two runs of a deterministic stage give the
/// same data hash even though their Parquet files differ in run times.
pub fn data_hash(batch: &RecordBatch) -> String {
    let mut buf = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut buf, &batch.schema())
            .expect("in-memory IPC writer");
        w.write(batch).expect("in-memory IPC write");
        w.finish().expect("in-memory IPC finish");
    }
    blake3::hash(&buf).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("alpha", DataType::Float64, false),
            Field::new("label", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![0.1, 0.2])),
                Arc::new(StringArray::from(vec!["a", "b"])),
            ],
        )
        .unwrap()
    }

    fn labels() -> EntryLabels<'static> {
        EntryLabels {
            workflow: "wf",
            instance: "s",
            kind: "k",
            created: "2026-01-01T00:00:00Z",
        }
    }

    #[test]
    fn publish_read_roundtrip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.lookup("k1").unwrap(), Lookup::Absent);
        let prov = serde_json::json!({"stage": "s", "seed": 3});
        let e = store.publish("k1", &batch(), &prov, labels()).unwrap();
        let Lookup::Present(found) = store.lookup("k1").unwrap() else {
            panic!("key not present after publish")
        };
        assert_eq!(found, e);
        let a = store.read(&e.artifact).unwrap();
        assert_eq!(a.batch, batch());
        assert_eq!(a.provenance, prov);
        assert_eq!(store.entries().unwrap().len(), 1);
        assert_eq!(
            store.resolve_hash_prefix(&e.artifact[..8]).unwrap(),
            e.artifact
        );
        // Nothing left behind in tmp/.
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn corrupt_artifact_is_refused_and_missing_artifact_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e = store
            .publish("k1", &batch(), &serde_json::json!({}), labels())
            .unwrap();
        let path = store.artifact_path(&e.artifact);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            store.read(&e.artifact),
            Err(StoreError::Corrupt { .. })
        ));
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            store.lookup("k1").unwrap(),
            Lookup::ArtifactMissing(_)
        ));
    }

    #[test]
    fn data_hash_ignores_provenance() {
        let b = batch();
        assert_eq!(data_hash(&b), data_hash(&b.clone()));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let e1 = store
            .publish("k1", &b, &serde_json::json!({"t": 1}), labels())
            .unwrap();
        let e2 = store
            .publish("k2", &b, &serde_json::json!({"t": 2}), labels())
            .unwrap();
        assert_ne!(e1.artifact, e2.artifact, "file hash covers provenance");
    }
}
