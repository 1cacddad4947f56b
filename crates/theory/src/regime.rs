//! Learning-regime metrics of THEORY §7 (paper Section 5, Appendix B.2).
//!
//! Two numbers locate a fine-tuning coordinate on the phase portrait:
//! the *l-order* `b q'(b)/q(b) = d log q / d log |b|` (1 = l1-like/rich,
//! 2 = l2-like/lazy) and the *pretraining dependence*
//! `PD = d log q(b; c_ft(b_pt)) / d log |b_pt| = (1 - l-order) D` with
//! `D = d log c_ft / d log |b_pt|`. Proposition 5.1 bounds them to a triangle;
//! the property tests check that our evaluation stays inside it everywhere.

use crate::error::{check_finite, TheoryError};
use crate::mapping::{c_ft, validate_init};
use serde::Serialize;

/// One point of the phase portrait.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegimePoint {
    /// `b q'(b; c_ft) / q(b; c_ft)`, in `[1, 2]`.
    pub l_order: f64,
    /// Pretraining dependence `(1 - l_order) D`, in `[-1, 0]`.
    pub pd: f64,
    /// `d log c_ft / d log |b_pt|`, in `[0, 1)`.
    pub d: f64,
    /// The fine-tuning scale the metrics were evaluated at.
    pub c_ft: f64,
}

/// l-order of `q(.; c)` at `b` (`b != 0`, `c > 0`), written in the scale-free
/// ratio `r = b / c` so that `q` itself (which underflows like `b^2/(4c)` in
/// the lazy limit) is never formed:
/// `l = t / (t - 1/(1 + sqrt(1 + r^2)))` with `t = asinh(r)/r`.
fn l_order_of(b: f64, c: f64) -> f64 {
    let r = (b / c).abs();
    if r == 0.0 {
        // |b| << c beyond double precision: the exact lazy limit.
        return 2.0;
    }
    if r <= 1e150 {
        let t = libm::asinh(r) / r;
        let s = 1.0_f64.hypot(r);
        t / (t - 1.0 / (1.0 + s))
    } else {
        // asinh(r) = ln(2r) to double precision and 1/(1+s) = 1/r, so
        // l = L / (L - 1) with L = ln(2|b|) - ln(c) (no overflow of b/c).
        let big_l = (2.0 * b.abs()).ln() - c.ln();
        big_l / (big_l - 1.0)
    }
}

/// Evaluate the regime metrics for fine-tuning coefficient `b` and pretrained
/// coefficient `b_pt` under initialisation `(c, lambda, gamma)`.
///
/// `b = 0` is rejected: `q` is quadratic there in every regime, so the
/// l-order is `2` by continuity *only* along `b -> 0` at fixed `c_ft`, which
/// would hide the regime the user asked about. `b_pt = 0` (an inactive
/// pretraining coordinate) gives `D = 0` and `PD = 0`.
///
/// The degenerate saddle `lambda = -c, gamma = 0` (`c_ft = 0`) returns the
/// limit `lambda -> -c` from above: l-order `1` and
/// `D = r^2 / (sqrt(1 + r^2) (1 + sqrt(1 + r^2)))`, `r = b_pt/c`, so `PD = 0`.
pub fn regime_point(
    b: f64,
    b_pt: f64,
    c: f64,
    lambda: f64,
    gamma: f64,
) -> Result<RegimePoint, TheoryError> {
    validate_init(c, lambda, gamma)?;
    check_finite("b", b, "finite and nonzero")?;
    check_finite("b_pt", b_pt, "finite")?;
    if b == 0.0 {
        return Err(TheoryError::Undefined(
            "l-order at b = 0 (q is flat there; pass a nonzero fine-tuning coefficient b)".into(),
        ));
    }
    let cft = c_ft(b_pt, c, lambda, gamma);
    let k_over_c = 1.0 + lambda / c; // (lambda + c) / c, in [0, 2]
    let degenerate = k_over_c == 0.0 && gamma == 0.0;

    let l_order = if degenerate { 1.0 } else { l_order_of(b, cft) };

    let d = if b_pt == 0.0 {
        0.0
    } else {
        let r = b_pt / c;
        let s = 1.0_f64.hypot(r);
        let r_over_s = (r / s).abs(); // in [0, 1]
        if degenerate {
            // lim_{lambda -> -c} (lambda+c) r^2/s / ((lambda+c)(1+s)).
            r.abs() * r_over_s / (1.0 + s)
        } else {
            // (lambda + c) r^2 / s = (k/c) |b_pt| (|r|/s): no overflow.
            k_over_c * b_pt.abs() * r_over_s / cft
        }
    };
    let pd = (1.0 - l_order) * d;

    for (name, v) in [("l_order", l_order), ("pd", pd), ("d", d), ("c_ft", cft)] {
        if !v.is_finite() {
            return Err(TheoryError::NonFinite(format!(
                "{name} = {v} at b = {b:e}, b_pt = {b_pt:e}, c = {c:e}, lambda = {lambda:e}, gamma = {gamma:e}"
            )));
        }
    }
    Ok(RegimePoint {
        l_order,
        pd,
        d,
        c_ft: cft,
    })
}
