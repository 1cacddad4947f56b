//! Network weights and the three ways to set them: the symmetric
//! initialisation (THEORY §2), the oracle pretrained state (§4) and the
//! rebalancing + readout re-initialisation that starts fine-tuning (§5).
//!
//! Per coordinate the network has two pathways, `beta = w+ v+ - w- v-`.
//! Gradient flow conserves `lambda_i = (w±)^2 - (v±)^2` and
//! `c_i = w+ w- + v+ v-`, which is why the whole pretrained state can be
//! written down from `(beta_pt, c, lambda)` without training, and why
//! fine-tuning depends on pretraining only through `c_ft`.

use crate::error::{
    check_all_finite, check_d, check_finite, check_len, out_of_range, DiagnetError,
};
use serde::Serialize;

/// The four weight vectors of a diagonal linear network (length `d` each).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weights {
    pub w_plus: Vec<f64>,
    pub w_minus: Vec<f64>,
    pub v_plus: Vec<f64>,
    pub v_minus: Vec<f64>,
}

impl Weights {
    /// Input dimension `d`.
    pub fn len(&self) -> usize {
        self.w_plus.len()
    }

    /// True when `d = 0`.
    pub fn is_empty(&self) -> bool {
        self.w_plus.is_empty()
    }

    /// The network's linear predictor `beta = w+ v+ - w- v-`.
    pub fn beta(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.w_plus[i] * self.v_plus[i] - self.w_minus[i] * self.v_minus[i])
            .collect()
    }

    /// Relative scale of the `+` pathway, `(w+)^2 - (v+)^2` (THEORY §2).
    pub fn lambda_i(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.w_plus[i] * self.w_plus[i] - self.v_plus[i] * self.v_plus[i])
            .collect()
    }

    /// Relative scale of the `-` pathway, `(w-)^2 - (v-)^2`; equal to
    /// [`Weights::lambda_i`] for every state reachable from the symmetric
    /// initialisation, so comparing the two is a cheap consistency check.
    pub fn lambda_minus_i(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.w_minus[i] * self.w_minus[i] - self.v_minus[i] * self.v_minus[i])
            .collect()
    }

    /// Absolute scale `c_i = w+ w- + v+ v-` (THEORY §2).
    pub fn c_i(&self) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.w_plus[i] * self.w_minus[i] + self.v_plus[i] * self.v_minus[i])
            .collect()
    }

    /// Check that all four vectors have length `d` and are finite.
    pub fn validate(&self, d: usize) -> Result<(), DiagnetError> {
        check_len("weights.w_plus", self.w_plus.len(), d)?;
        check_len("weights.w_minus", self.w_minus.len(), d)?;
        check_len("weights.v_plus", self.v_plus.len(), d)?;
        check_len("weights.v_minus", self.v_minus.len(), d)?;
        check_all_finite("weights.w_plus", &self.w_plus)?;
        check_all_finite("weights.w_minus", &self.w_minus)?;
        check_all_finite("weights.v_plus", &self.v_plus)?;
        check_all_finite("weights.v_minus", &self.v_minus)?;
        Ok(())
    }
}

/// Symmetric initialisation of THEORY §2: `w± = sqrt((c + lambda)/2)`,
/// `v± = sqrt((c - lambda)/2)`, so `beta = 0`, `lambda_i = lambda`,
/// `c_i = c`. Errors: `d = 0`, `c` not finite `> 0`, `|lambda| > c`.
pub fn symmetric_init(d: usize, c: f64, lambda: f64) -> Result<Weights, DiagnetError> {
    check_d(d)?;
    ptft_theory::validate_init(c, lambda, 0.0)?;
    // `(c + lambda)` and `(c - lambda)` are exact sums of two floats with
    // |lambda| <= c, so they are >= 0 (no negative sqrt at lambda = -c).
    let w = (0.5 * (c + lambda)).sqrt();
    let v = (0.5 * (c - lambda)).sqrt();
    Ok(Weights {
        w_plus: vec![w; d],
        w_minus: vec![w; d],
        v_plus: vec![v; d],
        v_minus: vec![v; d],
    })
}

/// The pathway weights `(w, v)` with product `w v = p` and relative scale
/// `w^2 - v^2 = lambda`. The larger of the two is `sqrt((u + |lambda|)/2)`
/// with `u = w^2 + v^2 = hypot(lambda, 2p)` (a sum, no cancellation) and is
/// positive; the smaller is `p / larger`, carrying the sign of `p`. This is
/// the `cosh`/`sinh` pair of THEORY §4 (`w` is the `cosh` one for
/// `lambda > 0`, `v` for `lambda < 0`) without evaluating `acosh(c/lambda)`,
/// which overflows as `lambda -> 0`.
fn pathway(p: f64, lambda: f64) -> (f64, f64) {
    let u = lambda.hypot(2.0 * p);
    let big = (0.5 * (u + lambda.abs())).sqrt();
    let small = if big > 0.0 { p / big } else { 0.0 };
    if lambda >= 0.0 {
        (big, small)
    } else {
        (small, big)
    }
}

