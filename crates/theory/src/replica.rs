//! Replica theory of the fine-tuning generalisation error (THEORY §9,
//! Proposition 4.2): scalar groups, expectations, and the fixed-point solver.
//!
//! Data flow: a task ([`crate::task::TwoTask`]) and an initialisation
//! `(c, lambda, gamma)` become a list of [`Group`]s (probability, teacher
//! variance, `c_ft`). A [`MomentEvaluator`] turns a candidate `(S, g)` into
//! the moments `E[(X - X_hat)^2]`, `E[sigma2]` *and their analytic
//! derivatives*, either by deterministic quadrature (default) or by the
//! paper's Monte Carlo. [`solve_curve`] solves the fixed point
//! `S = beta (sigma0^2 + mse)`, `g = gamma_ext + beta E[sigma2]` by Newton in
//! log variables, with forward and backward continuation over the alpha grid.
//!
//! Why Newton with analytic Jacobians rather than the paper's damped
//! iteration: near the learning transition the damped map contracts very
//! slowly, and the fixed point amplifies moment errors ~100x, so a loose
//! tolerance there is visible in the curves. Newton reaches a 1e-10 relative
//! residual in a handful of evaluations everywhere.

use crate::error::{check_finite, out_of_range, TheoryError};
use crate::mapping::{c_ft, validate_init};
use crate::prox::prox_warm;
use crate::quadrature::composite;
use crate::task::TwoTask;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

/// A group of coordinates sharing one scalar problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Human-readable label ("overlap", "new", "pt_only", "none", "active", ...).
    pub name: &'static str,
    /// Probability that a random coordinate belongs to this group.
    pub prob: f64,
    /// Variance of the FT teacher coefficient `X ~ N(0, teacher_var)`;
    /// `0` means `X = 0` exactly.
    pub teacher_var: f64,
    /// Fine-tuning scale of the group's penalty `q(.; c_ft)`.
    pub c_ft: f64,
}

/// The four groups of the two-task model (THEORY §8) with their `c_ft`
/// (THEORY §5). PT-active groups (overlap, pt-only) have `beta_pt = a_pt`;
/// FT-active groups (overlap, new) have teacher variance `1/rho_ft` so that
/// `E[X^2] = 1`. Groups of probability zero are dropped.
pub fn two_task_groups(
    task: &TwoTask,
    c: f64,
    lambda: f64,
    gamma: f64,
) -> Result<Vec<Group>, TheoryError> {
    validate_init(c, lambda, gamma)?;
    let p = task.group_probs()?;
    let c_active = c_ft(task.a_pt, c, lambda, gamma);
    let c_inactive = c_ft(0.0, c, lambda, gamma);
    let var = 1.0 / task.rho_ft;
    let all = [
        Group {
            name: "overlap",
            prob: p.overlap,
            teacher_var: var,
            c_ft: c_active,
        },
        Group {
            name: "new",
            prob: p.new,
            teacher_var: var,
            c_ft: c_inactive,
        },
        Group {
            name: "pt_only",
            prob: p.pt_only,
            teacher_var: 0.0,
            c_ft: c_active,
        },
        Group {
            name: "none",
            prob: p.none,
            teacher_var: 0.0,
            c_ft: c_inactive,
        },
    ];
    Ok(all.into_iter().filter(|g| g.prob > 0.0).collect())
}

/// Single-task learning (Experiment 4): a Bernoulli-Gaussian teacher with
/// sparsity `rho` trained from the symmetric initialisation, so every
/// coordinate has scale `c` (`lambda` provably plays no role).
pub fn single_task_groups(rho: f64, c: f64) -> Result<Vec<Group>, TheoryError> {
    check_finite("rho", rho, "(0, 1]")?;
    if rho <= 0.0 || rho > 1.0 {
        return Err(out_of_range("rho", rho, "(0, 1]"));
    }
    check_finite("c", c, "(0, inf)")?;
    if c <= 0.0 {
        return Err(out_of_range("c", c, "(0, inf)"));
    }
    let all = [
        Group {
            name: "active",
            prob: rho,
            teacher_var: 1.0 / rho,
            c_ft: c,
        },
        Group {
            name: "inactive",
            prob: 1.0 - rho,
            teacher_var: 0.0,
            c_ft: c,
        },
    ];
    Ok(all.into_iter().filter(|g| g.prob > 0.0).collect())
}

/// How the expectations over `(X, V)` are computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Expectation {
    /// Composite Gauss–Legendre in the standardised `t = Z / sigma_Z` on
    /// `[0, 9]` (the integrands are even), `nodes` nodes in total in panels
    /// of 8 (`nodes` must be a positive multiple of 8). At 256 nodes this is
    /// exactly the discretisation of the reference curves (512 nodes on
    /// ±9); deterministic.
    Quadrature { nodes: usize },
    /// The paper's method: `samples` draws of (group, X, V) from ChaCha8
    /// seeded with `seed`; the standard error is estimated by batch means
    /// over `batches` contiguous batches of the draw order.
    MonteCarlo {
        samples: usize,
        seed: u64,
        batches: usize,
    },
}

