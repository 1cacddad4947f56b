//! `implicit_bias_solve`: the exact limit of gradient-flow fine-tuning,
//! `argmin sum_i q(beta_i; c_ft_i) s.t. X beta = y`, by dual Newton
//! (THEORY §3, §6). The cross-check for `finetune`, and a fast path for
//! empirical curves (milliseconds instead of minutes).

use arrow::array::RecordBatch;
use ptft_diagnet::dual::implicit_bias_solve;
use ptft_engine::{Arity, Context, InputSlot, Inputs, ParamError, Stage, StageError, Validate};
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
        let s = implicit_bias_solve(&data.x, &data.y, data.n, data.d, &c_ft, p.tol, p.max_iter)
            .map_err(|e| StageError::new(e.to_string()))?;
        ctx.note("iterations", s.iterations);
        ctx.note("residual", s.residual);
        ctx.note("seconds", s.seconds);
        TableBuilder::new()
            .u64("coordinate", 0..data.d as u64)
            .f64("beta", s.beta)
            .build()
    }
}
