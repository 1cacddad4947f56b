//! The empirical half: diagonal linear networks trained by gradient descent
//! (THEORY §1–6, §8), one stage per step of the paper's protocol:
//!
//! `task` → `dataset` → `pretrain` → `reinit` → `finetune` /
//! `implicit_bias_solve` → `evaluate` → `empirical_curve`.
//!
//! Tables passed between them: a per-coordinate task table (`group,
//! beta_pt, beta_ft`), a one-row dataset *descriptor* (generator, seeds,
//! shape, checksum — the matrix itself is regenerated, see
//! [`dataset`]), per-coordinate weight tables (`w_plus, w_minus, v_plus,
//! v_minus, beta`, plus `c_ft` after re-initialisation), one-row evaluation
//! tables, and the aggregated curve.

pub mod dataset;
pub mod empirical_curve;
pub mod evaluate;
pub mod finetune;
pub mod implicit_bias_solve;
pub mod pretrain;
pub mod reinit;
pub mod task;

use ptft_diagnet::data::{labels, DesignSpec};
use ptft_diagnet::gd::{DeviceKind, GdConfig};
use ptft_diagnet::weights::Weights;
use ptft_engine::{InputTable, ParamError, StageError};
use serde::{Deserialize, Serialize};

use crate::table::{f64_column, str_column, u64_column, TableBuilder};

/// A seed derived from a parent seed and a purpose, so that the PT data,
/// the FT data, the label noise and the test set of one task are
/// independent streams, and none collides with the task's own stream.
pub fn derive_seed(parent: u64, purpose: &str, extra: &[u64]) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"ptft-seed/1");
    h.update(&parent.to_le_bytes());
    h.update(purpose.as_bytes());
    for e in extra {
        h.update(&e.to_le_bytes());
    }
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Where gradient descent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Cpu,
    Cuda,
}

/// Gradient-descent settings shared by `pretrain` (mode gd) and `finetune`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GdParams {
    /// Learning rate.
    pub lr: f64,
    pub max_epochs: u64,
    /// Stop when the train MSE is at most this ...
    pub tol_train_mse: f64,
    /// ... and beta moved by at most this (relative) since the last check.
    pub tol_rel_step: f64,
    /// Epochs between checks.
    pub check_every: u64,
    pub device: Device,
}

impl Default for GdParams {
    /// Converged training (not the paper's early stop at train MSE 1e-4,
    /// which leaves an early-stopping floor): the reached point matches the
    /// exact implicit-bias solution.
    fn default() -> Self {
        GdParams {
            lr: 0.5,
            max_epochs: 2_000_000,
            tol_train_mse: 1e-10,
            tol_rel_step: 1e-6,
            check_every: 1000,
            device: Device::Cpu,
        }
    }
}

impl GdParams {
    pub fn validate(&self, prefix: &str) -> Result<(), ParamError> {
        let f = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ParamError::range(f("lr"), self.lr, "(0, inf), finite"));
        }
        if self.max_epochs == 0 || self.max_epochs > 1_000_000_000 {
            return Err(ParamError::range(
                f("max_epochs"),
                self.max_epochs,
                "[1, 1e9]",
            ));
        }
        if !(self.tol_train_mse >= 0.0 && self.tol_train_mse.is_finite()) {
            return Err(ParamError::range(
                f("tol_train_mse"),
                self.tol_train_mse,
                "[0, inf), finite",
            ));
        }
        if self.tol_rel_step.is_nan() || self.tol_rel_step < 0.0 {
            return Err(ParamError::range(
                f("tol_rel_step"),
                self.tol_rel_step,
                "[0, inf]",
            ));
        }
        if self.check_every == 0 {
            return Err(ParamError::range(
                f("check_every"),
                self.check_every,
                "[1, max_epochs]",
            ));
        }
        if self.device == Device::Cuda && !cfg!(feature = "cuda") {
            return Err(ParamError::new(
                f("device"),
                format!(
                    "{} = \"cuda\" but this ptft was built without CUDA support; rebuild with `cargo build --release --features cuda` (needs the CUDA toolkit), or use \"cpu\"",
                    f("device")
                ),
            ));
        }
        Ok(())
    }

    pub fn config(&self) -> GdConfig {
        GdConfig {
            lr: self.lr,
            max_epochs: self.max_epochs,
            tol_train_mse: self.tol_train_mse,
            tol_rel_step: self.tol_rel_step,
            check_every: self.check_every,
            device: match self.device {
                Device::Cpu => DeviceKind::Cpu,
                Device::Cuda => DeviceKind::Cuda,
            },
        }
    }
}

/// Largest problem dimension. Why 1e6: the paper's largest `d` is 5000,
/// and the task table is cheap even at 1e6 (about 100 MB), but everything
/// downstream grows faster — a dataset holds `n x d = alpha d^2` design
/// entries, capped at [`dataset::MAX_ENTRIES`] — so a `d` beyond this is a
/// typo (extra zeros), refused before the task table is allocated.
pub const MAX_D: usize = 1_000_000;