impl Default for Expectation {
    fn default() -> Self {
        Expectation::Quadrature { nodes: 256 }
    }
}

impl Expectation {
    /// The paper's Monte-Carlo setting: 80,000 samples, seed 0, 50 batches.
    pub fn paper_monte_carlo() -> Self {
        Expectation::MonteCarlo {
            samples: 80_000,
            seed: 0,
            batches: 50,
        }
    }
}

/// Fixed-point solver settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolverSettings {
    /// Convergence: `max_i |F_i(x) - x_i| / x_i <= tol` for `x = (S, g)`.
    pub tol: f64,
    /// Newton iterations per (alpha, branch) before giving up (not an error:
    /// the point is reported with `converged = false`).
    pub max_iter: usize,
    /// Weight of the plain fixed-point step used when Newton's line search
    /// fails: `u <- (1 - damping) u + damping ln F(u)`.
    pub damping: f64,
    /// External ridge `gamma_ext`; values below 1e-6 are reached by homotopy.
    pub gamma_ext: f64,
    /// Label-noise variance `sigma0^2`.
    pub noise_var: f64,
    /// Forward/backward mismatch (dB) above which a point is unreliable.
    pub mismatch_db_max: f64,
}

impl Default for SolverSettings {
    fn default() -> Self {
        SolverSettings {
            tol: 1e-10,
            max_iter: 500,
            damping: 0.25,
            gamma_ext: 1e-6,
            noise_var: 0.0,
            mismatch_db_max: 0.5,
        }
    }
}

/// One point of a theory curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurvePoint {
    pub alpha: f64,
    /// Predicted generalisation error of the reported branch.
    pub mse: f64,
    /// MSE on the forward (ascending alpha) continuation branch.
    pub mse_fwd: f64,
    /// MSE on the backward (descending alpha) continuation branch.
    pub mse_bwd: f64,
    /// Monte-Carlo batch-means standard error of `mse` (0 for quadrature).
    pub mse_se: f64,
    /// `10 log10(1 + mse_se / mse)`.
    pub se_db: f64,
    /// `10 log10(mse_fwd / mse_bwd)`.
    pub diff_db: f64,
    /// `max_i |F_i(x) - x_i| / x_i` at the reported solution.
    pub fp_residual: f64,
    /// Fraction of coordinates with `|X_hat| > 1e-6`.
    pub active_frac: f64,
    /// `S = s^2` of the reported branch.
    pub s2: f64,
    /// `g` of the reported branch.
    pub g: f64,
    /// Newton iterations of the reported branch.
    pub iterations: u32,
    /// Whether the reported branch met `tol`.
    pub converged: bool,
    /// Both branches converged, they agree within `mismatch_db_max`, and the
    /// Monte-Carlo error is below 0.5 dB.
    pub reliable: bool,
}

/// Moments of the scalar problem at one `(S, g)`, with analytic derivatives.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Moments {
    /// `E[(X - X_hat)^2]`.
    pub mse: f64,
    /// `E[sigma2]`.
    pub e_sigma2: f64,
    pub dmse_ds: f64,
    pub dmse_dg: f64,
    pub dsigma2_ds: f64,
    pub dsigma2_dg: f64,
    /// Fraction of coordinates with `|X_hat| > 1e-6`.
    pub active_frac: f64,
    /// Batch-means standard error of `mse` (Monte Carlo only, else 0).
    pub mse_se: f64,
}

/// Warm start for one node/sample: the previous `u` moved to first order in
/// `(z, g)` using the stored `du/dz` (and `du/dg = -(u/2) du/dz`). This
/// leaves an error of second order in the change, so the prox usually needs
/// one or two Newton steps.
#[inline]
fn predict_u(u: f64, du_dz: f64, dz: f64, dg: f64) -> f64 {
    if u.is_finite() {
        u + du_dz * (dz - 0.5 * u * dg)
    } else {
        f64::INFINITY
    }
}

/// Per-group state of the quadrature evaluator.
#[derive(Debug, Clone)]
struct QuadGroup {
    prob: f64,
    var: f64,
    c: f64,
    /// Warm starts: each node's `u` and `du/dz` from the previous evaluation.
    u: Vec<f64>,
    du_dz: Vec<f64>,
    /// `sigma_Z` of the previous evaluation (0 before the first).
    sz_prev: f64,
}

