//! `figure`: renders curve tables into a multi-panel figure (PNG and SVG).
//!
//! Inputs are gathered curve tables: `lines` (e.g. `replica_curve`s, drawn
//! as lines) and `points` (e.g. `empirical_curve`s, drawn as points with
//! standard-error bars). Every row of every input has *attributes*: its
//! table's columns, then its instance's sweep coordinates, then its
//! resolved params, then `stage` (see [`crate::rows`]). A panel selects rows with `where` (attribute = value)
//! and splits them into series by `series_by`; a series' colour follows
//! its name, so the same parameter value has the same colour in every
//! panel.
//!
//! The output table lists every drawn point (panel, series, role, source
//! instance, source row, x, y, y_err), so each plotted number can be traced
//! to the artifact row it came from; the rendered PNG (base64) and SVG are
//! kept in the artifact's provenance notes (`ptft figures` writes them out).

use arrow::array::RecordBatch;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ptft_engine::{
    Arity, Context, InputSlot, InputTable, Inputs, ParamError, Stage, StageError, Validate,
};
use ptft_figures::{render_figure, Figure, LineStyle, Panel, Series, SeriesKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rows::{attribute, matches};
use crate::table::TableBuilder;

pub struct FigureStage;

/// Which columns of an input give x, y and (optionally) the error bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Columns {
    pub x: String,
    pub y: String,
    pub err: Option<String>,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            x: "alpha".into(),
            y: "mse".into(),
            err: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelSpec {
    pub letter: Option<String>,
    pub title: String,
    /// Rows whose attributes equal these values (a list: any of them).
    #[serde(rename = "where")]
    pub filter: Map<String, Value>,
    /// Attributes naming the series (e.g. `["c"]` gives "c=0.001").
    pub series_by: Vec<String>,
    /// Attributes (among `series_by`) shown by line style instead of
    /// colour: solid, dashed, dotted by first appearance. With
    /// `["omega"]`, the colour says which `c` and the dash which overlap.
    pub style_by: Vec<String>,
    pub legend_title: Option<String>,
}

impl Default for PanelSpec {
    fn default() -> Self {
        PanelSpec {
            letter: None,
            title: String::new(),
            filter: Map::new(),
            series_by: vec![],
            style_by: vec![],
            legend_title: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FigureParams {
    pub title: Option<String>,
    pub panels: Vec<PanelSpec>,
    pub columns: usize,
    pub panel_width: u32,
    pub panel_height: u32,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    /// Columns of `lines` inputs.
    pub lines: Columns,
    /// Columns of `points` inputs.
    pub points: Columns,
    /// Legend note for panels where points sit on their theory line.
    pub points_note: String,
}

impl Default for FigureParams {
    fn default() -> Self {
        FigureParams {
            title: None,
            panels: vec![PanelSpec::default()],
            columns: 3,
            panel_width: 460,
            panel_height: 360,
            x_label: "alpha = n/d (fine-tuning samples per dimension)".into(),
            y_label: "generalisation error (MSE)".into(),
            log_x: false,
            log_y: true,
            lines: Columns::default(),
            points: Columns {
                x: "alpha".into(),
                y: "param_mse".into(),
                err: Some("param_mse_se".into()),
            },
            points_note: "markers: empirical mean ± 1 SE".into(),
        }
    }
}

impl Validate for FigureParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.panels.is_empty() {
            return Err(ParamError::new(
                "panels",
                "a figure needs at least one panel",
            ));
        }
        for (i, panel) in self.panels.iter().enumerate() {
            if let Some(k) = panel.style_by.iter().find(|k| !panel.series_by.contains(k)) {
                return Err(ParamError::new(
                    format!("panels[{i}].style_by"),
                    format!("`{k}` must also be in `series_by` ({:?}): style_by picks which series attributes are drawn as dashes", panel.series_by),
                ));
            }
        }
        if self.columns == 0 || self.columns > 12 {
            return Err(ParamError::range("columns", self.columns, "[1, 12]"));
        }
        for (name, v) in [
            ("panel_width", self.panel_width),
            ("panel_height", self.panel_height),
        ] {
            if !(200..=4000).contains(&v) {
                return Err(ParamError::range(name, v, "[200, 4000] pixels"));
            }
        }
        Ok(())
    }
}

/// Legend-friendly value: `1e-6`-style for very small or large numbers.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f != 0.0 && (f.abs() < 1e-3 || f.abs() >= 1e5) => format!("{f:e}"),
            Some(f) => format!("{f}"),
            None => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn f64_at(t: &InputTable, row: usize, col: &str) -> Result<f64, StageError> {
    attribute(t, row, col)
        .and_then(|v| v.as_f64())
        .ok_or_else(|| {
            StageError::new(format!(
                "input `{}` has no numeric column `{col}` (row {row})",
                t.instance
            ))
        })
}

/// Index of `name` in `seen`, appending it on first appearance.
fn first_appearance(seen: &mut Vec<String>, name: &str) -> usize {
    match seen.iter().position(|k| k == name) {
        Some(i) => i,
        None => {
            seen.push(name.to_string());
            seen.len() - 1
        }
    }
}

/// One drawn point, for the output table.
struct Drawn {
    panel: String,
    series: String,
    role: &'static str,
    source: String,
    row: u64,
    x: f64,
    y: f64,
    err: Option<f64>,
}

impl Stage for FigureStage {
    const KIND: &'static str = "figure";
    // 2: line styles (style_by), merged legend entries, legend outside the plot.
    const VERSION: u32 = 2;
    const DOC: &'static str =
        "multi-panel figure (PNG + SVG) from curve tables, with every drawn point traced";
    type Params = FigureParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[
            InputSlot::optional(
                "lines",
                Arity::Many,
                "curves drawn as lines (e.g. replica_curve)",
            ),
            InputSlot::optional(
                "points",
                Arity::Many,
                "curves drawn as points with error bars (e.g. empirical_curve)",
            ),
        ];
        SLOTS
    }

    fn compute(
        p: &FigureParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let mut panels = Vec::new();
        let mut drawn: Vec<Drawn> = Vec::new();
        // Colours by first appearance across the figure: distinct series get
        // distinct colours, and a series keeps its colour in every panel.
        let mut slots: Vec<String> = Vec::new();
        for (pi, spec) in p.panels.iter().enumerate() {
            // Styles restart per panel: each panel's style attribute
            // (omega here, rho_ft there) gets solid first, then dashed.
            let mut styles: Vec<String> = Vec::new();
            let panel_name = spec.letter.clone().unwrap_or_else(|| format!("{}", pi + 1));
            let mut series: Vec<Series> = Vec::new();
            for (slot, cols, kind, role) in [
                ("lines", &p.lines, SeriesKind::Line, "line"),
                ("points", &p.points, SeriesKind::Points, "points"),
            ] {
                for t in inputs.many(slot) {
                    for row in 0..t.table.num_rows() {
                        let keep = spec
                            .filter
                            .iter()
                            .all(|(k, v)| attribute(t, row, k).is_some_and(|a| matches(&a, v)));
                        if !keep {
                            continue;
                        }
                        let part = |k: &String| {
                            format!(
                                "{k}={}",
                                attribute(t, row, k)
                                    .map(|v| short(&v))
                                    .unwrap_or_else(|| "?".into())
                            )
                        };
                        let key = spec
                            .series_by
                            .iter()
                            .map(part)
                            .collect::<Vec<_>>()
                            .join(", ");
                        let name = if key.is_empty() {
                            t.stage.clone()
                        } else {
                            key.clone()
                        };
                        let (colour_by, style_key): (Vec<String>, Vec<String>) = (
                            spec.series_by
                                .iter()
                                .filter(|k| !spec.style_by.contains(k))
                                .map(part)
                                .collect(),
                            spec.style_by.iter().map(part).collect(),
                        );
                        let colour_name = if colour_by.is_empty() && spec.style_by.is_empty() {
                            name.clone()
                        } else {
                            colour_by.join(", ")
                        };
                        let style_name = style_key.join(", ");
                        let label = if role == "points" {
                            format!("{name} (empirical)")
                        } else {
                            name.clone()
                        };
                        let (x, y) = (f64_at(t, row, &cols.x)?, f64_at(t, row, &cols.y)?);
                        let err = match &cols.err {
                            Some(c) => Some(f64_at(t, row, c)?),
                            None => None,
                        };
                        if p.log_y && y <= 0.0 || p.log_x && x <= 0.0 {
                            continue; // not drawable on a log axis; not recorded as drawn
                        }
                        let s = match series.iter_mut().find(|s| s.name == label) {
                            Some(s) => s,
                            None => {
                                let slot = first_appearance(&mut slots, &colour_name);
                                let style = match first_appearance(&mut styles, &style_name) {
                                    _ if spec.style_by.is_empty() => LineStyle::Solid,
                                    0 => LineStyle::Solid,
                                    1 => LineStyle::Dashed,
                                    _ => LineStyle::Dotted,
                                };
                                series.push(Series {
                                    name: label.clone(),
                                    kind,
                                    x: vec![],
                                    y: vec![],
                                    y_err: cols.err.as_ref().map(|_| vec![]),
                                    color_key: format!("slot:{slot}"),
                                    style,
                                    in_legend: true,
                                });
                                series.last_mut().expect("just pushed")
                            }
                        };
                        s.x.push(x);
                        s.y.push(y);
                        if let (Some(e), Some(v)) = (err, s.y_err.as_mut()) {
                            v.push(e);
                        }
                        drawn.push(Drawn {
                            panel: panel_name.clone(),
                            series: label,
                            role,
                            source: t.instance.clone(),
                            row: row as u64,
                            x,
                            y,
                            err,
                        });
                    }
                }
            }
            // A theory line and its empirical points share colour and
            // style: one legend entry, and a note saying what the markers are.
            let line_names: Vec<String> = series
                .iter()
                .filter(|s| s.kind == SeriesKind::Line)
                .map(|s| s.name.clone())
                .collect();
            let mut merged = false;
            for s in series.iter_mut().filter(|s| s.kind == SeriesKind::Points) {
                if let Some(base) = s.name.strip_suffix(" (empirical)") {
                    if line_names.iter().any(|l| l == base) {
                        s.in_legend = false;
                        merged = true;
                    }
                }
            }
            let note = merged.then(|| p.points_note.clone());
            if series.is_empty() {
                return Err(StageError::new(format!(
                    "panel {panel_name} (\"{}\") selects no rows: check its `where` ({}) against the inputs",
                    spec.title,
                    Value::Object(spec.filter.clone())
                )));
            }
            panels.push(Panel {
                letter: spec.letter.clone(),
                title: spec.title.clone(),
                x_label: p.x_label.clone(),
                y_label: p.y_label.clone(),
                log_x: p.log_x,
                log_y: p.log_y,
                series,
                legend_title: spec.legend_title.clone(),
                note,
            });
        }
        let fig = Figure {
            title: p.title.clone(),
            panels,
            columns: p.columns.min(p.panels.len()),
            panel_width: p.panel_width,
            panel_height: p.panel_height,
        };
        let rendered =
            render_figure(&fig).map_err(|e| StageError::new(format!("rendering failed: {e}")))?;
        ctx.note("png_base64", BASE64.encode(&rendered.png));
        ctx.note("svg", rendered.svg);
        ctx.note("size", [rendered.width, rendered.height]);
        TableBuilder::new()
            .string("panel", drawn.iter().map(|d| d.panel.clone()))
            .string("series", drawn.iter().map(|d| d.series.clone()))
            .string("role", drawn.iter().map(|d| d.role.to_string()))
            .string("source", drawn.iter().map(|d| d.source.clone()))
            .u64("source_row", drawn.iter().map(|d| d.row))
            .f64("x", drawn.iter().map(|d| d.x))
            .f64("y", drawn.iter().map(|d| d.y))
            .f64_opt("y_err", drawn.iter().map(|d| d.err))
            .build()
    }
}
