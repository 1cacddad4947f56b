//! `empirical_curve`: aggregates many `evaluate` rows (seeds x alphas) into
//! mean, standard error and count per value of a coordinate (default
//! `alpha`) — the points drawn over the theory curves.
//!
//! The grouping value comes from each input's sweep coordinates (e.g. the
//! `alpha` of the dataset it descends from), so the workflow decides what
//! is aggregated; standard errors are `sd / sqrt(count)` over the inputs in
//! a group (0 when a group has a single input).

use arrow::array::RecordBatch;
use ptft_engine::{
    Arity, Context, InputSlot, Inputs, ParamError, PlannedInputs, Stage, StageError, Validate,
};
use serde::{Deserialize, Serialize};

use crate::table::{f64_column, TableBuilder};

pub struct EmpiricalCurve;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmpiricalCurveParams {
    /// The sweep coordinates to group by (one output column each), e.g.
    /// `["alpha"]` or `["d", "alpha"]`.
    pub by: Vec<String>,
}

impl Default for EmpiricalCurveParams {
    fn default() -> Self {
        EmpiricalCurveParams {
            by: vec!["alpha".into()],
        }
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

    fn check_inputs(p: &EmpiricalCurveParams, inputs: &PlannedInputs) -> Result<(), ParamError> {
        for e in inputs.get("evaluations") {
            if let Some(by) = p.by.iter().find(|b| !e.coords.contains_key(b.as_str())) {
                return Err(ParamError::new(
                    "by",
                    format!(
                        "input `{}` has no sweep coordinate `{by}` (its coordinates: {}); group by those",
                        e.instance,
                        e.coords.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    fn compute(
        p: &EmpiricalCurveParams,
        inputs: &Inputs,
        _: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        // Group key: the coordinates' values, ordered numerically.
        let mut groups: Vec<(Vec<f64>, Vec<[f64; 3]>)> = Vec::new();
        for t in inputs.many("evaluations") {
            let mut key = Vec::with_capacity(p.by.len());
            for by in &p.by {
                let x = t.coords.get(by).and_then(|v| v.as_f64()).ok_or_else(|| {
                    StageError::new(format!(
                        "input `{}` has no numeric sweep coordinate `{by}` (its coordinates: {}); group by those",
                        t.instance,
                        t.coords.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                key.push(x);
            }
            let row = [
                f64_column(t, "param_mse")?[0],
                f64_column(t, "test_mse")?[0],
                f64_column(t, "active_frac")?[0],
            ];
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(row),
                None => groups.push((key, vec![row])),
            }
        }
        groups.sort_by(|a, b| {
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| x.total_cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let stat = |j: usize| -> Vec<(f64, f64)> {
            groups
                .iter()
                .map(|(_, v)| mean_se(&v.iter().map(|r| r[j]).collect::<Vec<_>>()))
                .collect()
        };
        let (pm, tm, af) = (stat(0), stat(1), stat(2));
        let mut table = TableBuilder::new();
        for (i, by) in p.by.iter().enumerate() {
            table = table.f64(by, groups.iter().map(|g| g.0[i]));
        }
        table
            .u64("count", groups.iter().map(|g| g.1.len() as u64))
            .f64("param_mse", pm.iter().map(|s| s.0))
            .f64("param_mse_se", pm.iter().map(|s| s.1))
            .f64("test_mse", tm.iter().map(|s| s.0))
            .f64("test_mse_se", tm.iter().map(|s| s.1))
            .f64("active_frac", af.iter().map(|s| s.0))
            .build()
    }
}