#[derive(Debug, Clone)]
struct QuadState {
    /// Nodes `t_k` on `[0, 9]`.
    t: Vec<f64>,
    /// `2 w_k phi(t_k)`: the factor 2 folds the even integrand's mirror half.
    w: Vec<f64>,
    groups: Vec<QuadGroup>,
    /// `g` of the previous evaluation.
    g_prev: f64,
}

/// Samples of one group, struct-of-arrays, in draw order.
#[derive(Debug, Clone)]
struct McGroup {
    c: f64,
    x: Vec<f64>,
    v: Vec<f64>,
    batch: Vec<u32>,
    /// Warm starts: each sample's `u` and `du/dz` from the previous evaluation.
    u: Vec<f64>,
    du_dz: Vec<f64>,
}

#[derive(Debug, Clone)]
struct McState {
    n: usize,
    batch_count: Vec<f64>,
    groups: Vec<McGroup>,
    /// `(s, g)` of the previous evaluation (warm-start predictor).
    s_prev: f64,
    g_prev: f64,
}

#[derive(Debug, Clone)]
enum Kind {
    Quad(QuadState),
    Mc(McState),
}

/// Evaluates [`Moments`] at `(S, g)` for a fixed list of groups.
///
/// Stateful only through warm starts of the prox (each node/sample keeps its
/// last `u`), which change results by far less than the prox tolerance.
#[derive(Debug, Clone)]
pub struct MomentEvaluator {
    kind: Kind,
    second_moment: f64,
}

/// Fixed chunk size of the Monte-Carlo reduction. The partial sums are
/// collected per chunk in order and added sequentially, so the result does
/// not depend on how rayon schedules chunks onto threads.
const MC_CHUNK: usize = 4096;

/// Threshold defining an "active" coordinate (as in the paper's code).
const ACTIVE_EPS: f64 = 1e-6;

#[derive(Debug, Clone)]
struct Partial {
    sums: [f64; 6],
    active: u64,
    batch_err: Vec<f64>,
}

fn validate_groups(groups: &[Group]) -> Result<(), TheoryError> {
    if groups.is_empty() {
        return Err(TheoryError::Empty("groups"));
    }
    let mut sum = 0.0;
    for g in groups {
        check_finite("group prob", g.prob, "[0, 1]")?;
        if !(0.0..=1.0).contains(&g.prob) {
            return Err(out_of_range("group prob", g.prob, "[0, 1]"));
        }
        check_finite("teacher_var", g.teacher_var, "[0, inf)")?;
        if g.teacher_var < 0.0 {
            return Err(out_of_range("teacher_var", g.teacher_var, "[0, inf)"));
        }
        check_finite("c_ft", g.c_ft, "[0, inf)")?;
        if g.c_ft < 0.0 {
            return Err(out_of_range("c_ft", g.c_ft, "[0, inf)"));
        }
        sum += g.prob;
    }
    if (sum - 1.0).abs() > 1e-9 {
        return Err(TheoryError::ProbabilitiesDoNotSumToOne { sum });
    }
    Ok(())
}

impl MomentEvaluator {
    /// Build an evaluator: quadrature nodes, or the Monte-Carlo sample.
    pub fn new(groups: &[Group], expectation: &Expectation) -> Result<Self, TheoryError> {
        validate_groups(groups)?;
        let second_moment = groups.iter().map(|g| g.prob * g.teacher_var).sum();
        let kind = match *expectation {
            Expectation::Quadrature { nodes } => {
                if nodes < 8 || nodes % 8 != 0 {
                    return Err(out_of_range(
                        "quadrature nodes",
                        nodes as f64,
                        "a positive multiple of 8",
                    ));
                }
                // 8-node panels: the discretisation of the reference
                // (64 panels of 8 on [-9, 9] = 32 panels on [0, 9] at 256).
                let (t, w) = composite(0.0, 9.0, nodes / 8, 8);
                let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
                let w = t
                    .iter()
                    .zip(&w)
                    .map(|(t, w)| 2.0 * w * norm * (-0.5 * t * t).exp())
                    .collect();
                let groups = groups
                    .iter()
                    .filter(|g| g.prob > 0.0)
                    .map(|g| QuadGroup {
                        prob: g.prob,
                        var: g.teacher_var,
                        c: g.c_ft,
                        u: vec![f64::INFINITY; nodes],
                        du_dz: vec![0.0; nodes],
                        sz_prev: 0.0,
                    })
                    .collect();
                Kind::Quad(QuadState {
                    t,
                    w,
                    groups,
                    g_prev: 0.0,
                })
            }
            Expectation::MonteCarlo {
                samples,
                seed,
                batches,
            } => {
                if batches < 2 {
                    return Err(out_of_range("batches", batches as f64, "[2, samples]"));
                }
                if samples < batches || samples > u32::MAX as usize {
                    return Err(out_of_range(
                        "samples",
                        samples as f64,
                        "[batches, 2^32 - 1]",
                    ));
                }
                Kind::Mc(draw_samples(groups, samples, seed, batches))
            }
        };
        Ok(MomentEvaluator {
            kind,
            second_moment,
        })
    }

