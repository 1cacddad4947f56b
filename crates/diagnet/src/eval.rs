//! Generalisation metrics of THEORY §8.
//!
//! `param_mse = ||beta_hat - beta||^2 / d` is the expected prediction error
//! on a fresh `x ~ N(0, I/d)`; [`test_mse`] measures the same thing on an
//! explicit test set, which is what the paper reports, so both are kept and
//! must agree within Monte-Carlo error.

use crate::data::{dot, fill_rows, BLOCK_ROWS};
use crate::error::{check_all_finite, check_len, DiagnetError};

/// `||beta_hat - beta_true||^2 / d`. Slices must have equal length (a
/// programming error otherwise: this panics on mismatch, like indexing);
/// `d = 0` gives 0.
pub fn param_mse(beta_hat: &[f64], beta_true: &[f64]) -> f64 {
    assert_eq!(
        beta_hat.len(),
        beta_true.len(),
        "param_mse: length mismatch"
    );
    if beta_hat.is_empty() {
        return 0.0;
    }
    let s: f64 = beta_hat
        .iter()
        .zip(beta_true)
        .map(|(a, b)| (a - b) * (a - b))
        .sum();
    s / beta_hat.len() as f64
}

/// Rows of the test set generated (and discarded) at a time: 1024 rows of
/// `d = 5000` are 40 MB, so memory stays bounded for any `n_test`.
const TEST_CHUNK_ROWS: usize = 64 * BLOCK_ROWS;

/// Prediction MSE `(1/n_test) sum_r (x_r . (beta_hat - beta_true))^2` on
/// `n_test` fresh noiseless samples. The test design is exactly
/// `data::design(&DesignSpec { n: n_test, d, seed })` (same streams), but
/// generated in chunks so it is never held in memory at once. The sum is
/// accumulated chunk by chunk in row order, so the value does not depend on
/// the thread count. Errors: `n_test = 0`, empty, mismatched or non-finite
/// coefficient vectors.
pub fn test_mse(
    beta_hat: &[f64],
    beta_true: &[f64],
    n_test: usize,
    seed: u64,
) -> Result<f64, DiagnetError> {
    let d = beta_true.len();
    if d == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "d",
            value: 0,
            reason: "beta_true must not be empty".into(),
        });
    }
    if n_test == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "n_test",
            value: 0,
            reason: "the test set needs at least one sample".into(),
        });
    }
    check_len("beta_hat", beta_hat.len(), d)?;
    check_all_finite("beta_hat", beta_hat)?;
    check_all_finite("beta_true", beta_true)?;
    let e: Vec<f64> = beta_hat.iter().zip(beta_true).map(|(a, b)| a - b).collect();
    let mut buf = vec![0.0; TEST_CHUNK_ROWS.min(n_test) * d];
    let mut total = 0.0;
    let mut row = 0;
    while row < n_test {
        let rows = TEST_CHUNK_ROWS.min(n_test - row);
        let chunk = &mut buf[..rows * d];
        fill_rows(seed, d, row / BLOCK_ROWS, chunk);
        use rayon::prelude::*;
        let partial: Vec<f64> = chunk
            .par_chunks(d)
            .map(|x| {
                let r = dot(x, &e);
                r * r
            })
            .collect();
        total += partial.iter().sum::<f64>();
        row += rows;
    }
    let mse = total / n_test as f64;
    if !mse.is_finite() {
        return Err(DiagnetError::NonFinite(format!(
            "test mse overflowed (sum of squared errors = {total:e})"
        )));
    }
    Ok(mse)
}

/// Fraction of coordinates with `|beta_hat_i| > threshold` (0 for an empty
/// vector). The replica reference uses `threshold = 1e-6`.
pub fn active_frac(beta_hat: &[f64], threshold: f64) -> f64 {
    if beta_hat.is_empty() {
        return 0.0;
    }
    beta_hat.iter().filter(|b| b.abs() > threshold).count() as f64 / beta_hat.len() as f64
}

/// Relative L2 distance `||a - b|| / ||b||`; `0` if both are zero, `+inf` if
/// only `b` is. Panics on length mismatch (programming error).
pub fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "rel_l2: length mismatch");
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if num == 0.0 {
        0.0
    } else {
        num / den
    }
}
