//! `ptft-diagnet`: the *empirical* side of `ptft` — finite diagonal linear
//! networks that are pretrained, re-initialised and fine-tuned by gradient
//! descent, plus the exact implicit-bias solver they are checked against
//! (THEORY.md §1–6, §8). The replica theory in `ptft-theory` predicts the
//! `d -> infinity` generalisation error; this crate produces the `d = 5000`
//! points the paper plots next to it, and proves along the way that the
//! trained networks land where the theory says they should.
//!
//! Data flows in one direction:
//!
//! 1. [`task`]: a seed becomes the teachers `beta_pt`, `beta_ft` with exact
//!    group sizes (overlap / new / pt-only / none, §8).
//! 2. [`data`]: `(n, d, seed)` becomes the design `X ~ N(0, 1/d)` and labels
//!    `y = X beta`. Designs are regenerated, not stored; a blake3 checksum
//!    proves the bytes are the same.
//! 3. [`weights`]: pretraining state — either the oracle (§4, closed form
//!    from `beta_pt` and the conserved `(c, lambda)`) or real pretraining by
//!    [`gd::train`] from [`weights::symmetric_init`] — then
//!    [`weights::reinit`] (§5) gives the fine-tuning initialisation and the
//!    per-coordinate scale `c_ft`, the *only* channel through which
//!    pretraining reaches fine-tuning.
//! 4. Fine-tuning two ways: [`gd::train`] (full-batch GD on candle tensors,
//!    CPU or CUDA) and [`dual::implicit_bias_solve`] (the exact gradient-flow
//!    limit `argmin sum q(beta_i; c_ft_i)` s.t. `X beta = y`, §3/§6).
//! 5. [`eval`]: parameter MSE, test-set MSE, active fraction, and the
//!    relative distance used to compare the two fine-tuning routes.
//!
//! Conventions: `f64` everywhere; matrices are row-major `n x d` slices.
//! Bad input is reported as [`DiagnetError`] naming the parameter and its
//! valid range; numerical failure (divergence, non-convergence) is an error
//! with the achieved numbers, never a silent NaN. All randomness is ChaCha8
//! from explicit seeds, and results do not depend on the rayon thread count.
//!
//! # CUDA
//!
//! The default build is CPU-only and needs no CUDA. To run GD on an NVIDIA
//! GPU, build with `cargo build --release -p ptft-diagnet --features cuda`
//! (which enables `candle-core/cuda`) and pass `DeviceKind::Cuda`. This needs
//! the CUDA toolkit at build time (`nvcc` on `PATH`, `CUDA_ROOT` set,
//! `CUDA_COMPUTE_CAP=90` for H100/H200; a pip-installed toolkit works, see
//! `/work/shared/notes/cuda-build.md`); without it the build fails in the
//! `cudarc`/`candle-kernels` build scripts ("nvcc" not found). At run time a
//! CUDA build needs an NVIDIA driver (R580+ for CUDA 13). A CPU-only build
//! asked for `DeviceKind::Cuda` returns [`DiagnetError::CudaUnavailable`]
//! telling you to rebuild with `--features cuda`.

pub mod data;
pub mod dual;
pub mod error;
pub mod eval;
pub mod gd;
mod kernels;
pub mod task;
pub mod weights;

pub use error::DiagnetError;