    /// `E[X^2]` of the teacher (exact, from the group list).
    pub fn second_moment(&self) -> f64 {
        self.second_moment
    }

    /// Moments and their derivatives at `(S, g)`; `S > 0`, `g > 0`.
    pub fn evaluate(&mut self, s2: f64, g: f64) -> Result<Moments, TheoryError> {
        check_finite("S", s2, "(0, inf)")?;
        check_finite("g", g, "(0, inf)")?;
        if s2 <= 0.0 {
            return Err(out_of_range("S", s2, "(0, inf)"));
        }
        if g <= 0.0 {
            return Err(out_of_range("g", g, "(0, inf)"));
        }
        let m = match &mut self.kind {
            Kind::Quad(q) => eval_quad(q, s2, g),
            Kind::Mc(mc) => eval_mc(mc, s2, g),
        };
        let all = [
            m.mse,
            m.e_sigma2,
            m.dmse_ds,
            m.dmse_dg,
            m.dsigma2_ds,
            m.dsigma2_dg,
            m.active_frac,
            m.mse_se,
        ];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(TheoryError::NonFinite(format!(
                "moments at S = {s2:e}, g = {g:e}: {m:?}"
            )));
        }
        Ok(m)
    }
}

fn draw_samples(groups: &[Group], samples: usize, seed: u64, batches: usize) -> McState {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Cumulative probabilities; the last positive-probability group catches
    // the rounding remainder so that no draw falls off the end.
    let mut cum = Vec::with_capacity(groups.len());
    let mut acc = 0.0;
    for g in groups {
        acc += g.prob;
        cum.push(acc);
    }
    let last_positive = groups.iter().rposition(|g| g.prob > 0.0).unwrap_or(0);
    let mut out: Vec<McGroup> = groups
        .iter()
        .map(|g| McGroup {
            c: g.c_ft,
            x: Vec::new(),
            v: Vec::new(),
            batch: Vec::new(),
            u: Vec::new(),
            du_dz: Vec::new(),
        })
        .collect();
    let sd: Vec<f64> = groups.iter().map(|g| g.teacher_var.sqrt()).collect();
    let mut batch_count = vec![0.0; batches];
    for i in 0..samples {
        // Always draw all three numbers so the stream layout is fixed.
        let uni: f64 = rng.random();
        let xn: f64 = StandardNormal.sample(&mut rng);
        let vn: f64 = StandardNormal.sample(&mut rng);
        let k = cum
            .iter()
            .position(|&c| uni < c)
            .unwrap_or(last_positive)
            .min(last_positive);
        let b = (i as u128 * batches as u128 / samples as u128) as u32;
        batch_count[b as usize] += 1.0;
        let grp = &mut out[k];
        grp.x.push(sd[k] * xn);
        grp.v.push(vn);
        grp.batch.push(b);
        grp.u.push(f64::INFINITY);
        grp.du_dz.push(0.0);
    }
    out.retain(|g| !g.x.is_empty());
    McState {
        n: samples,
        batch_count,
        groups: out,
        s_prev: 0.0,
        g_prev: 0.0,
    }
}

fn eval_quad(q: &mut QuadState, s2: f64, g: f64) -> Moments {
    let mut m = Moments::default();
    for grp in &mut q.groups {
        let var = grp.var;
        let sz2 = var + s2;
        let sz = sz2.sqrt();
        let mm = var / sz2;
        let dm_ds = -var / (sz2 * sz2);
        let dms_ds = s2 * dm_ds + mm; // d(m S)/dS
        let (mut err, mut sig, mut de_s, mut de_g, mut ds_s, mut ds_g) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (dsz, dg) = (sz - grp.sz_prev, g - q.g_prev);
        grp.sz_prev = sz;
        for (((&t, &w), u), du_dz) in
            q.t.iter()
                .zip(&q.w)
                .zip(grp.u.iter_mut())
                .zip(grp.du_dz.iter_mut())
        {
            let z = sz * t;
            let p = prox_warm(z, g, grp.c, predict_u(*u, *du_dz, dsz * t, dg));
            *u = p.u;
            *du_dz = p.du_dz;
            let dz_ds = t / (2.0 * sz);
            let resid = mm * z - p.x; // E[X|Z] - X_hat
            let dx_ds = p.dx_dz * dz_ds;
            let dmz_ds = z * dm_ds + mm * dz_ds;
            err += w * (mm * s2 + resid * resid);
            de_s += w * (dms_ds + 2.0 * resid * (dmz_ds - dx_ds));
            de_g += w * (-2.0 * resid * p.dx_dg);
            sig += w * p.sigma2;
            ds_s += w * p.dsigma2_dz * dz_ds;
            ds_g += w * p.dsigma2_dg;
        }
        let pr = grp.prob;
        m.mse += pr * err;
        m.e_sigma2 += pr * sig;
        m.dmse_ds += pr * de_s;
        m.dmse_dg += pr * de_g;
        m.dsigma2_ds += pr * ds_s;
        m.dsigma2_dg += pr * ds_g;
        if grp.c > 0.0 {
            // |X_hat| > eps  <=>  |Z| > prox^{-1}(eps) = eps + (g/2) asinh(eps/c):
            // exact, no integration needed.
            let zt = ACTIVE_EPS + 0.5 * g * crate::penalty::asinh_ratio(ACTIVE_EPS, grp.c);
            m.active_frac += pr * libm::erfc(zt / (std::f64::consts::SQRT_2 * sz));
        }
    }
    q.g_prev = g;
    m
}

