//! Loader for the official binary version of CIFAR-100
//! (<https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz>).
//!
//! Each of `train.bin` (50 000 records) and `test.bin` (10 000 records) is a
//! plain sequence of [`RECORD_BYTES`]-byte records: one coarse-label byte
//! (0..20), one fine-label byte (0..100), then 3072 pixel bytes, namely the
//! 1024 red, 1024 green and 1024 blue values of a 32x32 image, each plane
//! row-major. That is already CHW order, so the pixels are kept as they are
//! and a batch is NCHW without any transposition.
//!
//! ptft never downloads at run time (runs must be reproducible offline), so a
//! missing file is an error that says where to get it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Pixels per image: 3 channels x 32 x 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per record: coarse label, fine label, pixels.
pub const RECORD_BYTES: usize = 2 + IMAGE_BYTES;
/// Number of coarse (superclass) labels.
pub const N_COARSE: u8 = 20;
/// Number of fine (class) labels.
pub const N_FINE: u8 = 100;

/// Per-channel (R, G, B) mean of the CIFAR-100 training pixels scaled to
/// [0, 1]. These are the widely used constants of
/// <https://github.com/weiaicunzai/pytorch-cifar100> (`conf/global_settings.py`,
/// `CIFAR100_TRAIN_MEAN`); [`Cifar100::channel_mean_std`] recomputes them from
/// the data so they can be checked against the local copy.
pub const CIFAR100_MEAN: [f64; 3] = [0.5070751592371323, 0.48654887331495095, 0.4409178433670343];
/// Per-channel (R, G, B) standard deviation of the CIFAR-100 training pixels
/// scaled to [0, 1] (same source, `CIFAR100_TRAIN_STD`).
pub const CIFAR100_STD: [f64; 3] = [0.2673342858792401, 0.2564384629170883, 0.27615047132568404];

const DOWNLOAD_HINT: &str = "from the official CIFAR-100 binary version, \
https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz; ptft does not download at run time";

/// Errors of the CIFAR-100 loader.
#[derive(Debug, thiserror::Error)]
pub enum CifarError {
    #[error("CIFAR-100 directory {dir} does not exist: expected {expected} {DOWNLOAD_HINT}")]
    MissingDir { dir: PathBuf, expected: PathBuf },
    #[error("CIFAR-100 file missing: expected {path} {DOWNLOAD_HINT}")]
    MissingFile { path: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has {size} bytes, which is not a multiple of the CIFAR-100 record size \
         {RECORD_BYTES} (1 coarse + 1 fine label byte + 3072 pixel bytes); is it the binary \
         (not the python) version, and complete?"
    )]
    BadSize { path: PathBuf, size: u64 },
    #[error("{path} is empty: expected at least one {RECORD_BYTES}-byte record")]
    Empty { path: PathBuf },
    #[error("{path}: record {record} has {field} label {value}, expected 0..{limit}")]
    LabelOutOfRange {
        path: PathBuf,
        record: usize,
        field: &'static str,
        value: u8,
        limit: u8,
    },
    #[error("class selection: fine class {class} is out of range, expected 0..{N_FINE}")]
    ClassOutOfRange { class: u8 },
    #[error("class selection: fine class {class} is listed twice")]
    DuplicateClass { class: u8 },
    #[error("class selection is empty: expected at least one fine class")]
    NoClasses,
    #[error("image index {index} is out of range: the split has {n} images")]
    IndexOutOfRange { index: usize, n: usize },
}

/// Which file of the dataset to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// File name inside the extracted `cifar-100-binary/` directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Split::Train => "train.bin",
            Split::Test => "test.bin",
        }
    }
}

/// One split of CIFAR-100, as raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cifar100 {
    /// `n * 3072` pixel bytes, image after image, each in CHW order.
    pub images: Vec<u8>,
    /// Coarse label (0..20) of each image.
    pub coarse: Vec<u8>,
    /// Fine label (0..100) of each image.
    pub fine: Vec<u8>,
    /// Number of images.
    pub n: usize,
}

