//! Numerical settings shared by the replica-curve stages, and the table they
//! all produce. Kept in one place so both curve kinds hash, validate and
//! report identically.

use arrow::array::RecordBatch;
use ptft_engine::{Context, ParamError, StageError};
use ptft_theory::replica::{solve_curve, CurvePoint, Expectation, Group, SolverSettings};
use serde::{Deserialize, Serialize};

use crate::table::TableBuilder;

/// How expectations over the scalar channel are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Deterministic Gauss–Legendre quadrature over Z (exact to ~1e-6; default).
    Quadrature,
    /// The paper's Monte-Carlo estimate with `mc` samples from `seed`.
    MonteCarlo,
}

/// Largest Monte-Carlo sample: ~1.4 GB of sample state (see
/// [`MC_BYTES_PER_SAMPLE`]); the paper uses 80,000 samples.
pub const MAX_MC: usize = 20_000_000;

/// Memory per Monte-Carlo sample in the replica solver: the draw `x`, `v`,
/// the warm starts `u`, `du/dz` (4 f64) and the batch index (u32) = 36
/// bytes, held twice (the forward and backward continuation branches run in
/// parallel, each on its own copy).
pub const MC_BYTES_PER_SAMPLE: usize = 2 * (4 * 8 + 4);

/// Most quadrature nodes: far past the point where more nodes change the
/// result (256 give ~1e-6), and about 16 MB of solver state.
pub const MAX_QUAD_NODES: usize = 100_000;

/// Memory per quadrature node in the replica solver with the two-task
/// model's four groups: the node and weight, and each group's warm starts
/// `u`, `du/dz` (10 f64), held twice (forward and backward branches).
pub const QUAD_BYTES_PER_NODE: usize = 2 * (2 + 2 * 4) * 8;

/// Rarely-changed solver knobs (THEORY §9, "numerics of the paper's solver").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SolverParams {
    /// Relative tolerance on one fixed-point iteration's change.
    pub tol: f64,
    pub max_iter: usize,
    /// Damping of the fallback plain iteration.
    pub damping: f64,
    /// External ridge regulariser (reached by homotopy when below 1e-6).
    pub gamma_ext: f64,
    /// Forward/backward branch mismatch (dB) above which a point is flagged.
    pub mismatch_db_max: f64,
    /// Quadrature nodes on the half line (quadrature method).
    pub quad_nodes: usize,
    /// Batches for the batch-means standard error (Monte-Carlo method).
    pub mc_batches: usize,
}

impl Default for SolverParams {
    fn default() -> Self {
        let s = SolverSettings::default();
        SolverParams {
            tol: s.tol,
            max_iter: s.max_iter,
            damping: s.damping,
            gamma_ext: s.gamma_ext,
            mismatch_db_max: s.mismatch_db_max,
            quad_nodes: 256,
            mc_batches: 50,
        }
    }
}

/// Validates the shared numerics; field names are as the user writes them.
pub fn validate(method: Method, mc: usize, solver: &SolverParams) -> Result<(), ParamError> {
    let s = solver;
    if !(s.tol > 0.0 && s.tol <= 1e-2) {
        return Err(ParamError::range("solver.tol", s.tol, "(0, 0.01]"));
    }
    if s.max_iter == 0 || s.max_iter > 1_000_000 {
        return Err(ParamError::range(
            "solver.max_iter",
            s.max_iter,
            "[1, 1000000]",
        ));
    }
    if !(s.damping > 0.0 && s.damping <= 1.0) {
        return Err(ParamError::range("solver.damping", s.damping, "(0, 1]"));
    }
    if !(s.gamma_ext > 0.0 && s.gamma_ext <= 1.0) {
        return Err(ParamError::range("solver.gamma_ext", s.gamma_ext, "(0, 1]"));
    }
    if !(s.mismatch_db_max > 0.0 && s.mismatch_db_max.is_finite()) {
        return Err(ParamError::range(
            "solver.mismatch_db_max",
            s.mismatch_db_max,
            "(0, inf)",
        ));
    }
    if !(16..=MAX_QUAD_NODES).contains(&s.quad_nodes) {
        let mut e = ParamError::range(
            "solver.quad_nodes",
            s.quad_nodes,
            &format!("[16, {MAX_QUAD_NODES}]"),
        );
        if s.quad_nodes > MAX_QUAD_NODES {
            e.message.push_str(&format!(
                ": {} nodes would need about {} ({QUAD_BYTES_PER_NODE} bytes per node with four coordinate groups); the default 256 nodes are already accurate to about 1e-6",
                s.quad_nodes,
                crate::grid::human_bytes(s.quad_nodes as f64 * QUAD_BYTES_PER_NODE as f64)
            ));
        }
        return Err(e);
    }
    if method == Method::MonteCarlo {
        if mc > MAX_MC {
            let mut e =
                ParamError::range("mc", mc, &format!("[100, {MAX_MC}] (Monte-Carlo samples)"));
            e.message.push_str(&format!(
                ": {mc} samples would need about {} of sample state ({MC_BYTES_PER_SAMPLE} bytes each); use method \"quadrature\" (deterministic, no sampling error) for more accuracy",
                crate::grid::human_bytes(mc as f64 * MC_BYTES_PER_SAMPLE as f64)
            ));
            return Err(e);
        }
        if mc < 100 {
            return Err(ParamError::range(
                "mc",
                mc,
                &format!("[100, {MAX_MC}] (Monte-Carlo samples)"),
            ));
        }
        if s.mc_batches < 2 || s.mc_batches > mc / 2 {
            return Err(ParamError::range(
                "solver.mc_batches",
                s.mc_batches,
                "[2, mc/2]",
            ));
        }
    }
    Ok(())
}

