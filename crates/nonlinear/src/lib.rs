//! Foundation of the nonlinear-network experiment (paper Section 6): a
//! network is pretrained on some CIFAR-100 classes, its parameters are
//! rescaled by the theory's knobs, it is fine-tuned on other classes, and the
//! change of its last-layer representation is measured.
//!
//! Data flows through three modules, none of which knows about the others:
//!
//! 1. [`cifar`] reads the official CIFAR-100 binary files (`train.bin`,
//!    `test.bin`) into bytes + labels, selects classes and produces
//!    normalised `f32`/`f64` vectors in NCHW order, ready for a
//!    `candle_core::Tensor`.
//! 2. [`knobs`] applies the three scale knobs of the theory (relative scale at
//!    initialisation, absolute scale, readout scale after pretraining) and the
//!    older "rescale everything before fine-tuning" heuristic to the named
//!    parameters of a `candle_nn::VarMap`.
//! 3. A model — so far the one-block transformer of [`modular`], pretrained
//!    on `(a + b) mod p` and fine-tuned on `a - b` (shared features) or
//!    `a * b` (new features); the ResNet-18 is still to come — maps a fixed
//!    probe set of inputs to last-layer features before (A) and after (B)
//!    fine-tuning; [`metrics`]
//!    turns those two feature matrices into the participation ratio and the
//!    effective number of shared dimensions (THEORY.md §11).
//!
//! Every fallible function returns a module-specific `thiserror` error whose
//! message names the file, parameter or field and what was expected; bad
//! input never panics.

pub mod cifar;
pub mod knobs;
pub mod metrics;
pub mod modular;

pub use cifar::{Cifar100, CifarError, Split};
pub use knobs::KnobError;
pub use metrics::{Features, MetricsError};
