//! Full-batch gradient descent on the diagonal linear network (THEORY §1),
//! on candle tensors in f64, on the CPU or (feature `cuda`) on CUDA device 0.
//!
//! The loss is `L = (1/2n) ||X beta - y||^2` with `beta = w+ v+ - w- v-`;
//! with `g = X^T (X beta - y) / n` the gradients are
//! `dw+ = v+ g, dv+ = w+ g, dw- = -v- g, dv- = -w- g`, and all four weights
//! are updated simultaneously from the same `g`.
//!
//! Cost model (why the loop looks the way it does): at `d = 5000`,
//! `n = 2500` an epoch is two mat-vecs over a 100 MB matrix (memory-bound,
//! milliseconds) and ~15 vector operations of length `d` (microseconds). So
//! `X` stays resident on the device for the whole run, the only host<->device
//! traffic is a handful of scalars at each convergence check, and `X^T r` is
//! computed as the row-vector product `r^T X`, which streams the *same*
//! row-major buffer instead of keeping a second, transposed 100 MB copy.
//!
//! On the CPU the two products run as candle custom ops backed by the
//! deterministic two-core kernels of `kernels` (candle's own gemm takes a
//! single-threaded gemv path for vectors and probes the core count on every
//! call); on CUDA they are cuBLAS `matmul`s.
//!
//! Stopping rule: every `check_every` epochs (and at epoch 0 and at
//! `max_epochs`) the train MSE `(1/n) ||X beta - y||^2` of the current
//! weights is read back. Training stops as [`StopReason::Converged`] when
//! `train_mse <= tol_train_mse` *and* the relative change of `beta` since the
//! previous check, `||beta - beta_prev|| / max(||beta||, 1e-300)`, is
//! `<= tol_rel_step`; the second condition guards against stopping on a
//! plateau of an almost-interpolating but still-moving network (the authors'
//! rule, MSE < 1e-4 only, is `tol_rel_step = inf`, and leaves an early-stopping
//! floor visible in exp1_empirical.csv). Otherwise it stops as
//! [`StopReason::MaxEpochs`] after `max_epochs` updates. A non-finite MSE, or
//! one above `1e6 x` the initial MSE, is divergence:
//! [`DiagnetError::Diverged`], whose message names the learning rate and
//! suggests a smaller one.

use crate::error::{
    check_all_finite, check_finite, check_len, check_nd, checked_size, out_of_range, DiagnetError,
};
use crate::kernels;
use crate::weights::Weights;
use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Tensor};
use serde::Serialize;
use std::time::Instant;

/// Where the tensors live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

/// Gradient-descent settings; see the module docs for the stopping rule.
#[derive(Debug, Clone, Serialize)]
pub struct GdConfig {
    /// Learning rate, finite `> 0`.
    pub lr: f64,
    /// Maximum number of updates, `> 0`.
    pub max_epochs: u64,
    /// Converged requires train MSE `<=` this (finite `>= 0`).
    pub tol_train_mse: f64,
    /// Converged requires relative `beta` change between checks `<=` this
    /// (`>= 0`; `inf` disables the condition).
    pub tol_rel_step: f64,
    /// Epochs between convergence checks, `> 0`.
    pub check_every: u64,
    pub device: DeviceKind,
}

impl GdConfig {
    /// The authors' schedule (THEORY §10): lr 0.5, stop at train MSE < 1e-4
    /// checked every 5000 epochs, at most 5e6 epochs, no step condition.
    pub fn paper() -> Self {
        GdConfig {
            lr: 0.5,
            max_epochs: 5_000_000,
            tol_train_mse: 1e-4,
            tol_rel_step: f64::INFINITY,
            check_every: 5000,
            device: DeviceKind::Cpu,
        }
    }
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Converged,
    MaxEpochs,
}

/// Outcome of [`train`].
#[derive(Debug, Clone, Serialize)]
pub struct GdResult {
    /// Final weights (after `epochs` updates).
    pub weights: Weights,
    /// Number of updates performed.
    pub epochs: u64,
    /// Train MSE `(1/n)||X beta - y||^2` of the final weights.
    pub train_mse: f64,
    pub stop: StopReason,
    /// `(epoch, train mse)` at the checks, thinned evenly to at most
    /// [`MAX_TRACE`] + 1 entries; always contains the first and last check.
    pub trace: Vec<(u64, f64)>,
    /// Wall time of the training loop (including upload and download).
    pub seconds: f64,
    /// Device the run used, e.g. `"cpu"` or `"cuda:0"`.
    pub device: String,
}

