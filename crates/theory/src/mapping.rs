//! From pretraining to fine-tuning: the per-coordinate fine-tuning scale
//! `c_ft` of THEORY §5.
//!
//! Pretraining enters fine-tuning *only* through `c_ft`, so this one formula
//! is the bridge between the task model (which coordinates were active in
//! pretraining, §8) and the replica theory (§9).

use crate::error::{check_finite, out_of_range, TheoryError};

/// Fine-tuning absolute scale of a coordinate whose pretrained coefficient is
/// `beta_pt`, after rebalancing and re-initialising the readout at scale
/// `gamma`:
///
/// `c_ft = (lambda + c) (1 + sqrt(1 + (beta_pt / c)^2)) + gamma^2 / 2`.
///
/// Evaluated as `(1 + lambda/c) (c + sqrt(c^2 + beta_pt^2)) + gamma^2/2`,
/// which is the same number but cannot overflow `(beta_pt/c)^2` for tiny `c`.
/// Inputs are assumed valid (see [`validate_init`]); this is a plain formula.
pub fn c_ft(beta_pt: f64, c: f64, lambda: f64, gamma: f64) -> f64 {
    (1.0 + lambda / c) * (c + c.hypot(beta_pt)) + 0.5 * gamma * gamma
}

/// Validate the user-facing initialisation `(c, lambda, gamma)` of THEORY §2
/// and §5: `c > 0` finite, `-c <= lambda <= c`, `gamma >= 0` finite.
///
/// `lambda = -c` is allowed: with `gamma = 0` it is the degenerate saddle
/// (`c_ft = 0`), which the replica solver handles explicitly.
pub fn validate_init(c: f64, lambda: f64, gamma: f64) -> Result<(), TheoryError> {
    check_finite("c", c, "(0, inf)")?;
    if c <= 0.0 {
        return Err(out_of_range("c", c, "(0, inf)"));
    }
    check_finite("lambda", lambda, "[-c, c]")?;
    if lambda.abs() > c {
        return Err(TheoryError::LambdaOutOfRange { lambda, c });
    }
    check_finite("gamma", gamma, "[0, inf)")?;
    if gamma < 0.0 {
        return Err(out_of_range("gamma", gamma, "[0, inf)"));
    }
    Ok(())
}
