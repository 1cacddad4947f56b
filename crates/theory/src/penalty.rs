//! The implicit-bias penalty `q(b; c)` of THEORY §3 and its derivatives.
//!
//! Gradient flow on the diagonal linear network converges to the interpolator
//! minimising `sum_i q(beta_i; c_i)`. Everything downstream (the prox of the
//! replica theory, the regime metrics) is built from these four functions, so
//! they are written to stay accurate over the whole range the pipeline uses,
//! `c` from `1e-12` (rich, l1-like) to `1e3` (lazy, l2-like):
//!
//! * `sqrt(b^2 + c^2) - c` is evaluated as `b^2 / (sqrt(b^2 + c^2) + c)`,
//!   which has no cancellation when `|b| << c`;
//! * `asinh(b / c)` switches to `ln(2|b|) - ln(c)` when `b / c` would
//!   overflow (tiny `c`).
//!
//! Domain: `c >= 0` (it is a scale). These are the raw mathematical functions
//! used in hot loops, so they follow the `f64` convention that a domain error
//! (`c < 0` or a NaN argument) yields NaN; user-facing entry points validate
//! `c` first (see [`crate::mapping::validate_init`]). `c = 0` is the rich
//! limit and is handled explicitly.

/// `asinh(b / c)` for `c >= 0` without overflowing `b / c`.
///
/// `c = 0` gives `±inf` (and `0` at `b = 0`, the value of the odd function's
/// symmetric subgradient), matching the limit `c -> 0+`.
pub fn asinh_ratio(b: f64, c: f64) -> f64 {
    if b == 0.0 {
        return 0.0;
    }
    if c == 0.0 {
        return f64::INFINITY.copysign(b);
    }
    let r = b / c;
    if r.abs() <= 1e150 {
        libm::asinh(r)
    } else {
        // asinh(r) = ln(2|r|) + O(1/r^2); the correction is below 1e-300 here.
        ((2.0 * b.abs()).ln() - c.ln()).copysign(b)
    }
}

/// The penalty `q(b; c) = (1/2) [ b asinh(b/c) - sqrt(b^2 + c^2) + c ]`.
///
/// Strictly convex, even, `q(0; c) = 0`. Computed as
/// `(1/2) [ b asinh(b/c) - b * b / (sqrt(b^2 + c^2) + c) ]` to avoid the
/// cancellation in `sqrt(b^2 + c^2) - c` for `|b| << c` (the lazy regime,
/// where `q ~ b^2 / (4c)`). At `c = 0` the penalty is the limit `c -> 0+`:
/// `0` at `b = 0` and `+inf` elsewhere (it grows like `|b| ln(2|b|/c) / 2`),
/// which is why a coordinate with `c_ft = 0` can never move off zero.
pub fn q(b: f64, c: f64) -> f64 {
    if c == 0.0 {
        return if b == 0.0 { 0.0 } else { f64::INFINITY };
    }
    let h = b.hypot(c);
    0.5 * (b * asinh_ratio(b, c) - b * (b / (h + c)))
}

/// `q'(b; c) = (1/2) asinh(b / c)`; `±inf` at `c = 0`, `b != 0`.
pub fn q_prime(b: f64, c: f64) -> f64 {
    0.5 * asinh_ratio(b, c)
}

/// `q''(b; c) = 1 / (2 sqrt(b^2 + c^2))`; `+inf` at `b = c = 0`.
pub fn q_second(b: f64, c: f64) -> f64 {
    0.5 / b.hypot(c)
}

/// `q'''(b; c) = -b / (2 (b^2 + c^2)^{3/2})`.
///
/// Written as `-(b/h) / (2 h^2)` with `h = sqrt(b^2 + c^2)` so that `h^3`
/// cannot overflow before the division. At `b = c = 0` the limit does not
/// exist; we return `0`, the value on the whole line `b = 0` for `c > 0`
/// (q''' is odd in `b`).
pub fn q_third(b: f64, c: f64) -> f64 {
    let h = b.hypot(c);
    if h == 0.0 {
        return 0.0;
    }
    -(b / h) / (2.0 * h * h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_and_rich_limits() {
        // Lazy: q ~ b^2/(4c) for |b| << c; relative error O((b/c)^2) = 1e-12.
        let (b, c) = (1e-3, 1e3);
        assert!((q(b, c) / (b * b / (4.0 * c)) - 1.0).abs() < 1e-11);
        // Rich: q ~ |b| ln(2|b|/c)/2 - |b|/2 + ... for |b| >> c.
        let (b, c) = (1.0_f64, 1e-200_f64);
        let approx = 0.5 * ((2.0 * b / c).ln() - 1.0);
        assert!((q(b, c) / approx - 1.0).abs() < 1e-12);
        assert_eq!(q(0.0, 0.0), 0.0);
        assert_eq!(q(1.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for &c in &[1e-3_f64, 0.3, 1.0, 50.0] {
            for &b in &[-3.0_f64, -0.01, 0.0, 0.2, 1.7] {
                let h = 1e-6 * (b.abs() + c);
                let d1 = (q(b + h, c) - q(b - h, c)) / (2.0 * h);
                let d2 = (q_prime(b + h, c) - q_prime(b - h, c)) / (2.0 * h);
                let d3 = (q_second(b + h, c) - q_second(b - h, c)) / (2.0 * h);
                // Central differences: truncation O(h^2) plus rounding
                // O(eps/h); 1e-6 relative is comfortably above both.
                assert!((d1 - q_prime(b, c)).abs() <= 1e-6 * (1.0 + q_prime(b, c).abs()));
                assert!((d2 - q_second(b, c)).abs() <= 1e-6 * (1.0 + q_second(b, c).abs()));
                assert!((d3 - q_third(b, c)).abs() <= 1e-5 * (1.0 + q_third(b, c).abs()));
            }
        }
    }
}
