//! `task`: one realisation of the teachers (THEORY §8) — group supports of
//! exact sizes `round(rho d)`, the PT teacher (`a_pt` times random signs)
//! and the FT teacher (`N(0, 1/rho_ft)`), or the single-task teacher of
//! Experiment 4. One row per coordinate: `coordinate, group, beta_pt, beta_ft`.

use arrow::array::RecordBatch;
use ptft_diagnet::task::{sample_single_task, sample_two_task};
use ptft_engine::{check_finite, Context, Inputs, ParamError, Stage, StageError, Validate};
use ptft_theory::TwoTask;
use serde::{Deserialize, Serialize};

use super::{validate_d, validate_rho};
use crate::table::TableBuilder;

pub struct Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Pretraining and fine-tuning teachers on four coordinate groups.
    TwoTask,
    /// One Bernoulli–Gaussian teacher (Experiment 4); `beta_pt` is zero.
    SingleTask,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskParams {
    pub model: Model,
    /// Input dimension.
    pub d: usize,
    pub rho_pt: f64,
    pub rho_ft: f64,
    pub omega: f64,
    pub a_pt: f64,
    /// Sparsity of the single-task teacher (model = single_task).
    pub rho: f64,
    pub seed: u64,
}

impl Default for TaskParams {
    fn default() -> Self {
        TaskParams {
            model: Model::TwoTask,
            d: 1000,
            rho_pt: 0.1,
            rho_ft: 0.1,
            omega: 0.5,
            a_pt: 1.0,
            rho: 0.1,
            seed: 0,
        }
    }
}

impl Validate for TaskParams {
    fn validate(&self) -> Result<(), ParamError> {
        validate_d(self.d)?;
        match self.model {
            Model::TwoTask => {
                check_finite("rho_pt", self.rho_pt)?;
                check_finite("rho_ft", self.rho_ft)?;
                check_finite("omega", self.omega)?;
                check_finite("a_pt", self.a_pt)?;
                validate_rho("rho_pt", self.rho_pt)?;
                validate_rho("rho_ft", self.rho_ft)?;
                if !(0.0..=1.0).contains(&self.omega) {
                    return Err(ParamError::range("omega", self.omega, "[0, 1]"));
                }
                TwoTask {
                    rho_pt: self.rho_pt,
                    rho_ft: self.rho_ft,
                    omega: self.omega,
                    a_pt: self.a_pt,
                }
                .group_probs()
                .map_err(|e| ParamError::new("rho_pt, rho_ft, omega", e.to_string()))?;
            }
            Model::SingleTask => {
                check_finite("rho", self.rho)?;
                validate_rho("rho", self.rho)?;
            }
        }
        Ok(())
    }
}

impl Stage for Task {
    const KIND: &'static str = "task";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "teacher supports and coefficients (two-task or single-task), from a seed";
    type Params = TaskParams;

    fn compute(p: &TaskParams, _: &Inputs, ctx: &mut Context) -> Result<RecordBatch, StageError> {
        ctx.record_seed("task", p.seed);
        let t = match p.model {
            Model::TwoTask => sample_two_task(p.d, p.rho_pt, p.rho_ft, p.omega, p.a_pt, p.seed),
            Model::SingleTask => sample_single_task(p.d, p.rho, p.seed),
        }
        .map_err(|e| StageError::new(e.to_string()))?;
        TableBuilder::new()
            .u64("coordinate", 0..p.d as u64)
            .string("group", t.group.iter().map(|g| g.as_str().to_string()))
            .f64("beta_pt", t.beta_pt)
            .f64("beta_ft", t.beta_ft)
            .build()
    }
}
