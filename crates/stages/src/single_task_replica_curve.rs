//! `single_task_replica_curve`: Experiment 4 — learning one
//! Bernoulli–Gaussian teacher from the symmetric initialisation, where every
//! coordinate has the same scale `c` (THEORY §8, last paragraph). `lambda`
//! provably plays no role, so it is not a parameter.

use arrow::array::RecordBatch;
use ptft_engine::{check_finite, Context, Inputs, ParamError, Stage, StageError, Validate};
use ptft_theory::single_task_groups;
use serde::{Deserialize, Serialize};

use crate::grid::Values;
use crate::solver::{self, Method, SolverParams};

pub struct SingleTaskReplicaCurve;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SingleTaskParams {
    /// Fraction of active teacher coordinates.
    pub rho: f64,
    /// Scale of the symmetric initialisation (> 0).
    pub c: f64,
    pub alpha: Values,
    pub noise_var: f64,
    pub method: Method,
    pub mc: usize,
    pub seed: u64,
    pub solver: SolverParams,
}

impl Default for SingleTaskParams {
    fn default() -> Self {
        SingleTaskParams {
            rho: 0.1,
            c: 1e-3,
            alpha: Values::linspace(0.01, 0.5, 80),
            noise_var: 0.0,
            method: Method::Quadrature,
            mc: 80_000,
            seed: 0,
            solver: SolverParams::default(),
        }
    }
}

impl Validate for SingleTaskParams {
    fn validate(&self) -> Result<(), ParamError> {
        check_finite("rho", self.rho)?;
        if !(self.rho > 0.0 && self.rho < 1.0) {
            return Err(ParamError::range("rho", self.rho, "(0, 1)"));
        }
        check_finite("c", self.c)?;
        if self.c <= 0.0 {
            return Err(ParamError::range("c", self.c, "(0, inf)"));
        }
        solver::validate_alpha(&self.alpha)?;
        solver::validate_noise(self.noise_var)?;
        solver::validate(self.method, self.mc, &self.solver)
    }
}

impl Stage for SingleTaskReplicaCurve {
    const KIND: &'static str = "single_task_replica_curve";
    const VERSION: u32 = 1;
    const DOC: &'static str = "replica-theory MSE vs alpha for single-task learning (Experiment 4)";
    type Params = SingleTaskParams;

    fn compute(
        p: &SingleTaskParams,
        _: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let groups = single_task_groups(p.rho, p.c).map_err(|e| StageError::new(e.to_string()))?;
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
