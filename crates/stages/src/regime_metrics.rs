//! `regime_metrics`: l-order, pretraining dependence PD and D over a grid of
//! (lambda/c, c, gamma, b, b_pt) — the data behind the Figure 2 phase
//! portrait (THEORY §7). One row per grid point.

use arrow::array::RecordBatch;
use ptft_engine::{Context, Inputs, ParamError, Stage, StageError, Validate};
use ptft_theory::regime_point;
use serde::{Deserialize, Serialize};

use crate::grid::{human_bytes, Values};
use crate::replica_curve::validate_scales;
use crate::table::TableBuilder;

/// Largest grid (rows) one instance may produce: 5e6 points is about 800 MB
/// at [`BYTES_PER_ROW`], a table still quick to write, read and plot; the
/// paper's Figure 2 grids have about a thousand points each.
pub const MAX_ROWS: usize = 5_000_000;

/// Memory per grid point while the table is built: 10 f64 values, held
/// twice (the row buffer, then the Arrow columns).
pub const BYTES_PER_ROW: usize = 2 * 10 * 8;

pub struct RegimeMetrics;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegimeMetricsParams {
    /// Relative scale as a fraction of c, each in [-1, 1].
    pub lambda_over_c: Values,
    /// Absolute scales, each > 0.
    pub c: Values,
    /// Readout scales, each >= 0.
    pub gamma: Values,
    /// Fine-tuning coefficients at which the metrics are evaluated (nonzero).
    pub b: Values,
    /// Pretrained coefficients (0 = inactive coordinate).
    pub b_pt: Values,
}

impl Default for RegimeMetricsParams {
    /// Figure 2's left panels: lambda/c vs c at gamma = 0, active and
    /// inactive coordinates, b = 1.
    fn default() -> Self {
        RegimeMetricsParams {
            lambda_over_c: Values::linspace(-1.0, 1.0, 41),
            c: Values::geomspace(1e-6, 1.0, 25),
            gamma: Values::List(vec![0.0]),
            b: Values::List(vec![1.0]),
            b_pt: Values::List(vec![0.0, 1.0]),
        }
    }
}

struct Axes {
    lambda_over_c: Vec<f64>,
    c: Vec<f64>,
    gamma: Vec<f64>,
    b: Vec<f64>,
    b_pt: Vec<f64>,
}

impl RegimeMetricsParams {
    fn axes(&self) -> Result<Axes, ParamError> {
        let axes = Axes {
            lambda_over_c: self.lambda_over_c.expand("lambda_over_c")?,
            c: self.c.expand("c")?,
            gamma: self.gamma.expand("gamma")?,
            b: self.b.expand("b")?,
            b_pt: self.b_pt.expand("b_pt")?,
        };
        if let Some(v) = axes.lambda_over_c.iter().find(|v| v.abs() > 1.0) {
            return Err(ParamError::range("lambda_over_c", v, "[-1, 1]"));
        }
        for &c in &axes.c {
            validate_scales(c, 0.0, 0.0)?;
        }
        if let Some(g) = axes.gamma.iter().find(|g| **g < 0.0) {
            return Err(ParamError::range("gamma", g, "[0, inf)"));
        }
        if axes.b.contains(&0.0) {
            return Err(ParamError::new("b", "b = 0 is not allowed: the l-order is undefined at b = 0 (use the typical fine-tuning value b = 1)"));
        }
        let sizes = [
            ("lambda_over_c", axes.lambda_over_c.len()),
            ("c", axes.c.len()),
            ("gamma", axes.gamma.len()),
            ("b", axes.b.len()),
            ("b_pt", axes.b_pt.len()),
        ];
        // In f64: the product of five axes of up to MAX_POINTS each
        // overflows usize, and the message must still say how big it is.
        let rows: f64 = sizes.iter().map(|(_, n)| *n as f64).product();
        if rows > MAX_ROWS as f64 {
            let shape = sizes
                .iter()
                .map(|(name, n)| format!("{n} {name}"))
                .collect::<Vec<_>>()
                .join(" x ");
            return Err(ParamError::new(
                "params",
                format!(
                    "the grid has {} points ({shape}), which would need about {} ({BYTES_PER_ROW} bytes per point); at most {MAX_ROWS} points are allowed per instance (split it with a sweep over one axis)",
                    if rows < 1e15 { format!("{rows:.0}") } else { format!("{rows:.1e}") },
                    human_bytes(rows * BYTES_PER_ROW as f64)
                ),
            ));
        }
        Ok(axes)
    }
}

impl Validate for RegimeMetricsParams {
    fn validate(&self) -> Result<(), ParamError> {
        self.axes().map(|_| ())
    }
}

impl Stage for RegimeMetrics {
    const KIND: &'static str = "regime_metrics";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "l-order, PD and D over a (lambda/c, c, gamma, b, b_pt) grid (Figure 2)";
    type Params = RegimeMetricsParams;

    fn compute(
        p: &RegimeMetricsParams,
        _: &Inputs,
        _: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let axes = p.axes().map_err(|e| StageError::new(e.to_string()))?;
        let mut rows: Vec<[f64; 10]> = Vec::new();
        for &loc in &axes.lambda_over_c {
            for &c in &axes.c {
                // lambda/c = ±1 exactly must stay inside [-c, c] after rounding.
                let lambda = (loc * c).clamp(-c, c);
                for &gamma in &axes.gamma {
                    for &b in &axes.b {
                        for &b_pt in &axes.b_pt {
                            let r = regime_point(b, b_pt, c, lambda, gamma)
                                .map_err(|e| StageError::new(e.to_string()))?;
                            rows.push([
                                loc, lambda, c, gamma, b, b_pt, r.c_ft, r.l_order, r.pd, r.d,
                            ]);
                        }
                    }
                }
            }
        }
        let col = |j: usize| rows.iter().map(move |r| r[j]);
        TableBuilder::new()
            .f64("lambda_over_c", col(0))
            .f64("lambda", col(1))
            .f64("c", col(2))
            .f64("gamma", col(3))
            .f64("b", col(4))
            .f64("b_pt", col(5))
            .f64("c_ft", col(6))
            .f64("l_order", col(7))
            .f64("pd", col(8))
            .f64("d", col(9))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_grid_is_refused_with_its_size_and_memory() {
        RegimeMetricsParams::default().validate().unwrap();
        let p = RegimeMetricsParams {
            lambda_over_c: Values::linspace(-1.0, 1.0, 10_000),
            c: Values::geomspace(1e-6, 1.0, 10_000),
            ..RegimeMetricsParams::default()
        };
        let e = p.validate().unwrap_err();
        assert!(e.message.contains("200000000 points"), "{}", e.message);
        assert!(e.message.contains("32.0 GB"), "{}", e.message);
        assert!(e.message.contains("5000000"), "{}", e.message);
    }
}