/// Peak memory per coordinate while a task is built, rounded up: the
/// shuffled index, group and both teachers (25 bytes), the group names as
/// `String`s before they become a column (about 40), and the output table's
/// `coordinate`, `group`, `beta_pt`, `beta_ft` columns (about 33).
pub const TASK_BYTES_PER_COORD: usize = 100;

/// Validates `d` (the problem dimension) with its range; an oversized `d` is
/// refused with what the task alone would cost.
pub fn validate_d(d: usize) -> Result<(), ParamError> {
    let mut e = ParamError::range("d", d, &format!("[1, {MAX_D}]"));
    if d == 0 {
        return Err(e);
    }
    if d > MAX_D {
        let df = d as f64;
        e.message.push_str(&format!(
            ": the task table alone would need about {} ({TASK_BYTES_PER_COORD} bytes per coordinate), and a dataset of it at alpha = 0.5 would have n x d = {:.1e} design entries ({}); the limit per dataset is {:.2e} entries",
            crate::grid::human_bytes(df * TASK_BYTES_PER_COORD as f64),
            0.5 * df * df,
            crate::grid::human_bytes(0.5 * df * df * 8.0),
            dataset::MAX_ENTRIES as f64,
        ));
        return Err(e);
    }
    Ok(())
}

/// Validates a rho with its range.
pub fn validate_rho(name: &str, rho: f64) -> Result<(), ParamError> {
    if !(rho > 0.0 && rho < 1.0) {
        return Err(ParamError::range(name, rho, "(0, 1)"));
    }
    Ok(())
}

fn err(e: impl std::fmt::Display) -> StageError {
    StageError::new(e.to_string())
}

/// The training data described by a dataset descriptor, regenerated and
/// checked against its checksum, with labels from the matching teacher.
pub struct Data {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub n: usize,
    pub d: usize,
}

/// Regenerates the design of `data` (a `dataset` output) and its labels
/// from the teacher in `task` (a `task` output) that the split names.
pub fn load_data(data: &InputTable, task: &InputTable) -> Result<Data, StageError> {
    let n = u64_column(data, "n")?[0] as usize;
    let d = u64_column(data, "d")?[0] as usize;
    let seed = u64_column(data, "seed")?[0];
    let noise_seed = u64_column(data, "noise_seed")?[0];
    let noise_var = f64_column(data, "noise_var")?[0];
    let split = str_column(data, "split")?[0].clone();
    let checksum = str_column(data, "checksum")?[0].clone();
    let beta = f64_column(task, if split == "pt" { "beta_pt" } else { "beta_ft" })?;
    if beta.len() != d {
        return Err(StageError::new(format!(
            "dataset `{}` has d = {d} but task `{}` has {} coordinates; wire the dataset made from this task",
            data.instance,
            task.instance,
            beta.len()
        )));
    }
    let x = DesignSpec { n, d, seed }
        .generate_verified(&checksum)
        .map_err(err)?;
    let y = labels(&x, n, d, &beta, noise_var, noise_seed).map_err(err)?;
    Ok(Data { x, y, n, d })
}

/// Reads a weights table (`pretrain`, `reinit` or `finetune` output).
pub fn read_weights(t: &InputTable) -> Result<Weights, StageError> {
    Ok(Weights {
        w_plus: f64_column(t, "w_plus")?,
        w_minus: f64_column(t, "w_minus")?,
        v_plus: f64_column(t, "v_plus")?,
        v_minus: f64_column(t, "v_minus")?,
    })
}

/// The four weight vectors and beta as columns.
pub fn weights_table(w: &Weights) -> TableBuilder {
    TableBuilder::new()
        .u64("coordinate", 0..w.w_plus.len() as u64)
        .f64("w_plus", w.w_plus.iter().copied())
        .f64("w_minus", w.w_minus.iter().copied())
        .f64("v_plus", w.v_plus.iter().copied())
        .f64("v_minus", w.v_minus.iter().copied())
        .f64("beta", w.beta())
}

/// Records a GD run's device, epochs, final train MSE, stop reason, time
/// and `(epoch, train mse)` trace in the provenance notes.
pub fn note_gd(ctx: &mut ptft_engine::Context, r: &ptft_diagnet::gd::GdResult) {
    ctx.set_device(&r.device);
    ctx.note("epochs", r.epochs);
    ctx.note("train_mse", r.train_mse);
    ctx.note("stop", r.stop);
    ctx.note("seconds", r.seconds);
    let trace: Vec<[f64; 2]> = r.trace.iter().map(|&(e, m)| [e as f64, m]).collect();
    ctx.note("trace", trace);
}
