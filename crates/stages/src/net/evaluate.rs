//! `evaluate`: how good an estimate is (THEORY §8): parameter MSE
//! `||beta_hat - beta_ft||^2 / d`, prediction MSE on `n_test` fresh samples
//! (equal in expectation), the active fraction, and — when a `reference`
//! estimate is wired (e.g. the exact implicit-bias solution) — the relative
//! L2 distance to it. One row.

use arrow::array::RecordBatch;
use ptft_diagnet::eval::{active_frac, param_mse, rel_l2, test_mse};
use ptft_engine::{Arity, Context, InputSlot, Inputs, ParamError, Stage, StageError, Validate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::derive_seed;
use crate::table::{f64_column, TableBuilder};

pub struct Evaluate;

/// Largest test set. Memory is bounded whatever `n_test` (the test design
/// is generated and discarded in chunks); the cap bounds time, `n_test x d`
/// Gaussian draws and dot products, and catches typos (extra zeros).
pub const MAX_N_TEST: usize = 10_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateParams {
    /// Fresh test samples for the prediction MSE.
    pub n_test: usize,
    /// |beta_i| above this counts as active.
    pub active_threshold: f64,
}

impl Default for EvaluateParams {
    fn default() -> Self {
        EvaluateParams {
            n_test: 10_000,
            active_threshold: 1e-6,
        }
    }
}

impl Validate for EvaluateParams {
    fn validate(&self) -> Result<(), ParamError> {
        let mut e = ParamError::range("n_test", self.n_test, &format!("[1, {MAX_N_TEST}]"));
        if self.n_test == 0 {
            return Err(e);
        }
        if self.n_test > MAX_N_TEST {
            let n = self.n_test as f64;
            e.message.push_str(&format!(
                ": the test MSE draws n_test x d fresh Gaussian entries ({:.1e} at d = 1000; generated in chunks, so memory stays bounded, but that is hours to days of CPU), while n_test = 10000 already estimates it to sqrt(2/n_test) = 1.4% (relative)",
                n * 1000.0
            ));
            return Err(e);
        }
        if !(self.active_threshold >= 0.0 && self.active_threshold.is_finite()) {
            return Err(ParamError::range(
                "active_threshold",
                self.active_threshold,
                "[0, inf)",
            ));
        }
        Ok(())
    }
}

impl Stage for Evaluate {
    const KIND: &'static str = "evaluate";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "parameter and test-set MSE, active fraction, distance to a reference estimate";
    type Params = EvaluateParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::new(
                "estimate",
                Arity::One,
                "a table with a `beta` column (finetune or implicit_bias_solve)",
            ),
            InputSlot::new("task", Arity::One, "the task (its beta_ft is the truth)"),
            InputSlot::optional(
                "reference",
                Arity::One,
                "another estimate to compare with (e.g. the exact solution)",
            ),
        ];
        SLOTS
    }

    fn compute(
        p: &EvaluateParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let task = inputs.one("task")?;
        let truth = f64_column(task, "beta_ft")?;
        let beta = f64_column(inputs.one("estimate")?, "beta")?;
        if beta.len() != truth.len() {
            return Err(StageError::new(format!(
                "estimate has {} coordinates but the task has {}; wire the estimate made from this task",
                beta.len(),
                truth.len()
            )));
        }
        let task_seed = task.params.get("seed").and_then(Value::as_u64).unwrap_or(0);
        let test_seed = derive_seed(task_seed, "test", &[]);
        ctx.record_seed("test", test_seed);
        let test = test_mse(&beta, &truth, p.n_test, test_seed)
            .map_err(|e| StageError::new(e.to_string()))?;
        let distance = if inputs.has("reference") {
            let r = f64_column(inputs.one("reference")?, "beta")?;
            Some(rel_l2(&beta, &r))
        } else {
            None
        };
        TableBuilder::new()
            .f64("param_mse", [param_mse(&beta, &truth)])
            .f64("test_mse", [test])
            .f64("active_frac", [active_frac(&beta, p.active_threshold)])
            .f64_opt("rel_dist_to_reference", [distance])
            .u64("n_test", [p.n_test as u64])
            .build()
    }
}
