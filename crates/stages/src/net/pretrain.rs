//! `pretrain`: the network's state after pretraining (THEORY §2, §4).
//!
//! `mode: "oracle"` builds the infinite-data state directly from the PT
//! teacher and the conserved quantities; `mode: "gd"` runs real gradient
//! descent from the symmetric initialisation on a PT dataset (input
//! `data`). Output: per coordinate the four weights, the reached `beta`,
//! the target `beta_pt`, and the conserved quantities `lambda_i`, `c_i`
//! (whose drift from `(lambda, c)` measures how far GD is from gradient
//! flow; recorded in the notes).

use arrow::array::RecordBatch;
use ptft_diagnet::gd::train;
use ptft_diagnet::weights::{oracle_pretrained, symmetric_init};
use ptft_engine::{
    Arity, Context, InputSlot, Inputs, ParamError, PlannedInputs, Resources, Stage, StageError,
    Validate,
};
use serde::{Deserialize, Serialize};

use super::{load_data, note_gd, weights_table, GdParams};
use crate::replica_curve::validate_scales;
use crate::table::f64_column;

pub struct Pretrain;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Infinite pretraining data: the exact converged state (no training).
    Oracle,
    /// Gradient descent on `data` from the symmetric initialisation.
    Gd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainParams {
    pub mode: Mode,
    /// Absolute scale of the initialisation.
    pub c: f64,
    /// Relative scale, in [-c, c].
    pub lambda: f64,
    /// Gradient descent (mode = gd).
    pub gd: GdParams,
}

impl Default for PretrainParams {
    fn default() -> Self {
        PretrainParams {
            mode: Mode::Oracle,
            c: 1e-3,
            lambda: 0.0,
            gd: GdParams {
                lr: 0.05,
                max_epochs: 200_000,
                tol_train_mse: 1e-12,
                tol_rel_step: 1e-7,
                ..GdParams::default()
            },
        }
    }
}

impl Validate for PretrainParams {
    fn validate(&self) -> Result<(), ParamError> {
        validate_scales(self.c, self.lambda, 0.0)?;
        self.gd.validate("gd")
    }
}

impl Stage for Pretrain {
    const KIND: &'static str = "pretrain";
    const VERSION: u32 = 1;
    // Mode gd is a full gradient-descent run.
    const RESOURCES: Resources = Resources {
        cpus: 2,
        mem_mb: 4000,
        time_min: 24 * 60,
        gpus: 0,
    };
    const DOC: &'static str =
        "pretrained weights: the infinite-data oracle, or real GD on a PT dataset";
    type Params = PretrainParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::new(
                "task",
                Arity::One,
                "the task (its beta_pt is the PT teacher)",
            ),
            InputSlot::optional(
                "data",
                Arity::One,
                "a PT-split dataset of the same task (mode gd only)",
            ),
        ];
        SLOTS
    }

    fn check_inputs(p: &PretrainParams, inputs: &PlannedInputs) -> Result<(), ParamError> {
        match (p.mode, inputs.has("data")) {
            (Mode::Oracle, true) => Err(ParamError::new(
                "mode",
                "mode \"oracle\" uses no data; remove the `data` input or set mode \"gd\"",
            )),
            (Mode::Gd, false) => Err(ParamError::new(
                "mode",
                "mode \"gd\" needs a PT dataset: add input `data` (a `dataset` stage with split \"pt\") or set mode \"oracle\"",
            )),
            _ => Ok(()),
        }
    }

    fn compute(
        p: &PretrainParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let task = inputs.one("task")?;
        let beta_pt = f64_column(task, "beta_pt")?;
        let weights = match p.mode {
            Mode::Oracle => {
                if inputs.has("data") {
                    return Err(StageError::new(
                        "mode \"oracle\" uses no data; remove the `data` input or set mode \"gd\"",
                    ));
                }
                oracle_pretrained(&beta_pt, p.c, p.lambda)
                    .map_err(|e| StageError::new(e.to_string()))?
            }
            Mode::Gd => {
                if !inputs.has("data") {
                    return Err(StageError::new("mode \"gd\" needs a PT dataset: add input `data` (a `dataset` stage with split \"pt\")"));
                }
                let data = load_data(inputs.one("data")?, task)?;
                let init = symmetric_init(data.d, p.c, p.lambda)
                    .map_err(|e| StageError::new(e.to_string()))?;
                let r = train(&data.x, &data.y, data.n, data.d, &init, &p.gd.config())
                    .map_err(|e| StageError::new(e.to_string()))?;
                note_gd(ctx, &r);
                r.weights
            }
        };
        let lam = weights.lambda_i();
        let ci = weights.c_i();
        let scale = p.c;
        let drift_lambda = lam
            .iter()
            .map(|l| (l - p.lambda).abs() / scale)
            .fold(0.0, f64::max);
        let drift_c = ci
            .iter()
            .map(|c| (c - p.c).abs() / scale)
            .fold(0.0, f64::max);
        ctx.note("max_drift_lambda_over_c", drift_lambda);
        ctx.note("max_drift_c_over_c", drift_c);
        weights_table(&weights)
            .f64("beta_pt", beta_pt)
            .f64("lambda_i", lam)
            .f64("c_i", ci)
            .build()
    }
}
