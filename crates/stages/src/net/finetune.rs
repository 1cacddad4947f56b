//! `finetune`: gradient descent from the re-initialised weights on the FT
//! data (THEORY §1, §6), on candle — CPU by default, CUDA with
//! `device: "cuda"` in a binary built with `--features cuda`.
//!
//! Stopping rule: every `check_every` epochs, stop when the train MSE is at
//! most `tol_train_mse` and beta moved by at most `tol_rel_step` (relative)
//! since the previous check; otherwise stop at `max_epochs`. Divergence
//! (non-finite or exploding loss) fails the stage with the learning rate
//! named — nothing is published.

use arrow::array::RecordBatch;
use ptft_diagnet::gd::train;
use ptft_engine::{
    Arity, Context, InputSlot, Inputs, ParamError, Resources, Stage, StageError, Validate,
};

use super::{load_data, note_gd, read_weights, weights_table, GdParams};

pub struct Finetune;

impl Validate for GdParams {
    fn validate(&self) -> Result<(), ParamError> {
        GdParams::validate(self, "")
    }
}

impl Stage for Finetune {
    const KIND: &'static str = "finetune";
    const VERSION: u32 = 1;
    // Long gradient descent; the paper's schedule runs for hours at d = 5000.
    const RESOURCES: Resources = Resources {
        cpus: 2,
        mem_mb: 4000,
        time_min: 24 * 60,
        gpus: 0,
    };
    const DOC: &'static str =
        "gradient descent on the FT data from the re-initialised weights (candle, CPU or CUDA)";
    type Params = GdParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::new("init", Arity::One, "a `reinit` output"),
            InputSlot::new("data", Arity::One, "an FT-split dataset"),
            InputSlot::new("task", Arity::One, "the task (its beta_ft labels the data)"),
        ];
        SLOTS
    }

    fn compute(
        p: &GdParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let init = read_weights(inputs.one("init")?)?;
        let data = load_data(inputs.one("data")?, inputs.one("task")?)?;
        let r = train(&data.x, &data.y, data.n, data.d, &init, &p.config())
            .map_err(|e| StageError::new(e.to_string()))?;
        note_gd(ctx, &r);
        weights_table(&r.weights).build()
    }
}