fn eval_mc(mc: &mut McState, s2: f64, g: f64) -> Moments {
    let nb = mc.batch_count.len();
    let s = s2.sqrt();
    let inv_2s = 0.5 / s;
    let mut total = Partial {
        sums: [0.0; 6],
        active: 0,
        batch_err: vec![0.0; nb],
    };
    for grp in &mut mc.groups {
        let c = grp.c;
        let (xs, vs, bs) = (&grp.x, &grp.v, &grp.batch);
        let (ds, dg) = (s - mc.s_prev, g - mc.g_prev);
        let partials: Vec<Partial> = grp
            .u
            .par_chunks_mut(MC_CHUNK)
            .zip(grp.du_dz.par_chunks_mut(MC_CHUNK))
            .enumerate()
            .map(|(ci, (us, dus))| {
                let start = ci * MC_CHUNK;
                let end = start + us.len();
                let mut p = Partial {
                    sums: [0.0; 6],
                    active: 0,
                    batch_err: vec![0.0; nb],
                };
                for (((&x, &v), &b), u) in xs[start..end]
                    .iter()
                    .zip(&vs[start..end])
                    .zip(&bs[start..end])
                    .zip(us.iter_mut().zip(dus.iter_mut()))
                {
                    let (u, du_dz) = u;
                    let z = x + s * v;
                    let pr = prox_warm(z, g, c, predict_u(*u, *du_dz, ds * v, dg));
                    *u = pr.u;
                    *du_dz = pr.du_dz;
                    let dz_ds = v * inv_2s;
                    let e = x - pr.x;
                    let e2 = e * e;
                    p.sums[0] += e2;
                    p.sums[1] += pr.sigma2;
                    p.sums[2] += -2.0 * e * pr.dx_dz * dz_ds;
                    p.sums[3] += -2.0 * e * pr.dx_dg;
                    p.sums[4] += pr.dsigma2_dz * dz_ds;
                    p.sums[5] += pr.dsigma2_dg;
                    if pr.x.abs() > ACTIVE_EPS {
                        p.active += 1;
                    }
                    p.batch_err[b as usize] += e2;
                }
                p
            })
            .collect();
        // Sequential, ordered reduction: bit-identical for any thread count.
        for p in &partials {
            for k in 0..6 {
                total.sums[k] += p.sums[k];
            }
            total.active += p.active;
            for (t, b) in total.batch_err.iter_mut().zip(&p.batch_err) {
                *t += b;
            }
        }
    }
    mc.s_prev = s;
    mc.g_prev = g;
    let n = mc.n as f64;
    let means: Vec<f64> = total
        .batch_err
        .iter()
        .zip(&mc.batch_count)
        .map(|(s, c)| s / c)
        .collect();
    let nbf = nb as f64;
    let mean_of_means = means.iter().sum::<f64>() / nbf;
    let var = means
        .iter()
        .map(|m| (m - mean_of_means) * (m - mean_of_means))
        .sum::<f64>()
        / (nbf - 1.0);
    Moments {
        mse: total.sums[0] / n,
        e_sigma2: total.sums[1] / n,
        dmse_ds: total.sums[2] / n,
        dmse_dg: total.sums[3] / n,
        dsigma2_ds: total.sums[4] / n,
        dsigma2_dg: total.sums[5] / n,
        active_frac: total.active as f64 / n,
        mse_se: (var / nbf).sqrt(),
    }
}

// ---------------------------------------------------------------------------
// Fixed-point solver
// ---------------------------------------------------------------------------

const S_MIN: f64 = 1e-300;
const G_FLOOR: f64 = 1e-14;
const MAX_LOG_STEP: f64 = 3.0;

/// Solution of the fixed point at one alpha on one continuation branch.
#[derive(Debug, Clone)]
struct BranchPoint {
    s2: f64,
    g: f64,
    m: Moments,
    residual: f64,
    iterations: u32,
    converged: bool,
}

