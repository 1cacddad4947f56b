//! `heatmap_figure`: renders maps `z(x, y)` from grid tables (e.g.
//! `regime_metrics`) as a grid of heatmaps with colour bars (PNG and SVG) —
//! the Figure 2 phase portrait (THEORY §7), where the l-order and the
//! pretraining dependence PD are shown over (lambda/c, c) and (gamma, c).
//!
//! Each map selects rows from the `grids` inputs (optionally only from the
//! named `stages`, then by `where`: attribute = value, an attribute being a
//! row's column, else its instance's sweep coordinate, else its resolved
//! param, as in `figure`), takes the distinct sorted `x` and `y` values as
//! cell centres and places `value` in its cell. A cell selected twice with
//! different values is an error (the map is ambiguous); cells no row selects
//! are an error too unless `allow_missing` draws them grey, because a hole
//! in a phase portrait usually means a filter or a grid is wrong.
//!
//! The output table lists every drawn cell (map, source instance, source
//! row, x, y, value) in grid order, so each colour can be traced to the
//! artifact row it came from; the rendered PNG (base64) and SVG are kept in
//! the artifact's provenance notes.

use arrow::array::{Array, Float64Array, RecordBatch};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ptft_engine::{
    Arity, Context, InputSlot, InputTable, Inputs, ParamError, Stage, StageError, Validate,
};
use ptft_figures::{render_heatmaps, Heatmap, Rendered};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::rows::{attribute, close, same};
use crate::table::TableBuilder;

/// Most cells one map may have: beyond this the SVG (one rectangle per
/// cell) kept in provenance grows to tens of megabytes.
pub const MAX_CELLS: usize = 250_000;

/// Most maps one figure may hold (the PNG grows with every row of maps).
pub const MAX_MAPS: usize = 36;

pub struct HeatmapFigure;

/// One heatmap: which rows, which columns, how to draw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapSpec {
    /// Drawn as "(a) title"; also names the map in the output table
    /// (default: its 1-based index).
    pub letter: Option<String>,
    pub title: String,
    /// Only rows of inputs made by these stage ids (empty: every input).
    /// Needed when several grids share coordinates with different fixed
    /// values (e.g. lambda/c = 0 in both a (lambda/c, c) and a (gamma, c)
    /// grid).
    pub stages: Vec<String>,
    /// Rows whose attributes equal these values (numbers to 1e-12 relative).
    #[serde(rename = "where")]
    pub filter: Map<String, Value>,
    /// Attributes (usually columns) giving the cell centres and the colour.
    pub x: String,
    pub y: String,
    pub value: String,
    pub log_x: bool,
    pub log_y: bool,
    /// Axis and colour-bar labels (default: the attribute names).
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    pub z_label: Option<String>,
    /// Colour scale `[lo, hi]`; default [1, 2] for `l_order`, [-1, 0] for
    /// `pd` (their theoretical ranges, so maps are comparable), else the
    /// data's range.
    pub z_range: Option<[f64; 2]>,
    /// Draw cells that no row selects as grey instead of failing.
    pub allow_missing: bool,
}

