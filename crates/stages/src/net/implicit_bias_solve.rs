//! `implicit_bias_solve`: the exact limit of gradient-flow fine-tuning,
//! `argmin sum_i q(beta_i; c_ft_i) s.t. X beta = y`, by dual Newton
//! (THEORY §3, §6). The cross-check for `finetune`, and a fast path for
//! empirical curves (milliseconds instead of minutes).

use arrow::array::RecordBatch;
use ptft_diagnet::dual::implicit_bias_solve;
use ptft_engine::{
    Arity, Context, InputSlot, Inputs, ParamError, Resources, Stage, StageError, Validate,
};
use serde::{Deserialize, Serialize};

use super::load_data;
use crate::table::{f64_column, TableBuilder};

pub struct ImplicitBiasSolve;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImplicitBiasParams {
    /// Relative residual ||X beta - y|| / ||y|| to reach.
    pub tol: f64,
    pub max_iter: u32,
}

impl Default for ImplicitBiasParams {
    fn default() -> Self {
        ImplicitBiasParams {
            tol: 1e-10,
            max_iter: 200,
        }
    }
}

impl Validate for ImplicitBiasParams {
    fn validate(&self) -> Result<(), ParamError> {
        if !(self.tol > 0.0 && self.tol < 1.0) {
            return Err(ParamError::range("tol", self.tol, "(0, 1)"));
        }
        if self.max_iter == 0 {
            return Err(ParamError::range(
                "max_iter",
                self.max_iter,
                "[1, 4294967295]",
            ));
        }
        Ok(())
    }
}

impl Stage for ImplicitBiasSolve {
    const KIND: &'static str = "implicit_bias_solve";
    const VERSION: u32 = 1;
    // Dense n x n Cholesky (faer, multi-threaded) and an n x d scaled copy of X.
    const RESOURCES: Resources = Resources {
        cpus: 2,
        mem_mb: 4000,
        time_min: 60,
        gpus: 0,
    };
    const DOC: &'static str = "exact implicit-bias solution of fine-tuning by dual Newton";
    type Params = ImplicitBiasParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::new("init", Arity::One, "a `reinit` output (its c_ft)"),
            InputSlot::new("data", Arity::One, "an FT-split dataset"),
            InputSlot::new("task", Arity::One, "the task (its beta_ft labels the data)"),
        ];
        SLOTS
    }

    fn compute(
        p: &ImplicitBiasParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let c_ft = f64_column(inputs.one("init")?, "c_ft")?;
        let data = load_data(inputs.one("data")?, inputs.one("task")?)?;
        let s = gradient_flow_limit(&data.x, &data.y, data.n, data.d, &c_ft, p)?;
        if s.iterations == 0 && c_ft.iter().all(|&c| c == 0.0) {
            ctx.note("frozen", FROZEN);
        }
        ctx.note("iterations", s.iterations);
        ctx.note("residual", s.residual);
        ctx.note("seconds", s.seconds);
        TableBuilder::new()
            .u64("coordinate", 0..data.d as u64)
            .f64("beta", s.beta)
            .build()
    }
}

const FROZEN: &str = "every c_ft is 0 (e.g. lambda = -c, gamma = 0): the network starts at a saddle that gradient flow never leaves, so beta = 0";

/// The gradient-flow limit from a start with scales `c_ft`. When every
/// scale is zero no interpolator is reachable — every weight product and
/// its gradient vanish — and the limit is the starting point `beta = 0`
/// (the replica theory's MSE = 1 curve at lambda = -c); otherwise it is the
/// minimum-penalty interpolator.
pub fn gradient_flow_limit(
    x: &[f64],
    y: &[f64],
    n: usize,
    d: usize,
    c_ft: &[f64],
    p: &ImplicitBiasParams,
) -> Result<ptft_diagnet::dual::DualSolution, StageError> {
    if c_ft.len() == d && !c_ft.is_empty() && c_ft.iter().all(|&c| c == 0.0) {
        let norm_y = y.iter().map(|v| v * v).sum::<f64>().sqrt();
        return Ok(ptft_diagnet::dual::DualSolution {
            beta: vec![0.0; d],
            iterations: 0,
            residual: if norm_y > 0.0 { 1.0 } else { 0.0 },
            seconds: 0.0,
            mu: vec![0.0; n],
        });
    }
    implicit_bias_solve(x, y, n, d, c_ft, p.tol, p.max_iter)
        .map_err(|e| StageError::new(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_zero_scales_give_the_frozen_start_and_others_interpolate() {
        let (n, d) = (3, 5);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let y = vec![1.0, -0.5, 0.25];
        let p = ImplicitBiasParams::default();
        let frozen = gradient_flow_limit(&x, &y, n, d, &[0.0; 5], &p).unwrap();
        assert_eq!(frozen.beta, vec![0.0; 5]);
        assert_eq!(frozen.residual, 1.0);
        // One coordinate free is not enough to interpolate 3 equations:
        // that stays an error.
        let e = gradient_flow_limit(&x, &y, n, d, &[0.0, 0.0, 0.0, 0.0, 1.0], &p).unwrap_err();
        assert!(e.to_string().contains("did not converge"), "{e}");
        let s = gradient_flow_limit(&x, &y, n, d, &[1.0; 5], &p).unwrap();
        assert!(s.residual <= p.tol, "{}", s.residual);
    }
}