struct Problem<'a> {
    beta: f64,
    gamma_ext: f64,
    g_min: f64,
    settings: &'a SolverSettings,
}

impl Problem<'_> {
    /// The fixed-point map `F(S, g)`, clamped like the iterates.
    fn map(&self, m: &Moments) -> ([f64; 2], [bool; 2]) {
        let f0 = self.beta * (self.settings.noise_var + m.mse);
        let f1 = self.gamma_ext + self.beta * m.e_sigma2;
        (
            [f0.max(S_MIN), f1.max(self.g_min)],
            [f0 < S_MIN, f1 < self.g_min],
        )
    }

    fn clamp(&self, x: [f64; 2]) -> [f64; 2] {
        [
            x[0].clamp(S_MIN, f64::MAX),
            x[1].clamp(self.g_min, f64::MAX),
        ]
    }
}

fn rel_residual(x: [f64; 2], f: [f64; 2]) -> f64 {
    ((f[0] - x[0]).abs() / x[0]).max((f[1] - x[1]).abs() / x[1])
}

fn log_residual(x: [f64; 2], f: [f64; 2]) -> [f64; 2] {
    [f[0].ln() - x[0].ln(), f[1].ln() - x[1].ln()]
}

fn norm(v: [f64; 2]) -> f64 {
    v[0].hypot(v[1])
}

/// Newton on `G(u) = ln F(e^u) - u`, `u = (ln S, ln g)`, with backtracking on
/// `||G||` and a damped plain step as the fallback.
///
/// `known` may carry moments already evaluated at `guess` (the previous
/// alpha's solution: the moments depend on `(S, g)` only, not on alpha or
/// `gamma_ext`), which saves one full evaluation per continuation step —
/// the first Newton step from there is then an exact first-order predictor.
fn solve_point(
    ev: &mut MomentEvaluator,
    prob: &Problem,
    guess: [f64; 2],
    known: Option<Moments>,
) -> Result<BranchPoint, TheoryError> {
    let settings = prob.settings;
    let mut x = prob.clamp(guess);
    let mut m = match known {
        Some(m) if x == guess => m,
        _ => ev.evaluate(x[0], x[1])?,
    };
    let mut iterations = 0u32;
    loop {
        let (f, clamped) = prob.map(&m);
        let residual = rel_residual(x, f);
        if residual <= settings.tol || iterations as usize >= settings.max_iter {
            return Ok(BranchPoint {
                s2: x[0],
                g: x[1],
                m,
                residual,
                iterations,
                converged: residual <= settings.tol,
            });
        }
        iterations += 1;
        let gvec = log_residual(x, f);
        let gnorm = norm(gvec);
        // dG_i/du_j = x_j (dF_i/dx_j) / F_i - delta_ij (zero where clamped).
        let b = prob.beta;
        let (r0, r1) = (
            if clamped[0] { 0.0 } else { 1.0 },
            if clamped[1] { 0.0 } else { 1.0 },
        );
        let j00 = r0 * x[0] * b * m.dmse_ds / f[0] - 1.0;
        let j01 = r0 * x[1] * b * m.dmse_dg / f[0];
        let j10 = r1 * x[0] * b * m.dsigma2_ds / f[1];
        let j11 = r1 * x[1] * b * m.dsigma2_dg / f[1] - 1.0;
        let det = j00 * j11 - j01 * j10;
        let mut accepted = false;
        if det.is_finite() && det.abs() > 1e-300 {
            let du = [
                -(j11 * gvec[0] - j01 * gvec[1]) / det,
                -(-j10 * gvec[0] + j00 * gvec[1]) / det,
            ];
            if du[0].is_finite() && du[1].is_finite() {
                // Cap the log-step at 3 (a factor of 20 in S or g): far from
                // the solution the linearisation means little, and a capped
                // step cannot run off to overflow. A step that had to be
                // capped comes from a nearly singular Jacobian (a fold-like
                // stretch of the map, e.g. the rich regime's backward start);
                // Newton can then zig-zag between two far-apart points with a
                // sliver of decrease each time, so such a step must at least
                // halve ||G||, else we fall back to the damped plain step.
                let mut t = (MAX_LOG_STEP / du[0].abs().max(du[1].abs())).min(1.0);
                let capped = t < 1.0;
                for _ in 0..9 {
                    let trial =
                        prob.clamp([(x[0].ln() + t * du[0]).exp(), (x[1].ln() + t * du[1]).exp()]);
                    // A trial whose moments are not finite is simply rejected.
                    let Ok(mt) = ev.evaluate(trial[0], trial[1]) else {
                        t *= 0.5;
                        continue;
                    };
                    let (ft, _) = prob.map(&mt);
                    let required = if capped { 0.5 } else { 1.0 - 1e-4 * t };
                    if norm(log_residual(trial, ft)) < required * gnorm {
                        x = trial;
                        m = mt;
                        accepted = true;
                        break;
                    }
                    t *= 0.5;
                }
            }
        }
        if !accepted {
            let d = settings.damping;
            x = prob.clamp([
                ((1.0 - d) * x[0].ln() + d * f[0].ln()).exp(),
                ((1.0 - d) * x[1].ln() + d * f[1].ln()).exp(),
            ]);
            m = ev.evaluate(x[0], x[1])?;
        }
    }
}

