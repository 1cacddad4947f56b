//! `empirical_curve`: aggregates many `evaluate` rows (seeds x alphas) into
//! mean, standard error and count per value of a coordinate (default
//! `alpha`) — the points drawn over the theory curves.
//!
//! The grouping value comes from each input's sweep coordinates (e.g. the
//! `alpha` of the dataset it descends from), so the workflow decides what
//! is aggregated; standard errors are `sd / sqrt(count)` over the inputs in
//! a group (0 when a group has a single input).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use ptft_engine::{Arity, Context, InputSlot, Inputs, ParamError, Stage, StageError, Validate};
use serde::{Deserialize, Serialize};

use crate::table::{f64_column, TableBuilder};

pub struct EmpiricalCurve;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmpiricalCurveParams {
    /// The sweep coordinate to group by.
    pub by: String,
}

impl Default for EmpiricalCurveParams {
    fn default() -> Self {
        EmpiricalCurveParams { by: "alpha".into() }
    }
}

impl Validate for EmpiricalCurveParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.by.is_empty() {
            return Err(ParamError::new(
                "by",
                "`by` must name a sweep coordinate, e.g. \"alpha\"",
            ));
        }
        Ok(())
    }
}

fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

impl Stage for EmpiricalCurve {
    const KIND: &'static str = "empirical_curve";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "mean, standard error and count of evaluations per alpha (or another coordinate)";
    type Params = EmpiricalCurveParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new(
            "evaluations",
            Arity::Many,
            "`evaluate` outputs (a sweep)",
        )];
        SLOTS
    }

    fn compute(
        p: &EmpiricalCurveParams,
        inputs: &Inputs,
        _: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        // Group key: the coordinate's f64 bits (sorted numerically below).
        let mut groups: BTreeMap<u64, (f64, Vec<[f64; 3]>)> = BTreeMap::new();
        for t in inputs.many("evaluations") {
            let x = t.coords.get(&p.by).and_then(|v| v.as_f64()).ok_or_else(|| {
                StageError::new(format!(
                    "input `{}` has no numeric sweep coordinate `{}` (its coordinates: {}); group by one of those",
                    t.instance,
                    p.by,
                    t.coords.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })?;
            let row = [
                f64_column(t, "param_mse")?[0],
                f64_column(t, "test_mse")?[0],
                f64_column(t, "active_frac")?[0],
            ];
            groups
                .entry(x.to_bits())
                .or_insert((x, Vec::new()))
                .1
                .push(row);
        }
        let mut rows: Vec<(f64, Vec<[f64; 3]>)> = groups.into_values().collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let stat = |j: usize| -> Vec<(f64, f64)> {
            rows.iter()
                .map(|(_, v)| mean_se(&v.iter().map(|r| r[j]).collect::<Vec<_>>()))
                .collect()
        };
        let (pm, tm, af) = (stat(0), stat(1), stat(2));
        TableBuilder::new()
            .f64(&p.by, rows.iter().map(|r| r.0))
            .u64("count", rows.iter().map(|r| r.1.len() as u64))
            .f64("param_mse", pm.iter().map(|s| s.0))
            .f64("param_mse_se", pm.iter().map(|s| s.1))
            .f64("test_mse", tm.iter().map(|s| s.0))
            .f64("test_mse_se", tm.iter().map(|s| s.1))
            .f64("active_frac", af.iter().map(|s| s.0))
            .build()
    }
}