/// Trace length bound: when the trace reaches this many entries every other
/// entry is dropped and the recording stride doubles.
pub const MAX_TRACE: usize = 500;

/// Divergence threshold, as a multiple of the initial train MSE.
const DIVERGENCE_FACTOR: f64 = 1e6;

fn make_device(kind: DeviceKind) -> Result<Device, DiagnetError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda => cuda_device(),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device, DiagnetError> {
    Device::new_cuda(0).map_err(|e| {
        DiagnetError::CudaUnavailable(format!(
            "could not open CUDA device 0 ({e}); this machine has no usable NVIDIA GPU/driver, use device = cpu"
        ))
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device, DiagnetError> {
    Err(DiagnetError::CudaUnavailable(
        "ptft-diagnet was built without CUDA support; rebuild with `--features cuda` \
         (needs the CUDA toolkit at build time, see the crate docs), or use device = cpu"
            .into(),
    ))
}

fn device_name(dev: &Device) -> String {
    match dev {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => "cuda:0".to_string(),
        _ => format!("{:?}", dev.location()),
    }
}

fn validate_cfg(cfg: &GdConfig) -> Result<(), DiagnetError> {
    check_finite("lr", cfg.lr, "(0, inf)")?;
    if cfg.lr <= 0.0 {
        return Err(out_of_range("lr", cfg.lr, "(0, inf)"));
    }
    if cfg.max_epochs == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "max_epochs",
            value: 0,
            reason: "must be at least 1".into(),
        });
    }
    if cfg.check_every == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "check_every",
            value: 0,
            reason: "must be at least 1".into(),
        });
    }
    check_finite("tol_train_mse", cfg.tol_train_mse, "[0, inf)")?;
    if cfg.tol_train_mse < 0.0 {
        return Err(out_of_range("tol_train_mse", cfg.tol_train_mse, "[0, inf)"));
    }
    if cfg.tol_rel_step.is_nan() || cfg.tol_rel_step < 0.0 {
        return Err(out_of_range("tol_rel_step", cfg.tol_rel_step, "[0, inf]"));
    }
    Ok(())
}

/// Borrow the contiguous f64 data of a CPU storage.
fn f64_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f64]> {
    let data = match s {
        CpuStorage::F64(v) => v.as_slice(),
        _ => candle_core::bail!("{what}: expected f64 storage"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what}: expected a contiguous tensor"),
    }
}

/// `X (n x d) * v (d x 1) -> (n x 1)` on the CPU kernels.
struct MatVec;

impl CustomOp2 for MatVec {
    fn name(&self) -> &'static str {
        "ptft-matvec"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = l1.shape().dims2()?;
        if l2.shape().elem_count() != d {
            candle_core::bail!(
                "matvec: vector has {} entries, expected {d}",
                l2.shape().elem_count()
            );
        }
        let x = f64_slice(s1, l1, "matvec lhs")?;
        let v = f64_slice(s2, l2, "matvec rhs")?;
        let mut out = vec![0.0; n];
        kernels::matvec(x, n, d, v, &mut out);
        Ok((CpuStorage::F64(out), Shape::from((n, 1))))
    }
}

/// `r (1 x n) * X (n x d) -> (1 x d)`, i.e. `(X^T r)^T`, on the CPU kernels.
struct VecMat;

impl CustomOp2 for VecMat {
    fn name(&self) -> &'static str {
        "ptft-vecmat"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (n, d) = l2.shape().dims2()?;
        if l1.shape().elem_count() != n {
            candle_core::bail!(
                "vecmat: vector has {} entries, expected {n}",
                l1.shape().elem_count()
            );
        }
        let r = f64_slice(s1, l1, "vecmat lhs")?;
        let x = f64_slice(s2, l2, "vecmat rhs")?;
        let mut out = vec![0.0; d];
        kernels::vecmat(x, n, d, r, &mut out);
        Ok((CpuStorage::F64(out), Shape::from((1, d))))
    }
}