/// Pathway products `(p+, p-) = (w+ v+, w- v-)` for `b = |beta_pt| >= 0`.
///
/// From THEORY §4 (any sign of `lambda`), with `k = |lambda|/c`,
/// `sigma = sqrt(1 - k^2)`, `h = sqrt(c^2 + b^2)`:
/// `p± = (sigma h ± b) / 2`. `p+` is a sum and is computed directly; `p-`
/// suffers cancellation when `b >> c` (tiny `c`), so it comes from the
/// product `p+ p- = (c - k h)(c + k h) / 4`, with `c ∓ k h` written as
/// `c (1 ∓ k) ∓ k (h - c)` and `h - c = b^2 / (h + c)` — every piece is a
/// sum of like-signed terms except the one genuine sign change of `p-`.
fn products(b: f64, c: f64, lambda: f64) -> (f64, f64) {
    let k = (lambda.abs() / c).min(1.0);
    if b == 0.0 {
        // beta_pt = 0: both pathways identical, beta = 0 exactly.
        let p = 0.5 * c * ((1.0 - k) * (1.0 + k)).sqrt();
        return (p, p);
    }
    if k == 1.0 {
        // |lambda| = c: sigma = 0, p± = ±b/2 exactly (for lambda = -c this
        // makes w+ + w- = 0 exactly, the degenerate saddle of §5).
        return (0.5 * b, -0.5 * b);
    }
    let sigma = ((1.0 - k) * (1.0 + k)).sqrt();
    let h = c.hypot(b);
    let t = b * (b / (h + c)); // h - c without cancellation
    let p_plus = 0.5 * (sigma * h + b);
    let p_minus = (c * (1.0 - k) - k * t) * (c * (1.0 + k) + k * t) / (4.0 * p_plus);
    (p_plus, p_minus)
}

/// The pretrained state of THEORY §4: the unique weights with
/// `beta = beta_pt` and conserved quantities `(c, lambda)` on every
/// coordinate, i.e. where gradient flow from [`symmetric_init`] ends when it
/// reaches `beta_pt` ("infinite" pretraining data).
///
/// The three cases of §4 (`lambda > 0`, `< 0`, `= 0`) are evaluated through
/// one cancellation-free route (see `products` and `pathway`), accurate for
/// tiny `c` (`1e-6`) with `beta_pt` up to `~1e3` and exactly odd in
/// `beta_pt` (a negative coefficient swaps the two pathways).
///
/// Errors: `c`, `lambda` invalid (as [`symmetric_init`]), empty or
/// non-finite `beta_pt`.
pub fn oracle_pretrained(beta_pt: &[f64], c: f64, lambda: f64) -> Result<Weights, DiagnetError> {
    check_d(beta_pt.len())?;
    ptft_theory::validate_init(c, lambda, 0.0)?;
    check_all_finite("beta_pt", beta_pt)?;
    let d = beta_pt.len();
    let mut wts = Weights {
        w_plus: vec![0.0; d],
        w_minus: vec![0.0; d],
        v_plus: vec![0.0; d],
        v_minus: vec![0.0; d],
    };
    for (i, &beta) in beta_pt.iter().enumerate() {
        let (p_big, p_small) = products(beta.abs(), c, lambda);
        let (w_a, v_a) = pathway(p_big, lambda);
        let (w_b, v_b) = pathway(p_small, lambda);
        if beta >= 0.0 {
            wts.w_plus[i] = w_a;
            wts.v_plus[i] = v_a;
            wts.w_minus[i] = w_b;
            wts.v_minus[i] = v_b;
        } else {
            wts.w_plus[i] = w_b;
            wts.v_plus[i] = v_b;
            wts.w_minus[i] = w_a;
            wts.v_minus[i] = v_a;
        }
    }
    Ok(wts)
}

/// Start of fine-tuning, THEORY §5: the first layer is rebalanced,
/// `w± = w+_pt + w-_pt`, and the readout is re-initialised,
/// `v± = gamma / sqrt(2)`, so `beta = 0` again. Returns the fine-tuning
/// initial weights and the per-coordinate fine-tuning scale
/// `c_ft_i = (w+_pt + w-_pt)^2 + gamma^2 / 2` (= their conserved `c_i`),
/// which is what the exact solver [`crate::dual::implicit_bias_solve`]
/// needs. Errors: `gamma` not finite `>= 0`, inconsistent or non-finite
/// weights.
pub fn reinit(pt: &Weights, gamma: f64) -> Result<(Weights, Vec<f64>), DiagnetError> {
    check_finite("gamma", gamma, "[0, inf)")?;
    if gamma < 0.0 {
        return Err(out_of_range("gamma", gamma, "[0, inf)"));
    }
    pt.validate(pt.len())?;
    let d = pt.len();
    let w: Vec<f64> = (0..d).map(|i| pt.w_plus[i] + pt.w_minus[i]).collect();
    let v = gamma / std::f64::consts::SQRT_2;
    let c_ft = w.iter().map(|wi| wi * wi + 0.5 * gamma * gamma).collect();
    Ok((
        Weights {
            w_plus: w.clone(),
            w_minus: w,
            v_plus: vec![v; d],
            v_minus: vec![v; d],
        },
        c_ft,
    ))
}
