//! `replica_curve`: the replica-theory generalisation error of fine-tuning
//! versus the sample ratio alpha, for one two-task configuration
//! (THEORY §8–9, Proposition 4.2).
//!
//! Parameters describe the task (rho_pt, rho_ft, omega, a_pt), the
//! initialisation (c, lambda, gamma), the alpha grid, and the numerics. The
//! output has one row per alpha with the MSE, both continuation branches,
//! and the solver diagnostics.

use arrow::array::RecordBatch;
use ptft_engine::{
    check_finite, Context, Inputs, ParamError, Resources, Stage, StageError, Validate,
};
use ptft_theory::{two_task_groups, validate_init, TwoTask};
use serde::{Deserialize, Serialize};

use crate::grid::Values;
use crate::solver::{self, Method, SolverParams};

pub struct ReplicaCurve;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicaCurveParams {
    /// Fraction of coordinates active in pretraining.
    pub rho_pt: f64,
    /// Fraction of coordinates active in fine-tuning.
    pub rho_ft: f64,
    /// Fraction of FT-active coordinates that were PT-active.
    pub omega: f64,
    /// Pretraining teacher amplitude.
    pub a_pt: f64,
    /// Absolute scale of the initialisation (> 0).
    pub c: f64,
    /// Relative scale, in [-c, c].
    pub lambda: f64,
    /// Readout re-initialisation scale (>= 0).
    pub gamma: f64,
    /// Sample ratios n/d.
    pub alpha: Values,
    /// Label-noise variance sigma0^2.
    pub noise_var: f64,
    pub method: Method,
    /// Monte-Carlo samples (method = monte_carlo).
    pub mc: usize,
    /// Monte-Carlo seed (method = monte_carlo).
    pub seed: u64,
    pub solver: SolverParams,
}

impl Default for ReplicaCurveParams {
    /// The Experiment 1 baseline of the paper (THEORY §10).
    fn default() -> Self {
        ReplicaCurveParams {
            rho_pt: 0.1,
            rho_ft: 0.1,
            omega: 0.5,
            a_pt: 1.0,
            c: 1e-3,
            lambda: 0.0,
            gamma: 0.0,
            alpha: Values::linspace(0.01, 0.5, 80),
            noise_var: 0.0,
            method: Method::Quadrature,
            mc: 80_000,
            seed: 0,
            solver: SolverParams::default(),
        }
    }
}

/// Checks c, lambda and gamma with the valid ranges spelled out.
pub fn validate_scales(c: f64, lambda: f64, gamma: f64) -> Result<(), ParamError> {
    check_finite("c", c)?;
    check_finite("lambda", lambda)?;
    check_finite("gamma", gamma)?;
    if c <= 0.0 {
        return Err(ParamError::range(
            "c",
            c,
            "(0, inf): c is the absolute scale of the initialisation",
        ));
    }
    if lambda.abs() > c {
        return Err(ParamError::range(
            "lambda",
            lambda,
            &format!("[-c, c] = [{}, {c}]", -c),
        ));
    }
    if gamma < 0.0 {
        return Err(ParamError::range("gamma", gamma, "[0, inf)"));
    }
    // The theory crate has the final word (same rules, its own message).
    validate_init(c, lambda, gamma).map_err(|e| ParamError::new("c", e.to_string()))
}

impl Validate for ReplicaCurveParams {
    fn validate(&self) -> Result<(), ParamError> {
        for (name, v) in [("rho_pt", self.rho_pt), ("rho_ft", self.rho_ft)] {
            check_finite(name, v)?;
            if !(v > 0.0 && v < 1.0) {
                return Err(ParamError::range(name, v, "(0, 1)"));
            }
        }
        check_finite("omega", self.omega)?;
        if !(0.0..=1.0).contains(&self.omega) {
            return Err(ParamError::range("omega", self.omega, "[0, 1]"));
        }
        check_finite("a_pt", self.a_pt)?;
        self.task()
            .group_probs()
            .map_err(|e| ParamError::new("rho_pt, rho_ft, omega", e.to_string()))?;
        validate_scales(self.c, self.lambda, self.gamma)?;
        solver::validate_alpha(&self.alpha)?;
        solver::validate_noise(self.noise_var)?;
        solver::validate(self.method, self.mc, &self.solver)
    }
}

impl ReplicaCurveParams {
    fn task(&self) -> TwoTask {
        TwoTask {
            rho_pt: self.rho_pt,
            rho_ft: self.rho_ft,
            omega: self.omega,
            a_pt: self.a_pt,
        }
    }
}

impl Stage for ReplicaCurve {
    const KIND: &'static str = "replica_curve";
    const VERSION: u32 = 1;
    // Forward and backward continuation run in parallel.
    const RESOURCES: Resources = Resources {
        cpus: 2,
        mem_mb: 1000,
        time_min: 30,
        gpus: 0,
    };
    const DOC: &'static str =
        "replica-theory fine-tuning MSE vs alpha for a two-task configuration";
    type Params = ReplicaCurveParams;

    fn compute(
        p: &ReplicaCurveParams,
        _: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let groups = two_task_groups(&p.task(), p.c, p.lambda, p.gamma)
            .map_err(|e| StageError::new(e.to_string()))?;
        solver::solve_and_tabulate(
            &groups,
            solver::CurveNumerics {
                alpha: &p.alpha,
                noise_var: p.noise_var,
                method: p.method,
                mc: p.mc,
                seed: p.seed,
                solver: &p.solver,
            },
            ctx,
        )
    }
}
