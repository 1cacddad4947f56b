//! `reinit`: rebalancing and readout re-initialisation at the start of
//! fine-tuning (THEORY §5): both pathways get the summed first layer, the
//! readout is reset to `gamma/sqrt(2)`. Output: the FT initial weights and
//! each coordinate's fine-tuning scale `c_ft` — the only way pretraining
//! reaches fine-tuning (Theorem 4.1).

use arrow::array::RecordBatch;
use ptft_diagnet::weights::reinit;
use ptft_engine::{
    check_finite, Arity, Context, InputSlot, Inputs, ParamError, Stage, StageError, Validate,
};
use serde::{Deserialize, Serialize};

use super::{read_weights, weights_table};

pub struct Reinit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReinitParams {
    /// Readout re-initialisation scale.
    pub gamma: f64,
}

impl Default for ReinitParams {
    fn default() -> Self {
        ReinitParams { gamma: 0.0 }
    }
}

impl Validate for ReinitParams {
    fn validate(&self) -> Result<(), ParamError> {
        check_finite("gamma", self.gamma)?;
        if self.gamma < 0.0 {
            return Err(ParamError::range("gamma", self.gamma, "[0, inf)"));
        }
        Ok(())
    }
}

impl Stage for Reinit {
    const KIND: &'static str = "reinit";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "rebalance the first layer and re-initialise the readout; per-coordinate c_ft";
    type Params = ReinitParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new(
            "pretrained",
            Arity::One,
            "a `pretrain` output",
        )];
        SLOTS
    }

    fn compute(
        p: &ReinitParams,
        inputs: &Inputs,
        _: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let pt = read_weights(inputs.one("pretrained")?)?;
        let (w, c_ft) = reinit(&pt, p.gamma).map_err(|e| StageError::new(e.to_string()))?;
        weights_table(&w).f64("c_ft", c_ft).build()
    }
}