pub fn expectation(
    method: Method,
    mc: usize,
    seed: u64,
    solver: &SolverParams,
    ctx: &mut Context,
) -> Expectation {
    match method {
        Method::Quadrature => Expectation::Quadrature {
            nodes: solver.quad_nodes,
        },
        Method::MonteCarlo => {
            ctx.record_seed("monte_carlo", seed);
            Expectation::MonteCarlo {
                samples: mc,
                seed,
                batches: solver.mc_batches,
            }
        }
    }
}

pub fn settings(solver: &SolverParams, noise_var: f64) -> SolverSettings {
    SolverSettings {
        tol: solver.tol,
        max_iter: solver.max_iter,
        damping: solver.damping,
        gamma_ext: solver.gamma_ext,
        noise_var,
        mismatch_db_max: solver.mismatch_db_max,
    }
}

/// Validates label-noise variance.
pub fn validate_noise(noise_var: f64) -> Result<(), ParamError> {
    if !(noise_var >= 0.0 && noise_var.is_finite()) {
        return Err(ParamError::range("noise_var", noise_var, "[0, inf)"));
    }
    Ok(())
}

/// Validates the alpha grid: non-empty, every value finite and > 0.
pub fn validate_alpha(alpha: &crate::grid::Values) -> Result<Vec<f64>, ParamError> {
    let a = alpha.expand("alpha")?;
    if let Some((i, v)) = a.iter().enumerate().find(|(_, v)| **v <= 0.0) {
        return Err(ParamError::new(
            "alpha",
            format!("alpha[{i}] = {v} is outside the valid range (0, inf): alpha = n/d is a sample ratio"),
        ));
    }
    Ok(a)
}

/// The replica-curve table: one row per alpha, with the diagnostics.
pub fn curve_table(points: &[CurvePoint], ctx: &mut Context) -> Result<RecordBatch, StageError> {
    let unreliable = points.iter().filter(|p| !p.reliable).count();
    ctx.note("unreliable_points", unreliable);
    ctx.note(
        "unconverged_points",
        points.iter().filter(|p| !p.converged).count(),
    );
    let col = |f: fn(&CurvePoint) -> f64| points.iter().map(f).collect::<Vec<f64>>();
    TableBuilder::new()
        .f64("alpha", col(|p| p.alpha))
        .f64("mse", col(|p| p.mse))
        .f64("mse_fwd", col(|p| p.mse_fwd))
        .f64("mse_bwd", col(|p| p.mse_bwd))
        .f64("mse_se", col(|p| p.mse_se))
        .f64("se_db", col(|p| p.se_db))
        .f64("diff_db", col(|p| p.diff_db))
        .f64("fp_residual", col(|p| p.fp_residual))
        .f64("active_frac", col(|p| p.active_frac))
        .f64("s2", col(|p| p.s2))
        .f64("g", col(|p| p.g))
        .u32("iterations", points.iter().map(|p| p.iterations))
        .bool("converged", points.iter().map(|p| p.converged))
        .bool("reliable", points.iter().map(|p| p.reliable))
        .build()
}

/// Numerics shared by the curve stages, as the user wrote them.
pub struct CurveNumerics<'a> {
    pub alpha: &'a crate::grid::Values,
    pub noise_var: f64,
    pub method: Method,
    pub mc: usize,
    pub seed: u64,
    pub solver: &'a SolverParams,
}

/// Solves the replica curve of `groups` over the alpha grid and returns the
/// curve table (the whole compute step of both curve stages).
pub fn solve_and_tabulate(
    groups: &[Group],
    n: CurveNumerics<'_>,
    ctx: &mut Context,
) -> Result<RecordBatch, StageError> {
    let alphas = n
        .alpha
        .expand("alpha")
        .map_err(|e| StageError::new(e.to_string()))?;
    let expectation = expectation(n.method, n.mc, n.seed, n.solver, ctx);
    let points = solve_curve(
        groups,
        &alphas,
        &expectation,
        &settings(n.solver, n.noise_var),
    )
    .map_err(|e| StageError::new(e.to_string()))?;
    curve_table(&points, ctx)
}