/// `X v` for `X: (n, d)`, `v: (d, 1)` on the tensors' device.
fn mat_vec(x: &Tensor, v: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        x.apply_op2_no_bwd(v, &MatVec)
    } else {
        x.matmul(v)
    }
}

/// `r X` for `r: (1, n)`, `X: (n, d)` on the tensors' device.
fn vec_mat(r: &Tensor, x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        r.apply_op2_no_bwd(x, &VecMat)
    } else {
        r.matmul(x)
    }
}

/// Sum of squares of a tensor, read back to the host.
fn sumsq(t: &Tensor) -> Result<f64, DiagnetError> {
    Ok(t.sqr()?.sum_all()?.to_scalar::<f64>()?)
}

/// Evenly thinned trace (see [`MAX_TRACE`]).
struct Trace {
    entries: Vec<(u64, f64)>,
    stride: u64,
    checks: u64,
    last: Option<(u64, f64)>,
}

impl Trace {
    fn new() -> Self {
        Trace {
            entries: Vec::new(),
            stride: 1,
            checks: 0,
            last: None,
        }
    }
    // `u64::is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    fn push(&mut self, e: (u64, f64)) {
        if self.checks % self.stride == 0 {
            self.entries.push(e);
            if self.entries.len() >= MAX_TRACE {
                let mut k = 0;
                self.entries.retain(|_| {
                    k += 1;
                    (k - 1) % 2 == 0
                });
                self.stride *= 2;
            }
        }
        self.checks += 1;
        self.last = Some(e);
    }
    fn finish(mut self) -> Vec<(u64, f64)> {
        if let Some(l) = self.last {
            if self.entries.last() != Some(&l) {
                self.entries.push(l);
            }
        }
        self.entries
    }
}

// `u64::is_multiple_of` needs Rust 1.87; the workspace MSRV is 1.85.
#[allow(clippy::manual_is_multiple_of)]
/// Full-batch GD from `init` on `(x, y)` (`x` row-major `n x d`); see the
/// module docs for the update, the stopping rule and divergence handling.
///
/// Errors: invalid config (`lr` not finite `> 0`, `max_epochs = 0`, ...),
/// shape mismatches or non-finite inputs, `CudaUnavailable`, `Diverged`.
pub fn train(
    x: &[f64],
    y: &[f64],
    n: usize,
    d: usize,
    init: &Weights,
    cfg: &GdConfig,
) -> Result<GdResult, DiagnetError> {
    validate_cfg(cfg)?;
    check_nd(n, d)?;
    check_len("x", x.len(), checked_size(n, d)?)?;
    check_len("y", y.len(), n)?;
    init.validate(d)?;
    check_all_finite("x", x)?;
    check_all_finite("y", y)?;

    let dev = make_device(cfg.device)?;
    let start = Instant::now();
    let xt = Tensor::from_slice(x, (n, d), &dev)?;
    let yt = Tensor::from_slice(y, (n, 1), &dev)?;
    let mut wp = Tensor::from_slice(&init.w_plus, (d, 1), &dev)?;
    let mut wm = Tensor::from_slice(&init.w_minus, (d, 1), &dev)?;
    let mut vp = Tensor::from_slice(&init.v_plus, (d, 1), &dev)?;
    let mut vm = Tensor::from_slice(&init.v_minus, (d, 1), &dev)?;
    // The 1/n of the gradient is folded into the step.
    let step = cfg.lr / n as f64;
    let nf = n as f64;

    let mut trace = Trace::new();
    let mut init_mse: Option<f64> = None;
    let mut beta_prev: Option<Tensor> = None;
    let mut epoch: u64 = 0;
    let (stop, train_mse) = loop {
        let beta = ((&wp * &vp)? - (&wm * &vm)?)?;
        let r = (mat_vec(&xt, &beta)? - &yt)?;
        if epoch % cfg.check_every == 0 || epoch >= cfg.max_epochs {
            let mse = sumsq(&r)? / nf;
            let mse0 = *init_mse.get_or_insert(mse);
            if !mse.is_finite() || mse > DIVERGENCE_FACTOR * mse0.max(f64::MIN_POSITIVE) {
                return Err(DiagnetError::Diverged {
                    lr: cfg.lr,
                    epoch,
                    loss: mse,
                });
            }
            let rel = match &beta_prev {
                Some(bp) => {
                    let db = sumsq(&(&beta - bp)?)?.sqrt();
                    let nb = sumsq(&beta)?.sqrt();
                    db / nb.max(1e-300)
                }
                None => f64::INFINITY,
            };
            trace.push((epoch, mse));
            if mse <= cfg.tol_train_mse && rel <= cfg.tol_rel_step {
                break (StopReason::Converged, mse);
            }
            if epoch >= cfg.max_epochs {
                break (StopReason::MaxEpochs, mse);
            }
            beta_prev = Some(beta);
        }
        // (lr/n) X^T r, computed as the row vector r^T X (see module docs).
        let g = vec_mat(&r.reshape((1, n))?, &xt)?
            .reshape((d, 1))?
            .affine(step, 0.0)?;
        let wp_new = (&wp - (&vp * &g)?)?;
        let vp_new = (&vp - (&wp * &g)?)?;
        let wm_new = (&wm + (&vm * &g)?)?;
        let vm_new = (&vm + (&wm * &g)?)?;
        wp = wp_new;
        vp = vp_new;
        wm = wm_new;
        vm = vm_new;
        epoch += 1;
    };
    let weights = Weights {
        w_plus: wp.flatten_all()?.to_vec1::<f64>()?,
        w_minus: wm.flatten_all()?.to_vec1::<f64>()?,
        v_plus: vp.flatten_all()?.to_vec1::<f64>()?,
        v_minus: vm.flatten_all()?.to_vec1::<f64>()?,
    };
    // The MSE check above was on finite values; make sure no weight went
    // non-finite in a way the MSE missed (it cannot, but never return NaN).
    weights.validate(d).map_err(|_| DiagnetError::Diverged {
        lr: cfg.lr,
        epoch,
        loss: train_mse,
    })?;
    Ok(GdResult {
        weights,
        epochs: epoch,
        train_mse,
        stop,
        trace: trace.finish(),
        seconds: start.elapsed().as_secs_f64(),
        device: device_name(&dev),
    })
}