/// The `g` consistent with a given `S`: the root in `ln g` of
/// `ln(gamma_ext + beta E[sigma2](S, g)) - ln g`, by bisection to 1% (it is
/// only a starting point). Used for the backward branch's first point, where
/// the textbook start "small g" lies, in the lazy regime, on a plateau where
/// `F(S, g) ~ (beta S, beta g)` and Newton has nothing to work with.
/// `sigma2 <= g` makes the function positive at small `g` when `beta > 1`
/// and negative at large `g`, so the bracket search terminates.
fn consistent_g(ev: &mut MomentEvaluator, prob: &Problem, s2: f64) -> Result<f64, TheoryError> {
    let h = |ev: &mut MomentEvaluator, g: f64| -> Result<f64, TheoryError> {
        let m = ev.evaluate(s2, g)?;
        let (f, _) = prob.map(&m);
        Ok(f[1].ln() - g.ln())
    };
    let mut lo = prob.g_min;
    if h(ev, lo)? <= 0.0 {
        return Ok(lo);
    }
    let mut hi = lo.max(1e-3);
    let mut tries = 0;
    while h(ev, hi)? > 0.0 {
        lo = hi;
        hi *= 100.0;
        tries += 1;
        if tries > 30 {
            return Ok(hi);
        }
    }
    while (hi / lo).ln() > 0.01 {
        let mid = (lo * hi).sqrt();
        if h(ev, mid)? > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok((lo * hi).sqrt())
}

/// The ridge values visited at the first point of a branch: 1e-6, 1e-7, ...
/// down to the target (homotopy), or just the target when it is >= 1e-6.
fn gamma_path(target: f64) -> Vec<f64> {
    let mut path = Vec::new();
    if target < 1e-6 {
        let mut ge = 1e-6;
        while ge > target && ge >= G_FLOOR {
            path.push(ge);
            ge /= 10.0;
        }
    }
    path.push(target);
    path
}

/// Where a continuation branch starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// "Nothing learned": `S = beta (sigma0^2 + E[X^2])`, `g = gamma_ext + beta`.
    Forward,
    /// "Almost everything learned": `S = beta sigma0^2 + 1e-6 beta E[X^2]`
    /// and the `g` consistent with that `S` (see [`consistent_g`]).
    Backward,
}

/// Continuation along `order` (indices into `alphas`), warm-starting each
/// alpha from the previous solution. The first alpha walks `gamma_ext` down
/// from 1e-6 when the target is smaller (homotopy, as in the paper).
fn solve_branch(
    mut ev: MomentEvaluator,
    alphas: &[f64],
    order: &[usize],
    start: Start,
    settings: &SolverSettings,
) -> Result<Vec<BranchPoint>, TheoryError> {
    let ex2 = ev.second_moment();
    let noise = settings.noise_var;
    let mut out: Vec<Option<BranchPoint>> = vec![None; alphas.len()];
    // The previous alpha's solution and its moments: the next alpha starts
    // there without re-evaluating (moments do not depend on alpha).
    let mut prev: Option<([f64; 2], Moments)> = None;
    for &i in order {
        let alpha = alphas[i];
        let beta = 1.0 / alpha;
        let gammas = if prev.is_none() {
            gamma_path(settings.gamma_ext)
        } else {
            vec![settings.gamma_ext]
        };
        let mut point: Option<BranchPoint> = None;
        for &ge in &gammas {
            let prob = Problem {
                beta,
                gamma_ext: ge,
                g_min: ge.max(G_FLOOR),
                settings,
            };
            let p = match (&prev, start) {
                (Some((x, m)), _) => solve_point(&mut ev, &prob, *x, Some(*m))?,
                (None, Start::Forward) => {
                    solve_point(&mut ev, &prob, [beta * (noise + ex2), ge + beta], None)?
                }
                (None, Start::Backward) => {
                    let s0 = (beta * noise + 1e-6 * beta * ex2).max(S_MIN);
                    let g0 = consistent_g(&mut ev, &prob, s0)?;
                    solve_point(&mut ev, &prob, [s0, g0], None)?
                }
            };
            prev = Some(([p.s2, p.g], p.m));
            point = Some(p);
        }
        out[i] = point;
    }
    out.into_iter()
        .map(|p| p.ok_or_else(|| TheoryError::Undefined("alpha left unsolved".into())))
        .collect()
}

