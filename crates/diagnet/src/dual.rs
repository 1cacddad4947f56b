//! The exact implicit bias of gradient flow (THEORY §3, §6), by Newton's
//! method on the dual.
//!
//! Gradient flow from a symmetric, zero-output state with per-coordinate
//! scales `c_i` converges to the interpolator minimising `sum_i q(beta_i;
//! c_i)`. Stationarity gives `beta_i(mu) = c_i sinh((X^T mu)_i)` for a
//! multiplier `mu` in `R^n`, and `mu` minimises the smooth convex dual
//! `Phi(mu) = sum_i c_i cosh((X^T mu)_i) - mu . y`, whose gradient is the
//! residual `X beta(mu) - y` and whose Hessian `X diag(c_i cosh(s_i)) X^T`
//! is symmetric positive definite. We run damped Newton from `mu = 0`:
//! an `n x n` Cholesky per iteration (faer) and a backtracking line search
//! on `Phi`. This gives the exact limit that trained networks are checked
//! against, in milliseconds at small `d` and seconds at `d = 5000`.
//!
//! Numerics:
//! * For tiny `c_i` the first Newton steps are huge (the Hessian is `~c`),
//!   so `cosh` overflows along the line; such trial points give `Phi = inf`
//!   and are rejected by the line search, which therefore caps the step.
//!   `c sinh(s)`, `c cosh(s)` switch to `exp(ln c + |s| - ln 2)` for
//!   `|s| > 700`, so finite products are never lost to an infinite factor.
//! * The Armijo test uses `Phi(mu + t dmu) - Phi(mu)` computed termwise as
//!   `2 c_i sinh(s_i + t ds_i / 2) sinh(t ds_i / 2) - t dmu . y`, which has
//!   no cancellation between large totals, so the line search keeps working
//!   to full precision near the solution.
//! * `c_i = 0` coordinates (the degenerate saddle of §5) contribute
//!   `beta_i = 0` and drop out of the Hessian.

use crate::data::dot;
use crate::error::{
    check_all_finite, check_finite, check_len, check_nd, checked_size, out_of_range, DiagnetError,
};
use crate::kernels::{matvec, vecmat};
use faer::linalg::matmul::triangular::{matmul as tri_matmul, BlockStructure};
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Par, Side};
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

/// Solution of the implicit-bias problem.
#[derive(Debug, Clone, Serialize)]
pub struct DualSolution {
    /// The minimum-`sum q(.; c_i)` interpolator.
    pub beta: Vec<f64>,
    /// Newton iterations taken.
    pub iterations: u32,
    /// `||X beta - y|| / ||y||` at `beta`.
    pub residual: f64,
    /// Wall time.
    pub seconds: f64,
    /// The dual multiplier: `beta_i = c_i sinh((X^T mu)_i)` (an addition to
    /// the first API sketch; handy for KKT checks).
    pub mu: Vec<f64>,
}

/// Overflow switch for `sinh`/`cosh` (`cosh(710)` overflows).
const EXP_SWITCH: f64 = 700.0;

/// `c sinh(s)` for `c >= 0`, `+-inf` only if the true value overflows.
fn c_sinh(c: f64, s: f64) -> f64 {
    if c == 0.0 {
        0.0
    } else if s.abs() <= EXP_SWITCH {
        c * s.sinh()
    } else {
        (c.ln() + s.abs() - std::f64::consts::LN_2)
            .exp()
            .copysign(s)
    }
}