/// Seconds per mat-vec for `X v` and for `r^T X` (the two products of a GD
/// epoch), each averaged over `reps` after one warm-up, on the same backend
/// [`train`] uses. Shared by [`matvec_seconds`] and the benchmark.
pub fn matvec_pair_seconds(
    x: &[f64],
    n: usize,
    d: usize,
    reps: usize,
    device: DeviceKind,
) -> Result<(f64, f64), DiagnetError> {
    if n == 0 || d == 0 || reps == 0 {
        return Err(DiagnetError::InvalidSize {
            name: if reps == 0 {
                "reps"
            } else if n == 0 {
                "n"
            } else {
                "d"
            },
            value: 0,
            reason: "must be at least 1".into(),
        });
    }
    check_len("x", x.len(), checked_size(n, d)?)?;
    let dev = make_device(device)?;
    let xt = Tensor::from_slice(x, (n, d), &dev)?;
    let v = Tensor::ones((d, 1), candle_core::DType::F64, &dev)?;
    let r = Tensor::ones((1, n), candle_core::DType::F64, &dev)?;
    let time = |f: &dyn Fn() -> Result<Tensor, candle_core::Error>| -> Result<f64, DiagnetError> {
        let _ = f()?; // warm-up (allocator, cuBLAS handles)
        dev.synchronize()?;
        let t0 = Instant::now();
        let mut keep = Vec::with_capacity(1);
        for _ in 0..reps {
            keep.clear();
            keep.push(f()?);
        }
        dev.synchronize()?;
        Ok(t0.elapsed().as_secs_f64() / reps as f64)
    };
    let xv = time(&|| mat_vec(&xt, &v))?;
    let rx = time(&|| vec_mat(&r, &xt))?;
    Ok((xv, rx))
}

/// Seconds per plain mat-vec `X v`, averaged over `reps`, on the same
/// device/backend as [`train`]: the yardstick for the GD loop's GFLOP/s.
pub fn matvec_seconds(
    x: &[f64],
    n: usize,
    d: usize,
    reps: usize,
    device: DeviceKind,
) -> Result<f64, DiagnetError> {
    Ok(matvec_pair_seconds(x, n, d, reps, device)?.0)
}