/// The images of a class selection, with labels remapped to `0..k` in the
/// order the classes were given (so class `classes[j]` gets label `j`): the
/// label space of a fine-tuning head with `k` outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Indices into the split, ascending.
    pub indices: Vec<usize>,
    /// Remapped label of each selected image.
    pub labels: Vec<u32>,
}

/// Reads `dir/train.bin` or `dir/test.bin`, validating size and labels.
pub fn load(dir: &Path, split: Split) -> Result<Cifar100, CifarError> {
    let path = dir.join(split.file_name());
    if !dir.is_dir() {
        return Err(CifarError::MissingDir {
            dir: dir.to_path_buf(),
            expected: path,
        });
    }
    if !path.is_file() {
        return Err(CifarError::MissingFile { path });
    }
    let bytes = fs::read(&path).map_err(|source| CifarError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    parse(&path, &bytes)
}

/// Parses the bytes of one split file; `path` only labels errors.
fn parse(path: &Path, bytes: &[u8]) -> Result<Cifar100, CifarError> {
    if bytes.len() % RECORD_BYTES != 0 {
        return Err(CifarError::BadSize {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
        });
    }
    let n = bytes.len() / RECORD_BYTES;
    if n == 0 {
        return Err(CifarError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut images = Vec::with_capacity(n * IMAGE_BYTES);
    let mut coarse = Vec::with_capacity(n);
    let mut fine = Vec::with_capacity(n);
    for (record, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let (c, f) = (chunk[0], chunk[1]);
        for (field, value, limit) in [("coarse", c, N_COARSE), ("fine", f, N_FINE)] {
            if value >= limit {
                return Err(CifarError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    record,
                    field,
                    value,
                    limit,
                });
            }
        }
        coarse.push(c);
        fine.push(f);
        images.extend_from_slice(&chunk[2..]);
    }
    Ok(Cifar100 {
        images,
        coarse,
        fine,
        n,
    })
}

/// Writes records in the official binary format. Labels are written as
/// given, unchecked, so that tests can also produce invalid files.
pub fn write_records(
    path: &Path,
    records: &[(u8, u8, &[u8; IMAGE_BYTES])],
) -> Result<(), CifarError> {
    let mut buf = Vec::with_capacity(records.len() * RECORD_BYTES);
    for (c, f, px) in records {
        buf.push(*c);
        buf.push(*f);
        buf.extend_from_slice(&px[..]);
    }
    let io = |action, source| CifarError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::create(path).map_err(|e| io("create", e))?;
    file.write_all(&buf).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))
}

impl Cifar100 {
    /// The 3072 CHW pixel bytes of image `index`.
    pub fn image(&self, index: usize) -> Result<&[u8], CifarError> {
        if index >= self.n {
            return Err(CifarError::IndexOutOfRange { index, n: self.n });
        }
        Ok(&self.images[index * IMAGE_BYTES..(index + 1) * IMAGE_BYTES])
    }

    /// All images whose fine label is in `classes`, labels remapped to the
    /// position of their class in `classes`. Pretraining and fine-tuning use
    /// disjoint class lists, each with its own `0..k` head.
    pub fn select_fine(&self, classes: &[u8]) -> Result<Selection, CifarError> {
        if classes.is_empty() {
            return Err(CifarError::NoClasses);
        }
        // Lookup table: fine label -> remapped label.
        let mut map = [None::<u32>; N_FINE as usize];
        for (j, &class) in classes.iter().enumerate() {
            let slot = map
                .get_mut(class as usize)
                .ok_or(CifarError::ClassOutOfRange { class })?;
            if slot.is_some() {
                return Err(CifarError::DuplicateClass { class });
            }
            *slot = Some(j as u32);
        }
        let mut sel = Selection {
            indices: Vec::new(),
            labels: Vec::new(),
        };
        for (i, &f) in self.fine.iter().enumerate() {
            if let Some(label) = map.get(f as usize).copied().flatten() {
                sel.indices.push(i);
                sel.labels.push(label);
            }
        }
        Ok(sel)
    }