/// `c cosh(s)` for `c >= 0`, `+inf` only if the true value overflows.
fn c_cosh(c: f64, s: f64) -> f64 {
    if c == 0.0 {
        0.0
    } else if s.abs() <= EXP_SWITCH {
        c * s.cosh()
    } else {
        (c.ln() + s.abs() - std::f64::consts::LN_2).exp()
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// Solve `min sum_i q(beta_i; c_ft_i)` s.t. `X beta = y` (THEORY §3/§6) by
/// damped dual Newton from `mu = 0`; stops when `||X beta - y|| / ||y|| <=
/// tol` (e.g. `1e-10`). `x` is row-major `n x d`; `c_ft_i >= 0` (zeros
/// allowed: those coordinates stay at 0).
///
/// Errors: shapes, non-finite inputs, `c_ft_i < 0`, `tol` not in `(0, 1)`,
/// `max_iter = 0`, and [`DiagnetError::NotConverged`] (with the achieved
/// residual) if the tolerance is not met, e.g. because fewer than `n`
/// coordinates have `c_ft_i > 0` so that no interpolator exists.
pub fn implicit_bias_solve(
    x: &[f64],
    y: &[f64],
    n: usize,
    d: usize,
    c_ft: &[f64],
    tol: f64,
    max_iter: u32,
) -> Result<DualSolution, DiagnetError> {
    let start = Instant::now();
    check_nd(n, d)?;
    check_len("x", x.len(), checked_size(n, d)?)?;
    check_len("y", y.len(), n)?;
    check_len("c_ft", c_ft.len(), d)?;
    check_all_finite("x", x)?;
    check_all_finite("y", y)?;
    check_all_finite("c_ft", c_ft)?;
    if let Some(i) = c_ft.iter().position(|&c| c < 0.0) {
        return Err(out_of_range("c_ft[i]", c_ft[i], "[0, inf) (a scale)"));
    }
    check_finite("tol", tol, "(0, 1)")?;
    if tol <= 0.0 || tol >= 1.0 {
        return Err(out_of_range("tol", tol, "(0, 1)"));
    }
    if max_iter == 0 {
        return Err(DiagnetError::InvalidSize {
            name: "max_iter",
            value: 0,
            reason: "must be at least 1".into(),
        });
    }

    let ny = norm(y);
    if ny == 0.0 {
        return Ok(DualSolution {
            beta: vec![0.0; d],
            iterations: 0,
            residual: 0.0,
            seconds: start.elapsed().as_secs_f64(),
            mu: vec![0.0; n],
        });
    }

    let mut mu = vec![0.0; n];
    let mut s = vec![0.0; d];
    let mut beta = vec![0.0; d];
    let mut resid = vec![0.0; n];
    let mut ds = vec![0.0; d];
    let mut scaled = vec![0.0; n * d];
    let mut trial = vec![0.0; d];

    let update_beta = |s: &[f64], beta: &mut [f64]| {
        beta.par_iter_mut()
            .zip(s.par_iter().zip(c_ft.par_iter()))
            .for_each(|(b, (&si, &ci))| *b = c_sinh(ci, si));
    };
    let residual = |beta: &[f64], resid: &mut [f64]| -> f64 {
        matvec(x, n, d, beta, resid);
        for (r, yi) in resid.iter_mut().zip(y) {
            *r -= yi;
        }
        norm(resid) / ny
    };

    update_beta(&s, &mut beta);
    let mut res = residual(&beta, &mut resid);
    let mut iterations = 0u32;
    while res > tol {
        if iterations >= max_iter {
            return Err(DiagnetError::NotConverged {
                iterations,
                residual: res,
                tol,
                detail: "max_iter reached; raise max_iter".into(),
            });
        }
        iterations += 1;

        // Hessian J = X diag(D) X^T with D_i = c_i cosh(s_i): scale the
        // columns of X by sqrt(D_i), then J = M M^T (lower half only).
        let sqrt_d: Vec<f64> = s
            .iter()
            .zip(c_ft)
            .map(|(&si, &ci)| c_cosh(ci, si).sqrt())
            .collect();
        if let Some(i) = sqrt_d.iter().position(|v| !v.is_finite()) {
            return Err(DiagnetError::NotConverged {
                iterations,
                residual: res,
                tol,
                detail: format!("Hessian weight c_i cosh(s_i) overflowed at coordinate {i}"),
            });
        }
        scaled
            .par_chunks_mut(d)
            .zip(x.par_chunks(d))
            .for_each(|(m, row)| {
                for ((mv, xv), sv) in m.iter_mut().zip(row).zip(&sqrt_d) {
                    *mv = xv * sv;
                }
            });
        let mref = MatRef::from_row_major_slice(&scaled, n, d);
        let mut jac = Mat::<f64>::zeros(n, n);
        tri_matmul(
            jac.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            mref,
            BlockStructure::Rectangular,
            mref.transpose(),
            BlockStructure::Rectangular,
            1.0,
            Par::rayon(0),
        );
        // Newton direction dmu = -J^{-1} F. If J is numerically singular
        // (e.g. fewer than n coordinates with c_i > 0) add a growing ridge;
        // the direction stays a descent direction for Phi.
        let max_diag = (0..n).map(|i| jac[(i, i)]).fold(0.0f64, f64::max);
        let mut ridge = 0.0;
        let llt = loop {
            if ridge > 0.0 {
                for i in 0..n {
                    jac[(i, i)] += ridge;
                }
            }
            match jac.llt(Side::Lower) {
                Ok(l) => break l,
                Err(_) => {
                    if ridge > 1e-4 * max_diag || max_diag == 0.0 {
                        return Err(DiagnetError::NotConverged {
                            iterations,
                            residual: res,
                            tol,
                            detail: "the Newton system X diag(c_i cosh s_i) X^T is singular: fewer than n \
                                     coordinates with c_i > 0 can interpolate the data"
                                .into(),
                        });
                    }
                    // Undo the previous ridge before adding the larger one.
                    if ridge > 0.0 {
                        for i in 0..n {
                            jac[(i, i)] -= ridge;
                        }
                    }
                    ridge = if ridge == 0.0 {
                        1e-14 * max_diag
                    } else {
                        ridge * 100.0
                    };
                }
            }
        };
        let mut dmu = Mat::<f64>::from_fn(n, 1, |i, _| -resid[i]);
        llt.solve_in_place(dmu.as_mut());
        let dmu: Vec<f64> = (0..n).map(|i| dmu[(i, 0)]).collect();
        if dmu.iter().any(|v| !v.is_finite()) {
            return Err(DiagnetError::NotConverged {
                iterations,
                residual: res,
                tol,
                detail: "non-finite Newton direction".into(),
            });
        }
        vecmat(x, n, d, &dmu, &mut ds);
        // Directional derivative of Phi: F . dmu = -F^T J^{-1} F < 0.
        let slope = dot(&resid, &dmu);
        let dmu_y = dot(&dmu, y);

        // Backtracking line search on Phi (Armijo, c1 = 1e-4); see module
        // docs for the cancellation-free difference.
        let mut t = 1.0f64;
        let mut accepted = false;
        for _ in 0..80 {
            let dphi: f64 = s
                .par_iter()
                .zip(ds.par_iter().zip(c_ft.par_iter()))
                .map(|(&si, (&dsi, &ci))| {
                    let h = 0.5 * t * dsi;
                    2.0 * c_sinh(ci, si + h) * h.sinh()
                })
                .sum::<f64>()
                - t * dmu_y;
            if dphi.is_finite() && dphi <= 1e-4 * t * slope {
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            // Rounding floor: Phi no longer resolves the decrease. Accept the
            // full step only if it still reduces the residual.
            for ((tr, &si), &dsi) in trial.iter_mut().zip(&s).zip(&ds) {
                *tr = si + dsi;
            }
            let mut tb = vec![0.0; d];
            update_beta(&trial, &mut tb);
            let mut tr_res = vec![0.0; n];
            let r1 = residual(&tb, &mut tr_res);
            if r1.is_finite() && r1 < res {
                t = 1.0;
            } else {
                return Err(DiagnetError::NotConverged {
                    iterations,
                    residual: res,
                    tol,
                    detail: "line search found no decrease (tolerance below the rounding floor?)"
                        .into(),
                });
            }
        }
        for (m, dm) in mu.iter_mut().zip(&dmu) {
            *m += t * dm;
        }
        // Recompute s from mu (no accumulated drift from s += t ds).
        vecmat(x, n, d, &mu, &mut s);
        update_beta(&s, &mut beta);
        res = residual(&beta, &mut resid);
        if !res.is_finite() {
            return Err(DiagnetError::NonFinite(format!(
                "dual Newton residual became non-finite at iteration {iterations}"
            )));
        }
    }
    Ok(DualSolution {
        beta,
        iterations,
        residual: res,
        seconds: start.elapsed().as_secs_f64(),
        mu,
    })
}