/// Solve the replica fixed point on a grid of `alphas` (any order, each
/// finite and > 0) and return one [`CurvePoint`] per alpha, in input order.
///
/// Forward (ascending alpha, starting from the "nothing learned" guess
/// `S = beta (sigma0^2 + E[X^2])`) and backward (descending, starting from
/// the "almost everything learned" guess) continuations run in parallel; the
/// branch with the smaller MSE is reported (a converged branch is preferred
/// over an unconverged one). Non-convergence is reported through
/// `converged`/`reliable`, not as an error.
pub fn solve_curve(
    groups: &[Group],
    alphas: &[f64],
    expectation: &Expectation,
    settings: &SolverSettings,
) -> Result<Vec<CurvePoint>, TheoryError> {
    validate_settings(settings)?;
    if alphas.is_empty() {
        return Err(TheoryError::Empty("alpha grid"));
    }
    for &a in alphas {
        check_finite("alpha", a, "(0, inf)")?;
        if a <= 0.0 {
            return Err(out_of_range("alpha", a, "(0, inf)"));
        }
    }
    let ev = MomentEvaluator::new(groups, expectation)?;
    let mut ascending: Vec<usize> = (0..alphas.len()).collect();
    ascending.sort_by(|&a, &b| alphas[a].total_cmp(&alphas[b]));
    let descending: Vec<usize> = ascending.iter().rev().copied().collect();

    let ev_bwd = ev.clone();
    let (fwd, bwd) = rayon::join(
        || solve_branch(ev, alphas, &ascending, Start::Forward, settings),
        || solve_branch(ev_bwd, alphas, &descending, Start::Backward, settings),
    );
    let (fwd, bwd) = (fwd?, bwd?);

    let mut out = Vec::with_capacity(alphas.len());
    for (i, &alpha) in alphas.iter().enumerate() {
        let (f, b) = (&fwd[i], &bwd[i]);
        let pick_bwd = match (f.converged, b.converged) {
            (true, false) => false,
            (false, true) => true,
            _ => b.m.mse < f.m.mse,
        };
        let p = if pick_bwd { b } else { f };
        let mse = p.m.mse;
        let diff_db = 10.0 * (f.m.mse.max(1e-300) / b.m.mse.max(1e-300)).log10();
        let se_db = if mse > 0.0 {
            10.0 * (1.0 + p.m.mse_se / mse).log10()
        } else {
            0.0
        };
        let point = CurvePoint {
            alpha,
            mse,
            mse_fwd: f.m.mse,
            mse_bwd: b.m.mse,
            mse_se: p.m.mse_se,
            se_db,
            diff_db,
            fp_residual: p.residual,
            active_frac: p.m.active_frac,
            s2: p.s2,
            g: p.g,
            iterations: p.iterations,
            converged: p.converged,
            reliable: f.converged
                && b.converged
                && diff_db.abs() <= settings.mismatch_db_max
                && se_db <= 0.5,
        };
        let values = [
            point.mse,
            point.mse_fwd,
            point.mse_bwd,
            point.mse_se,
            point.se_db,
            point.diff_db,
            point.fp_residual,
            point.active_frac,
            point.s2,
            point.g,
        ];
        if values.iter().any(|v| !v.is_finite()) {
            return Err(TheoryError::NonFinite(format!("curve point {point:?}")));
        }
        out.push(point);
    }
    Ok(out)
}

fn validate_settings(s: &SolverSettings) -> Result<(), TheoryError> {
    check_finite("tol", s.tol, "(0, 1)")?;
    if s.tol <= 0.0 || s.tol >= 1.0 {
        return Err(out_of_range("tol", s.tol, "(0, 1)"));
    }
    if s.max_iter == 0 {
        return Err(out_of_range("max_iter", 0.0, "[1, inf)"));
    }
    check_finite("damping", s.damping, "(0, 1]")?;
    if s.damping <= 0.0 || s.damping > 1.0 {
        return Err(out_of_range("damping", s.damping, "(0, 1]"));
    }
    check_finite("gamma_ext", s.gamma_ext, "[0, inf)")?;
    if s.gamma_ext < 0.0 {
        return Err(out_of_range("gamma_ext", s.gamma_ext, "[0, inf)"));
    }
    check_finite("noise_var", s.noise_var, "[0, inf)")?;
    if s.noise_var < 0.0 {
        return Err(out_of_range("noise_var", s.noise_var, "[0, inf)"));
    }
    check_finite("mismatch_db_max", s.mismatch_db_max, "[0, inf)")?;
    if s.mismatch_db_max < 0.0 {
        return Err(out_of_range(
            "mismatch_db_max",
            s.mismatch_db_max,
            "[0, inf)",
        ));
    }
    Ok(())
}
