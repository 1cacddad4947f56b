//! The single error type of the crate.
//!
//! Every variant carries enough context to tell the user *which* parameter was
//! wrong and *what* range would have been accepted, because these errors end
//! up in workflow logs far away from the code that produced them.

use thiserror::Error;

/// Errors returned by `ptft-theory`. The library never panics on bad input
/// and never returns a silent NaN: it returns one of these instead.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TheoryError {
    /// A scalar parameter is outside its valid range (or is NaN/infinite).
    /// `valid` describes the accepted range, e.g. `"(0, inf) and finite"`.
    #[error("{name} = {value:e} is outside the valid range {valid}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        valid: String,
    },

    /// The relative scale violates `|lambda| <= c` (THEORY §2).
    #[error("lambda = {lambda:e} is outside [-c, c] = [{neg_c:e}, {c:e}]", neg_c = -c)]
    LambdaOutOfRange { lambda: f64, c: f64 },

    /// The task's group probabilities (THEORY §8) are not all >= 0. The
    /// message spells out the violated inequality with numbers plugged in.
    #[error("infeasible task: {0}")]
    InfeasibleTask(String),

    /// A quantity that must be defined is not (e.g. the l-order at b = 0).
    #[error("undefined: {0}")]
    Undefined(String),

    /// A list argument (alpha grid, group list) was empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),

    /// Group probabilities do not sum to one.
    #[error("group probabilities sum to {sum}, expected 1 (tolerance 1e-9)")]
    ProbabilitiesDoNotSumToOne { sum: f64 },

    /// A computation produced NaN or infinity where a finite number is
    /// required. This indicates a numerical breakdown, reported rather than
    /// propagated.
    #[error("non-finite result: {0}")]
    NonFinite(String),
}

/// Check that `value` is finite; `valid` is used in the error message.
pub(crate) fn check_finite(name: &'static str, value: f64, valid: &str) -> Result<(), TheoryError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(out_of_range(name, value, valid))
    }
}

pub(crate) fn out_of_range(name: &'static str, value: f64, valid: &str) -> TheoryError {
    TheoryError::OutOfRange {
        name,
        value,
        valid: valid.to_string(),
    }
}