impl Default for MapSpec {
    /// Figure 2's first panel: l-order over lambda/c x c.
    fn default() -> Self {
        MapSpec {
            letter: None,
            title: String::new(),
            stages: vec![],
            filter: Map::new(),
            x: "lambda_over_c".into(),
            y: "c".into(),
            value: "l_order".into(),
            log_x: false,
            log_y: true,
            x_label: None,
            y_label: None,
            z_label: None,
            z_range: None,
            allow_missing: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeatmapFigureParams {
    pub title: Option<String>,
    /// Maps per row of the figure.
    pub columns: usize,
    pub maps: Vec<MapSpec>,
}

impl Default for HeatmapFigureParams {
    fn default() -> Self {
        HeatmapFigureParams {
            title: None,
            columns: 2,
            maps: vec![MapSpec::default()],
        }
    }
}

impl Validate for HeatmapFigureParams {
    fn validate(&self) -> Result<(), ParamError> {
        if self.maps.is_empty() {
            return Err(ParamError::new(
                "maps",
                "a heatmap figure needs at least one map",
            ));
        }
        if self.maps.len() > MAX_MAPS {
            return Err(ParamError::range(
                "maps (length)",
                self.maps.len(),
                &format!("[1, {MAX_MAPS}]"),
            ));
        }
        if self.columns == 0 || self.columns > 12 {
            return Err(ParamError::range("columns", self.columns, "[1, 12]"));
        }
        for (i, m) in self.maps.iter().enumerate() {
            for (name, v) in [("x", &m.x), ("y", &m.y), ("value", &m.value)] {
                if v.is_empty() {
                    return Err(ParamError::new(
                        format!("maps[{i}].{name}"),
                        format!(
                            "maps[{i}].{name} is empty; name a column such as `c` or `l_order`"
                        ),
                    ));
                }
            }
            if let Some([lo, hi]) = m.z_range {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(ParamError::range(
                        format!("maps[{i}].z_range"),
                        format!("[{lo}, {hi}]"),
                        "finite [lo, hi] with lo < hi",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A numeric attribute as f64. A NaN or null column value becomes NaN (a
/// grey cell, if it is the value); `Value::from(NaN)` is JSON null, so a
/// Float64 column is read directly rather than through [`attribute`].
fn number(t: &InputTable, row: usize, name: &str, map: &str) -> Result<f64, StageError> {
    if let Some(a) = t
        .table
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
    {
        return Ok(if a.is_null(row) {
            f64::NAN
        } else {
            a.value(row)
        });
    }
    match attribute(t, row, name) {
        None => Err(StageError::new(format!(
            "map {map}: input `{}` has no column, coordinate or param `{name}`",
            t.instance
        ))),
        Some(v) => v.as_f64().ok_or_else(|| {
            StageError::new(format!(
                "map {map}: `{name}` of input `{}` is not numeric (row {row}: {v})",
                t.instance
            ))
        }),
    }
}

/// Distinct sorted values, merging those equal to 1e-12 relative (grids of
/// different instances may round the same point differently).
fn centres(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, kept| close(*a, *kept));
    v
}

fn index_of(axis: &[f64], v: f64) -> Option<usize> {
    let i = axis.partition_point(|&u| u < v);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .find(|&j| axis.get(j).is_some_and(|&u| close(u, v)))
}

/// The default colour scale: the theoretical ranges of the Figure 2
/// metrics, else the data's range.
fn default_z_range(value: &str, z: &[f64]) -> (f64, f64) {
    match value {
        "l_order" => (1.0, 2.0),
        "pd" => (-1.0, 0.0),
        _ => {
            let finite = z.iter().copied().filter(|v| v.is_finite());
            let lo = finite.clone().fold(f64::INFINITY, f64::min);
            let hi = finite.fold(f64::NEG_INFINITY, f64::max);
            if lo > hi {
                (0.0, 1.0)
            } else if lo == hi {
                (lo - 0.5, hi + 0.5)
            } else {
                (lo, hi)
            }
        }
    }
}

/// One selected row.
struct Point {
    input: usize,
    row: usize,
    x: f64,
    y: f64,
    z: f64,
}

/// One drawn cell, for the output table.
struct Drawn {
    map: String,
    source: String,
    row: u64,
    x: f64,
    y: f64,
    value: f64,
}

/// What one map drew, for the provenance notes.
#[derive(Debug, Serialize)]
struct MapInfo {
    map: String,
    nx: usize,
    ny: usize,
    missing: usize,
    z_range: (f64, f64),
}

fn build_map(
    spec: &MapSpec,
    name: &str,
    grids: &[InputTable],
    drawn: &mut Vec<Drawn>,
) -> Result<(Heatmap, MapInfo), StageError> {
    for s in &spec.stages {
        if !grids.iter().any(|t| t.stage == *s) {
            let mut wired: Vec<&str> = grids.iter().map(|t| t.stage.as_str()).collect();
            wired.dedup();
            return Err(StageError::new(format!(
                "map {name}: `stages` names `{s}`, which is not wired to `grids` (wired: {})",
                wired.join(", ")
            )));
        }
    }
    let mut pts: Vec<Point> = Vec::new();
    for (input, t) in grids.iter().enumerate() {
        if !spec.stages.is_empty() && !spec.stages.contains(&t.stage) {
            continue;
        }
        for row in 0..t.table.num_rows() {
            let keep = spec
                .filter
                .iter()
                .all(|(k, v)| attribute(t, row, k).is_some_and(|a| same(&a, v)));
            if !keep {
                continue;
            }
            let x = number(t, row, &spec.x, name)?;
            let y = number(t, row, &spec.y, name)?;
            let z = number(t, row, &spec.value, name)?;
            for (axis, col, v, log) in
                [("x", &spec.x, x, spec.log_x), ("y", &spec.y, y, spec.log_y)]
            {
                if !v.is_finite() || log && v <= 0.0 {
                    return Err(StageError::new(format!(
                        "map {name}: {axis} = {col} = {v} at input `{}` row {row} cannot be placed{}",
                        t.instance,
                        if log { " on a log axis" } else { "" }
                    )));
                }
            }
            pts.push(Point {
                input,
                row,
                x,
                y,
                z,
            });
        }
    }
    if pts.is_empty() {
        return Err(StageError::new(format!(
            "map {name} (\"{}\") selects no rows: check its `where` ({}) and `stages` ({:?}) against the inputs",
            spec.title,
            Value::Object(spec.filter.clone()),
            spec.stages
        )));
    }
    let xs = centres(pts.iter().map(|p| p.x).collect());
    let ys = centres(pts.iter().map(|p| p.y).collect());
    let (nx, ny) = (xs.len(), ys.len());
    let cells = nx.saturating_mul(ny);
    if cells > MAX_CELLS {
        return Err(StageError::new(format!(
            "map {name}: {nx} x {ny} = {cells} cells is more than the {MAX_CELLS} allowed; narrow its `where`"
        )));
    }
    let mut grid: Vec<Option<usize>> = vec![None; cells];
    for (pi, p) in pts.iter().enumerate() {
        let (Some(ix), Some(iy)) = (index_of(&xs, p.x), index_of(&ys, p.y)) else {
            return Err(StageError::new(format!(
                "map {name}: internal error: ({}, {}) is not among the cell centres",
                p.x, p.y
            )));
        };
        let cell = &mut grid[iy * nx + ix];
        match *cell {
            None => *cell = Some(pi),
            Some(prev) => {
                let q = &pts[prev];
                let agree = close(q.z, p.z) || q.z.is_nan() && p.z.is_nan();
                if !agree {
                    return Err(StageError::new(format!(
                        "map {name}: the cell {} = {}, {} = {} gets two different values of `{}`: {} (input `{}` row {}) and {} (input `{}` row {}); narrow the map's `where` or `stages` so each cell is selected once",
                        spec.x, p.x, spec.y, p.y, spec.value,
                        q.z, grids[q.input].instance, q.row,
                        p.z, grids[p.input].instance, p.row
                    )));
                }
            }
        }
    }
    let missing = grid.iter().filter(|c| c.is_none()).count();
    if missing > 0 && !spec.allow_missing {
        let k = grid.iter().position(Option::is_none).unwrap_or(0);
        return Err(StageError::new(format!(
            "map {name}: the selected rows do not fill the {nx} x {ny} grid of distinct ({}, {}) values: {missing} of the {cells} cells are empty, e.g. {} = {}, {} = {}; fix the `where`/`stages`, or set `allow_missing` to draw them grey",
            spec.x, spec.y, spec.x, xs[k % nx], spec.y, ys[k / nx]
        )));
    }
    let z: Vec<f64> = grid
        .iter()
        .map(|c| c.map_or(f64::NAN, |i| pts[i].z))
        .collect();
    for i in grid.iter().flatten() {
        let p = &pts[*i];
        drawn.push(Drawn {
            map: name.to_string(),
            source: grids[p.input].instance.clone(),
            row: p.row as u64,
            x: p.x,
            y: p.y,
            value: p.z,
        });
    }
    let z_range = match spec.z_range {
        Some([lo, hi]) => (lo, hi),
        None => default_z_range(&spec.value, &z),
    };
    let title = match &spec.letter {
        Some(l) => format!("({l}) {}", spec.title),
        None => spec.title.clone(),
    };
    let map = Heatmap {
        title,
        x_label: spec.x_label.clone().unwrap_or_else(|| spec.x.clone()),
        y_label: spec.y_label.clone().unwrap_or_else(|| spec.y.clone()),
        log_x: spec.log_x,
        log_y: spec.log_y,
        x: xs,
        y: ys,
        z,
        z_label: spec.z_label.clone().unwrap_or_else(|| spec.value.clone()),
        z_range,
    };
    let info = MapInfo {
        map: name.to_string(),
        nx,
        ny,
        missing,
        z_range,
    };
    Ok((map, info))
}

/// The output table, the rendered figure and per-map grid shapes; split
/// from `compute` so tests can check the image without the engine.
fn render(
    p: &HeatmapFigureParams,
    inputs: &Inputs,
) -> Result<(RecordBatch, Rendered, Vec<MapInfo>), StageError> {
    let grids = inputs.many("grids");
    if grids.is_empty() {
        return Err(StageError::new(
            "no `grids` input: wire one or more grid tables (e.g. regime_metrics)",
        ));
    }
    let mut drawn = Vec::new();
    let mut maps = Vec::new();
    let mut infos = Vec::new();
    for (i, spec) in p.maps.iter().enumerate() {
        let name = spec.letter.clone().unwrap_or_else(|| format!("{}", i + 1));
        let (m, info) = build_map(spec, &name, grids, &mut drawn)?;
        maps.push(m);
        infos.push(info);
    }
    let rendered = render_heatmaps(p.title.as_deref().unwrap_or(""), &maps, p.columns)
        .map_err(|e| StageError::new(format!("rendering failed: {e}")))?;
    let table = TableBuilder::new()
        .string("map", drawn.iter().map(|d| d.map.clone()))
        .string("source", drawn.iter().map(|d| d.source.clone()))
        .u64("source_row", drawn.iter().map(|d| d.row))
        .f64("x", drawn.iter().map(|d| d.x))
        .f64("y", drawn.iter().map(|d| d.y))
        .f64("value", drawn.iter().map(|d| d.value))
        .build()?;
    Ok((table, rendered, infos))
}

impl Stage for HeatmapFigure {
    const KIND: &'static str = "heatmap_figure";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "grid of heatmaps (PNG + SVG) from grid tables (Figure 2), with every drawn cell traced";
    type Params = HeatmapFigureParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new(
            "grids",
            Arity::Many,
            "grid tables whose rows are the cells (e.g. regime_metrics)",
        )];
        SLOTS
    }

    fn compute(
        p: &HeatmapFigureParams,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let (table, rendered, infos) = render(p, inputs)?;
        ctx.note("png_base64", BASE64.encode(&rendered.png));
        ctx.note("svg", rendered.svg);
        ctx.note("size", [rendered.width, rendered.height]);
        ctx.note("maps", infos);
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, UInt64Array};
    use serde_json::json;

    /// A regime_metrics-like grid: lambda_over_c in {-1, 0, 1} x c in
    /// {0.01, 1} x b_pt in {0, 1}, with l_order = 1.5 + 0.25 lambda_over_c +
    /// 0.1 log10(c) and pd = -b_pt / (3 - lambda_over_c): every cell is
    /// distinct, so a misplaced cell shows.
    fn grid_input() -> InputTable {
        let mut rows = Vec::new();
        for loc in [-1.0, 0.0, 1.0] {
            for c in [0.01, 1.0] {
                for b_pt in [0.0, 1.0] {
                    rows.push((loc, c, b_pt, l_order(loc, c), -b_pt / (3.0 - loc)));
                }
            }
        }
        let table = TableBuilder::new()
            .f64("lambda_over_c", rows.iter().map(|r| r.0))
            .f64("c", rows.iter().map(|r| r.1))
            .f64("b_pt", rows.iter().map(|r| r.2))
            .f64("l_order", rows.iter().map(|r| r.3))
            .f64("pd", rows.iter().map(|r| r.4))
            .string("label", rows.iter().map(|_| "x".to_string()))
            .build()
            .unwrap();
        InputTable {
            stage: "grid".into(),
            instance: "grid[gamma=0]".into(),
            params: json!({"b": [1]}),
            coords: Map::from_iter([("gamma".to_string(), json!(0))]),
            table,
        }
    }

    fn l_order(loc: f64, c: f64) -> f64 {
        1.5 + 0.25 * loc + 0.1 * c.log10()
    }

    fn inputs(tables: Vec<InputTable>) -> Inputs {
        Inputs::new([("grids".to_string(), tables)].into())
    }

    fn params(maps: Vec<MapSpec>) -> HeatmapFigureParams {
        let p = HeatmapFigureParams {
            title: Some("test".into()),
            columns: 2,
            maps,
        };
        p.validate().unwrap();
        p
    }

    fn active(value: &str) -> MapSpec {
        MapSpec {
            letter: Some("a".into()),
            title: "active".into(),
            filter: Map::from_iter([("b_pt".to_string(), json!(1))]),
            value: value.into(),
            ..Default::default()
        }
    }

    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
        b.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .as_any()
            .downcast_ref::<T>()
            .unwrap()
    }

    #[test]
    fn heatmap_lists_every_cell_in_grid_order_with_its_source_row() {
        let mut pd = active("pd");
        pd.letter = Some("b".into());
        let p = params(vec![active("l_order"), pd]);
        let (t, _, infos) = render(&p, &inputs(vec![grid_input()])).unwrap();
        // Two maps of 3 x 2 cells.
        assert_eq!(t.num_rows(), 12);
        assert_eq!((infos[0].nx, infos[0].ny, infos[0].missing), (3, 2, 0));
        assert_eq!(infos[0].z_range, (1.0, 2.0));
        assert_eq!(infos[1].z_range, (-1.0, 0.0));
        let (x, y, v) = (
            col::<Float64Array>(&t, "x"),
            col::<Float64Array>(&t, "y"),
            col::<Float64Array>(&t, "value"),
        );
        let (map, src, row) = (
            col::<StringArray>(&t, "map"),
            col::<StringArray>(&t, "source"),
            col::<UInt64Array>(&t, "source_row"),
        );
        // Cell (ix, iy) of map a is row iy * nx + ix: y = c outer, x inner.
        for (ix, loc) in [-1.0, 0.0, 1.0].into_iter().enumerate() {
            for (iy, c) in [0.01, 1.0].into_iter().enumerate() {
                let k = iy * 3 + ix;
                assert_eq!((map.value(k), x.value(k), y.value(k)), ("a", loc, c));
                assert_eq!(v.value(k), l_order(loc, c));
                // Input rows are (loc, c, b_pt) nested; b_pt = 1 is odd.
                assert_eq!(row.value(k) as usize, (ix * 2 + iy) * 2 + 1);
                assert_eq!(src.value(k), "grid[gamma=0]");
                let k = 6 + k;
                assert_eq!(map.value(k), "b");
                assert_eq!(v.value(k), -1.0 / (3.0 - loc));
            }
        }
    }

    #[test]
    fn heatmap_where_reads_coordinates_and_params() {
        let mut m = active("l_order");
        m.filter.insert("gamma".into(), json!(0.0));
        m.filter.insert("b".into(), json!([1]));
        let (t, _, _) = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap();
        assert_eq!(t.num_rows(), 6);
    }

    #[test]
    fn heatmap_bad_filters_and_columns_are_named() {
        let mut m = active("l_order");
        m.letter = Some("q".into());
        m.filter.insert("b_pt".into(), json!(7));
        let e = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(
            e.message.contains("map q") && e.message.contains("\"b_pt\":7"),
            "{}",
            e.message
        );

        let e = render(&params(vec![active("l_ordr")]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(
            e.message.contains("map a")
                && e.message.contains("grid[gamma=0]")
                && e.message.contains("`l_ordr`"),
            "{}",
            e.message
        );
        let e = render(&params(vec![active("label")]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(e.message.contains("not numeric"), "{}", e.message);

        let mut m = active("l_order");
        m.stages = vec!["nope".into()];
        let e = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(e.message.contains("`nope`"), "{}", e.message);

        let e = render(&params(vec![active("l_order")]), &Inputs::default()).unwrap_err();
        assert!(e.message.contains("grids"), "{}", e.message);
    }

    #[test]
    fn heatmap_refuses_ambiguous_and_incomplete_grids() {
        // Without the b_pt filter, active and inactive rows share cells.
        let mut m = active("pd");
        m.filter.clear();
        let e = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(
            e.message.contains("map a") && e.message.contains("two different values"),
            "{}",
            e.message
        );
        // l_order does not depend on b_pt here, so the duplicates agree.
        let mut m = active("l_order");
        m.filter.clear();
        let (t, _, _) = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap();
        assert_eq!(t.num_rows(), 6);

        // One cell missing: an error, or grey with allow_missing.
        let mut g = grid_input();
        g.table = g.table.slice(0, 11); // drops (loc 1, c 1, b_pt 1)
        let e = render(&params(vec![active("l_order")]), &inputs(vec![g.clone()])).unwrap_err();
        assert!(
            e.message.contains("1 of the 6 cells are empty"),
            "{}",
            e.message
        );
        let mut m = active("l_order");
        m.allow_missing = true;
        let (t, r, infos) = render(&params(vec![m]), &inputs(vec![g])).unwrap();
        assert_eq!((t.num_rows(), infos[0].missing), (5, 1));
        assert!(r.png.starts_with(b"\x89PNG"));

        // A log axis refuses non-positive centres.
        let mut m = active("l_order");
        m.log_x = true;
        let e = render(&params(vec![m]), &inputs(vec![grid_input()])).unwrap_err();
        assert!(e.message.contains("log axis"), "{}", e.message);
    }

    #[test]
    fn heatmap_png_note_is_a_png() {
        let p = params(vec![active("l_order"), active("pd")]);
        let mut ctx = Context::default();
        let t = HeatmapFigure::compute(&p, &inputs(vec![grid_input()]), &mut ctx).unwrap();
        assert_eq!(t.num_rows(), 12);
        // The notes are engine-private; their Debug form is the one view
        // this crate has of them.
        let dbg = format!("{ctx:?}");
        let start = dbg
            .find("\"png_base64\": String(\"")
            .expect("png_base64 note")
            + "\"png_base64\": String(\"".len();
        let b64 = &dbg[start..start + dbg[start..].find('"').unwrap()];
        let png = BASE64.decode(b64).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(dbg.contains("\"svg\": String(\"<svg"));
    }

    #[test]
    fn heatmap_params_are_validated_with_ranges() {
        let p = HeatmapFigureParams {
            columns: 0,
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "columns");
        let p = HeatmapFigureParams {
            maps: vec![],
            ..Default::default()
        };
        assert_eq!(p.validate().unwrap_err().field, "maps");
        let m = MapSpec {
            z_range: Some([1.0, 1.0]),
            ..Default::default()
        };
        let p = HeatmapFigureParams {
            maps: vec![MapSpec::default(), m],
            ..Default::default()
        };
        let e = p.validate().unwrap_err();
        assert_eq!(e.field, "maps[1].z_range");
        assert!(e.message.contains("lo < hi"), "{}", e.message);
        HeatmapFigureParams::default().validate().unwrap();
        // Typos are errors.
        assert!(
            serde_json::from_value::<HeatmapFigureParams>(json!({"maps": [{"vlaue": "pd"}]}))
                .is_err()
        );
        // Data-range colour scale for other columns; a flat map still gets
        // a valid range.
        assert_eq!(default_z_range("d", &[0.5, f64::NAN, 2.0]), (0.5, 2.0));
        assert_eq!(default_z_range("d", &[3.0]), (2.5, 3.5));
    }

    #[test]
    fn heatmap_centres_merge_rounding_differences() {
        let c = centres(vec![1e-3, 1e-3 * (1.0 + 1e-15), 1e-2, 1e-3]);
        assert_eq!(c, vec![1e-3, 1e-2]);
        assert_eq!(index_of(&c, 1e-3 * (1.0 + 1e-15)), Some(0));
        assert_eq!(index_of(&c, 2e-3), None);
    }
}
