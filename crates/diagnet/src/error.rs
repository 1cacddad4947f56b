//! The single error type of the crate.
//!
//! These errors surface in pipeline logs far from the call site, so every
//! variant names the offending parameter, its value and what would have been
//! accepted (or, for numerical failures, what was achieved and what to try).

use ptft_theory::TheoryError;
use thiserror::Error;

/// Errors returned by `ptft-diagnet`. The library does not panic on bad input
/// and never hands back a silent NaN: it returns one of these instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DiagnetError {
    /// A scalar parameter is outside its valid range (or is NaN/infinite).
    #[error("{name} = {value:e} is outside the valid range {valid}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        valid: String,
    },

    /// An integer size parameter is invalid (e.g. `d = 0`).
    #[error("{name} = {value} is invalid: {reason}")]
    InvalidSize {
        name: &'static str,
        value: usize,
        reason: String,
    },

    /// Slice lengths do not match the declared shapes.
    #[error("shape mismatch: {what} has length {got}, expected {expected}")]
    ShapeMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },

    /// An input array contains NaN or infinity.
    #[error("{what} contains a non-finite value at index {index}")]
    NonFiniteInput { what: &'static str, index: usize },

    /// A regenerated dataset does not match its recorded checksum.
    #[error("checksum mismatch for {what}: regenerated {got}, recorded {expected}; the generator changed since the dataset was recorded")]
    ChecksumMismatch {
        what: String,
        expected: String,
        got: String,
    },

    /// The two-task model is infeasible (THEORY §8), either in probability
    /// or after rounding the group sizes to integers; the message spells out
    /// the violated inequality with the numbers plugged in.
    #[error("infeasible task: {0}")]
    InfeasibleTask(String),

    /// A validation error from `ptft-theory` (initialisation or task
    /// parameters), passed through unchanged.
    #[error(transparent)]
    Theory(#[from] TheoryError),

    /// Gradient descent blew up. The learning rate is too large for the
    /// curvature of the loss at the current weights.
    #[error(
        "gradient descent diverged with lr = {lr:e} by epoch {epoch} (train mse = {loss:e}); \
         use a smaller learning rate, e.g. lr = {smaller:e}",
        smaller = lr / 10.0
    )]
    Diverged { lr: f64, epoch: u64, loss: f64 },

    /// The CUDA device was requested but cannot be used.
    #[error("CUDA unavailable: {0}")]
    CudaUnavailable(String),

    /// The exact dual solver did not reach its tolerance.
    #[error(
        "dual Newton solver did not converge: relative residual {residual:e} > tol {tol:e} \
         after {iterations} iterations ({detail})"
    )]
    NotConverged {
        iterations: u32,
        residual: f64,
        tol: f64,
        detail: String,
    },

    /// A tensor-backend (candle) operation failed.
    #[error("tensor backend error: {0}")]
    Backend(String),

    /// A computation produced NaN or infinity where a finite number is
    /// required; reported rather than propagated.
    #[error("non-finite result: {0}")]
    NonFinite(String),
}

impl From<candle_core::Error> for DiagnetError {
    fn from(e: candle_core::Error) -> Self {
        DiagnetError::Backend(e.to_string())
    }
}

/// `value` must be finite, else `OutOfRange` with `valid` in the message.
pub(crate) fn check_finite(
    name: &'static str,
    value: f64,
    valid: &str,
) -> Result<(), DiagnetError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(out_of_range(name, value, valid))
    }
}

pub(crate) fn out_of_range(name: &'static str, value: f64, valid: &str) -> DiagnetError {
    DiagnetError::OutOfRange {
        name,
        value,
        valid: valid.to_string(),
    }
}

pub(crate) fn check_len(
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), DiagnetError> {
    if got == expected {
        Ok(())
    } else {
        Err(DiagnetError::ShapeMismatch {
            what,
            expected,
            got,
        })
    }
}

pub(crate) fn check_all_finite(what: &'static str, v: &[f64]) -> Result<(), DiagnetError> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(index) => Err(DiagnetError::NonFiniteInput { what, index }),
    }
}

/// `n * d` without overflow.
pub(crate) fn checked_size(n: usize, d: usize) -> Result<usize, DiagnetError> {
    n.checked_mul(d).ok_or(DiagnetError::InvalidSize {
        name: "n * d",
        value: usize::MAX,
        reason: format!("{n} x {d} overflows usize"),
    })
}

/// The input dimension must be at least 1.
pub(crate) fn check_d(d: usize) -> Result<(), DiagnetError> {
    if d == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "d",
            value: 0,
            reason: "the input dimension must be at least 1".into(),
        });
    }
    Ok(())
}

/// A training problem needs at least one sample and one coordinate.
pub(crate) fn check_nd(n: usize, d: usize) -> Result<(), DiagnetError> {
    if n == 0 || d == 0 {
        return Err(DiagnetError::InvalidSize {
            name: if n == 0 { "n" } else { "d" },
            value: 0,
            reason: "need at least one sample and one coordinate".into(),
        });
    }
    Ok(())
}