    /// Normalised pixels `(v / 255 - mean_c) / std_c` of the given images, in
    /// NCHW order (`indices.len() * 3072` values), using the CIFAR-100
    /// training constants [`CIFAR100_MEAN`] / [`CIFAR100_STD`].
    pub fn normalised_f64(&self, indices: &[usize]) -> Result<Vec<f64>, CifarError> {
        let mut out = Vec::with_capacity(indices.len() * IMAGE_BYTES);
        for &i in indices {
            let img = self.image(i)?;
            for (c, plane) in img.chunks_exact(IMAGE_BYTES / 3).enumerate() {
                let (m, s) = (CIFAR100_MEAN[c], CIFAR100_STD[c]);
                out.extend(plane.iter().map(|&v| (f64::from(v) / 255.0 - m) / s));
            }
        }
        Ok(out)
    }

    /// [`Self::normalised_f64`] rounded to `f32`, the usual training dtype.
    pub fn normalised_f32(&self, indices: &[usize]) -> Result<Vec<f32>, CifarError> {
        Ok(self
            .normalised_f64(indices)?
            .into_iter()
            .map(|v| v as f32)
            .collect())
    }

    /// Per-channel mean and (population) standard deviation of all pixels of
    /// this split scaled to [0, 1], to check [`CIFAR100_MEAN`] /
    /// [`CIFAR100_STD`] against the local training file.
    pub fn channel_mean_std(&self) -> ([f64; 3], [f64; 3]) {
        // Integer sums are exact (50 000 * 1024 * 255^2 < 2^63).
        let mut sum = [0u64; 3];
        let mut sq = [0u64; 3];
        for img in self.images.chunks_exact(IMAGE_BYTES) {
            for (c, plane) in img.chunks_exact(IMAGE_BYTES / 3).enumerate() {
                for &v in plane {
                    sum[c] += u64::from(v);
                    sq[c] += u64::from(v) * u64::from(v);
                }
            }
        }
        let count = (self.n * IMAGE_BYTES / 3) as f64;
        let mut mean = [0.0; 3];
        let mut std = [0.0; 3];
        for c in 0..3 {
            let m = sum[c] as f64 / count;
            let var = (sq[c] as f64 / count - m * m).max(0.0);
            mean[c] = m / 255.0;
            std[c] = var.sqrt() / 255.0;
        }
        (mean, std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic, record-dependent pixels so any shuffling shows.
    fn pixels(k: usize) -> [u8; IMAGE_BYTES] {
        let mut px = [0u8; IMAGE_BYTES];
        for (j, p) in px.iter_mut().enumerate() {
            *p = ((j * 7 + k * 31) % 256) as u8;
        }
        px
    }

    fn write(dir: &Path, split: Split, labels: &[(u8, u8)]) -> Vec<[u8; IMAGE_BYTES]> {
        let imgs: Vec<_> = (0..labels.len()).map(pixels).collect();
        let recs: Vec<_> = labels
            .iter()
            .zip(&imgs)
            .map(|(&(c, f), px)| (c, f, px))
            .collect();
        write_records(&dir.join(split.file_name()), &recs).unwrap();
        imgs
    }

    #[test]
    fn round_trip_preserves_labels_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let labels: Vec<(u8, u8)> = (0..10u8).map(|k| (k * 2 % 20, k * 11 % 100)).collect();
        let imgs = write(dir.path(), Split::Train, &labels);
        let d = load(dir.path(), Split::Train).unwrap();
        assert_eq!(d.n, 10);
        assert_eq!(d.images.len(), 10 * IMAGE_BYTES);
        for (k, &(c, f)) in labels.iter().enumerate() {
            assert_eq!((d.coarse[k], d.fine[k]), (c, f));
            assert_eq!(d.image(k).unwrap(), &imgs[k][..]);
        }
        // The other split is a different file.
        let err = load(dir.path(), Split::Test).unwrap_err();
        assert!(matches!(err, CifarError::MissingFile { .. }), "{err}");
    }

    #[test]
    fn missing_directory_names_expected_file_and_url() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = load(&missing, Split::Train).unwrap_err();
        assert!(matches!(err, CifarError::MissingDir { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("{}", missing.join("train.bin").display())),
            "{msg}"
        );
        assert!(msg.contains("https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"));
        assert!(msg.contains("ptft does not download at run time"));
    }

    #[test]
    fn missing_file_names_expected_file_and_url() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), Split::Test).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, CifarError::MissingFile { .. }));
        assert!(
            msg.contains(&format!(
                "expected {}",
                dir.path().join("test.bin").display()
            )),
            "{msg}"
        );
        assert!(msg.contains("cifar-100-binary.tar.gz; ptft does not download at run time"));
    }

    #[test]
    fn truncated_file_reports_size_and_record_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.bin");
        fs::write(&path, vec![0u8; 2 * RECORD_BYTES + 5]).unwrap();
        let err = load(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(err, CifarError::BadSize { size, .. } if size == 6153));
        let msg = err.to_string();
        assert!(msg.contains("6153 bytes") && msg.contains("3074"), "{msg}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("train.bin"), b"").unwrap();
        let err = load(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(err, CifarError::Empty { .. }), "{err}");
    }

    #[test]
    fn label_out_of_range_reports_record_and_value() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Split::Train, &[(0, 0), (1, 1), (2, 100)]);
        let err = load(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(
            err,
            CifarError::LabelOutOfRange {
                record: 2,
                field: "fine",
                value: 100,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("record 2 has fine label 100, expected 0..100"),
            "{msg}"
        );

        write(dir.path(), Split::Test, &[(20, 5)]);
        let err = load(dir.path(), Split::Test).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("record 0 has coarse label 20, expected 0..20"),
            "{msg}"
        );
    }

    #[test]
    fn select_fine_remaps_labels_in_given_order() {
        let dir = tempfile::tempdir().unwrap();
        let labels = [(0, 5), (0, 7), (1, 5), (2, 9), (3, 7)];
        write(dir.path(), Split::Train, &labels);
        let d = load(dir.path(), Split::Train).unwrap();
        let sel = d.select_fine(&[7, 5]).unwrap();
        assert_eq!(sel.indices, vec![0, 1, 2, 4]);
        assert_eq!(sel.labels, vec![1, 0, 1, 0]);
        assert!(matches!(d.select_fine(&[]), Err(CifarError::NoClasses)));
        assert!(matches!(
            d.select_fine(&[3, 100]),
            Err(CifarError::ClassOutOfRange { class: 100 })
        ));
        assert!(matches!(
            d.select_fine(&[3, 3]),
            Err(CifarError::DuplicateClass { class: 3 })
        ));
    }

    #[test]
    fn normalisation_uses_channel_constants_in_chw_order() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), Split::Train, &[(0, 0), (0, 1), (0, 2)]);
        let d = load(dir.path(), Split::Train).unwrap();
        let v = d.normalised_f64(&[2, 0]).unwrap();
        assert_eq!(v.len(), 2 * IMAGE_BYTES);
        let px = pixels(2);
        for j in [0usize, 1023, 1024, 2047, 2048, 3071] {
            let c = j / 1024;
            let want = (f64::from(px[j]) / 255.0 - CIFAR100_MEAN[c]) / CIFAR100_STD[c];
            assert_eq!(v[j], want);
        }
        let v32 = d.normalised_f32(&[2, 0]).unwrap();
        assert_eq!(v32[IMAGE_BYTES + 5], v[IMAGE_BYTES + 5] as f32);
        assert!(matches!(
            d.normalised_f64(&[3]),
            Err(CifarError::IndexOutOfRange { index: 3, n: 3 })
        ));
    }

    #[test]
    fn channel_stats_of_constant_planes() {
        let mut px = [0u8; IMAGE_BYTES];
        px[..1024].fill(255);
        px[1024..2048].fill(51);
        // Blue alternates 0/255: mean 1/2, std 1/2.
        for (j, p) in px[2048..].iter_mut().enumerate() {
            *p = if j % 2 == 0 { 0 } else { 255 };
        }
        let d = Cifar100 {
            images: px.to_vec(),
            coarse: vec![0],
            fine: vec![0],
            n: 1,
        };
        let (m, s) = d.channel_mean_std();
        assert_eq!(m, [1.0, 0.2, 0.5]);
        assert_eq!(s, [0.0, 0.0, 0.5]);
    }
}
