//! Pure figure rendering for ptft: plain data in, PNG bytes and SVG text out.
//!
//! Text is drawn with the embedded DejaVu Sans font (registered with plotters'
//! `ab_glyph` font table on first use), so rendering needs no system fonts and
//! is byte-for-byte deterministic for the same input.
//!
//! * [`render_figure`] draws a grid of line/point panels ([`Figure`]).
//! * [`render_heatmaps`] draws a grid of heatmaps, each with a colour bar.
//! * [`colour_for`] maps a colour key to a fixed palette colour.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, text_anchor, FontStyle, RGBColor};
use serde::{Deserialize, Serialize};

const FONT_REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const FONT_BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
const FONT: &str = "sans-serif";

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesKind {
    /// A polyline through the points in the given order.
    Line,
    /// Filled markers, with vertical error bars when `y_err` is given.
    Points,
}

/// One data series of a [`Panel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    pub kind: SeriesKind,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    /// Standard errors, drawn as vertical error bars (`y ± err`) on `Points`
    /// series; ignored for `Line` series. Must have the length of `y`.
    pub y_err: Option<Vec<f64>>,
    /// Series with the same key get the same colour ([`colour_for`]) in every
    /// panel and figure. An empty key falls back to `name`.
    pub color_key: String,
}

/// One plot of a [`Figure`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Panel {
    /// Panel letter ("a", "b", …) drawn bold at the top-left.
    pub letter: Option<String>,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Drawn as the first, unmarked line of the legend.
    pub legend_title: Option<String>,
}

/// A grid of panels, filled row by row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub title: Option<String>,
    pub panels: Vec<Panel>,
    /// Number of grid columns (at least 1); rows follow from the panel count.
    pub columns: usize,
    /// Size of one panel in pixels.
    pub panel_width: u32,
    pub panel_height: u32,
}

/// A map `z(x, y)` on a rectangular grid of cell centres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    /// `nx` strictly increasing cell centres.
    pub x: Vec<f64>,
    /// `ny` strictly increasing cell centres.
    pub y: Vec<f64>,
    /// `ny * nx` values, row-major with `y` as the outer index:
    /// `z[iy * nx + ix]`. Non-finite values are drawn as grey "missing" cells.
    pub z: Vec<f64>,
    /// Colour-bar label.
    pub z_label: String,
    /// Colour scale limits (`lo < hi`); values outside are clamped.
    pub z_range: (f64, f64),
}

/// A rendered figure: the same drawing as PNG and as SVG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub png: Vec<u8>,
    pub svg: String,
    pub width: u32,
    pub height: u32,
}

/// Why a figure could not be rendered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FigureError {
    #[error("figure has no panels")]
    NoPanels,
    #[error("no heatmaps to render")]
    NoHeatmaps,
    #[error("invalid layout: {0}")]
    Layout(String),
    #[error("panel `{panel}`, series `{series}`: x has {x_len} values but y has {y_len}")]
    LengthMismatch {
        panel: String,
        series: String,
        x_len: usize,
        y_len: usize,
    },
    #[error("panel `{panel}`, series `{series}`: y_err has {err_len} values but y has {y_len}")]
    ErrorLengthMismatch {
        panel: String,
        series: String,
        err_len: usize,
        y_len: usize,
    },
    #[error("panel `{panel}`, series `{series}`: {axis}[{index}] = {value} is not finite")]
    NonFinite {
        panel: String,
        series: String,
        axis: &'static str,
        index: usize,
        value: f64,
    },
    #[error(
        "panel `{panel}`, series `{series}`: {axis}[{index}] = {value} is not positive, \
         but the {axis} axis is logarithmic"
    )]
    NonPositiveOnLogAxis {
        panel: String,
        series: String,
        axis: &'static str,
        index: usize,
        value: f64,
    },
    #[error("panel `{panel}`, series `{series}`: y_err[{index}] = {value} is negative")]
    NegativeError {
        panel: String,
        series: String,
        index: usize,
        value: f64,
    },
    #[error("heatmap `{title}`: {message}")]
    InvalidHeatmap { title: String, message: String },
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("drawing failed: {0}")]
    Backend(String),
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

fn backend_err<E: std::fmt::Display>(e: E) -> FigureError {
    FigureError::Backend(e.to_string())
}

fn ensure_fonts() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, FONT_REGULAR).is_ok()
            && register_font(FONT, FontStyle::Bold, FONT_BOLD).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(FigureError::Font)
    }
}

// ---------------------------------------------------------------------------
// Colours

/// Fixed, colour-blind-friendly-ish palette (Tableau 10 plus two extras).
const PALETTE: [RGBColor; 12] = [
    RGBColor(31, 119, 180),  // blue
    RGBColor(255, 127, 14),  // orange
    RGBColor(44, 160, 44),   // green
    RGBColor(214, 39, 40),   // red
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
    RGBColor(227, 119, 194), // pink
    RGBColor(127, 127, 127), // grey
    RGBColor(188, 189, 34),  // olive
    RGBColor(23, 190, 207),  // cyan
    RGBColor(0, 0, 128),     // navy
    RGBColor(0, 128, 128),   // teal
];

/// The colour of a colour key: a fixed palette entry chosen by a stable hash
/// (FNV-1a) of the key, so the same key has the same colour in every panel,
/// figure and run. With a finite palette, distinct keys can share a colour;
/// a caller that knows all its keys can avoid that with explicit slots:
/// `"slot:N"` is palette entry `N` (mod the palette size).
pub fn colour_for(key: &str) -> RGBColor {
    if let Some(n) = key
        .strip_prefix("slot:")
        .and_then(|n| n.parse::<usize>().ok())
    {
        return PALETTE[n % PALETTE.len()];
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Fold the high bits in: FNV's low bits mix poorly for short keys.
    h ^= h >> 32;
    PALETTE[(h % PALETTE.len() as u64) as usize]
}

/// Viridis-like colour map on `t ∈ [0, 1]` (piecewise-linear through
/// matplotlib's viridis at nine anchors).
pub fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let s = t * (ANCHORS.len() - 1) as f64;
    let i = (s.floor() as usize).min(ANCHORS.len() - 2);
    let f = s - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + f * (f64::from(q) - f64::from(p))).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

// ---------------------------------------------------------------------------
// Validation and ranges

fn validate_figure(f: &Figure) -> Result<(), FigureError> {
    if f.panels.is_empty() {
        return Err(FigureError::NoPanels);
    }
    if f.columns == 0 {
        return Err(FigureError::Layout("columns must be at least 1".into()));
    }
    if f.panel_width < 100 || f.panel_height < 100 {
        return Err(FigureError::Layout(format!(
            "panel size {}x{} is below the 100x100 minimum",
            f.panel_width, f.panel_height
        )));
    }
    for p in &f.panels {
        for s in &p.series {
            validate_series(p, s)?;
        }
    }
    Ok(())
}

fn validate_series(p: &Panel, s: &Series) -> Result<(), FigureError> {
    let ids = || (p.title.clone(), s.name.clone());
    if s.x.len() != s.y.len() {
        let (panel, series) = ids();
        return Err(FigureError::LengthMismatch {
            panel,
            series,
            x_len: s.x.len(),
            y_len: s.y.len(),
        });
    }
    for (axis, values, log) in [("x", &s.x, p.log_x), ("y", &s.y, p.log_y)] {
        for (index, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                let (panel, series) = ids();
                return Err(FigureError::NonFinite {
                    panel,
                    series,
                    axis,
                    index,
                    value,
                });
            }
            if log && value <= 0.0 {
                let (panel, series) = ids();
                return Err(FigureError::NonPositiveOnLogAxis {
                    panel,
                    series,
                    axis,
                    index,
                    value,
                });
            }
        }
    }
    if let Some(err) = &s.y_err {
        if err.len() != s.y.len() {
            let (panel, series) = ids();
            return Err(FigureError::ErrorLengthMismatch {
                panel,
                series,
                err_len: err.len(),
                y_len: s.y.len(),
            });
        }
        for (index, &value) in err.iter().enumerate() {
            if !value.is_finite() {
                let (panel, series) = ids();
                return Err(FigureError::NonFinite {
                    panel,
                    series,
                    axis: "y_err",
                    index,
                    value,
                });
            }
            if value < 0.0 {
                let (panel, series) = ids();
                return Err(FigureError::NegativeError {
                    panel,
                    series,
                    index,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Error-bar extent `(lo, hi)` of `y ± err`; on a log axis the lower end is
/// clamped to a positive fraction of `y`.
fn error_bar(y: f64, err: f64, log: bool) -> (f64, f64) {
    let lo = y - err;
    let lo = if log { lo.max(y * 0.05) } else { lo };
    (lo, y + err)
}

/// Data range with a 5% margin (in log10 space for log axes).
fn padded_range(values: impl Iterator<Item = f64>, log: bool) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        let v = if log { v.log10() } else { v };
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        // No data: a default frame.
        return if log { 1.0..10.0 } else { 0.0..1.0 };
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else if log {
        0.5
    } else {
        (lo.abs() * 0.1).max(1.0)
    };
    let (lo, hi) = (lo - pad, hi + pad);
    if log {
        10f64.powf(lo)..10f64.powf(hi)
    } else {
        lo..hi
    }
}

fn panel_ranges(p: &Panel) -> (Range<f64>, Range<f64>) {
    let xr = padded_range(p.series.iter().flat_map(|s| s.x.iter().copied()), p.log_x);
    let ys = p.series.iter().flat_map(|s| {
        let errs: Vec<f64> = match (&s.y_err, s.kind) {
            (Some(e), SeriesKind::Points) => e.clone(),
            _ => vec![0.0; s.y.len()],
        };
        s.y.iter().zip(errs).flat_map(|(&y, e)| {
            let (lo, hi) = error_bar(y, e, p.log_y);
            [lo, hi]
        })
    });
    let yr = padded_range(ys, p.log_y);
    (xr, yr)
}

/// The legend corner with the fewest data points near it.
fn legend_corner(p: &Panel, xr: &Range<f64>, yr: &Range<f64>) -> SeriesLabelPosition {
    let norm = |v: f64, r: &Range<f64>, log: bool| {
        if log {
            (v.log10() - r.start.log10()) / (r.end.log10() - r.start.log10())
        } else {
            (v - r.start) / (r.end - r.start)
        }
    };
    // (position, x on the right?, y at the top?)
    let corners = [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let mut counts = [0usize; 4];
    for s in &p.series {
        for (&x, &y) in s.x.iter().zip(&s.y) {
            let (u, v) = (norm(x, xr, p.log_x), norm(y, yr, p.log_y));
            for (c, &(_, right, top)) in counts.iter_mut().zip(&corners) {
                let in_x = if right { u > 0.5 } else { u < 0.5 };
                let in_y = if top { v > 0.55 } else { v < 0.45 };
                if in_x && in_y {
                    *c += 1;
                }
            }
        }
    }
    let best = (0..4).min_by_key(|&i| counts[i]).unwrap_or(0);
    corners[best].0.clone()
}

/// Whether a log axis should label all its ticks in scientific notation
/// (so one axis does not mix `1000` and `1e4`).
fn sci_axis(r: &Range<f64>, log: bool) -> bool {
    log && (r.start < 1e-3 || r.end > 1e4)
}

/// Compact tick label: plain decimals for moderate magnitudes, else (or when
/// `sci`) `1e-6` style scientific notation.
fn fmt_tick(v: f64, sci: bool) -> String {
    fn trim(s: &str) -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    }
    let a = v.abs();
    // Round-off next to zero on a linear axis prints as 0; a log axis never
    // has a zero tick, so 1e-13 there is a real value.
    if v == 0.0 || (!sci && a < 1e-12) {
        "0".into()
    } else if !sci && (1e-3..1e4).contains(&a) {
        trim(&format!("{v:.4}"))
    } else {
        let s = format!("{v:.2e}");
        match s.split_once('e') {
            Some((m, e)) => format!("{}e{}", trim(m), e),
            None => s,
        }
    }
}

// ---------------------------------------------------------------------------
// Line / point figures

const TITLE_HEIGHT: u32 = 40;

fn figure_size(f: &Figure) -> (u32, u32) {
    let rows = f.panels.len().div_ceil(f.columns) as u32;
    let cols = f.columns.min(f.panels.len()) as u32;
    let title = if f.title.is_some() { TITLE_HEIGHT } else { 0 };
    (cols * f.panel_width, rows * f.panel_height + title)
}

/// Renders a grid of panels to PNG and SVG.
pub fn render_figure(f: &Figure) -> Result<Rendered, FigureError> {
    validate_figure(f)?;
    ensure_fonts()?;
    let (width, height) = figure_size(f);
    render_both(width, height, &FigurePicture(f))
}

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    f: &Figure,
) -> Result<(), FigureError> {
    root.fill(&WHITE).map_err(backend_err)?;
    let body = match &f.title {
        Some(t) => {
            let (top, body) = root.split_vertically(TITLE_HEIGHT);
            top.draw_text(
                t,
                &(FONT, 22)
                    .into_font()
                    .color(&BLACK)
                    .pos(text_anchor::Pos::new(
                        text_anchor::HPos::Center,
                        text_anchor::VPos::Center,
                    )),
                (top.dim_in_pixel().0 as i32 / 2, TITLE_HEIGHT as i32 / 2),
            )
            .map_err(backend_err)?;
            body
        }
        None => root,
    };
    let rows = f.panels.len().div_ceil(f.columns);
    let cols = f.columns.min(f.panels.len());
    let cells = body.split_evenly((rows, cols));
    for (p, area) in f.panels.iter().zip(cells.iter()) {
        let (xr, yr) = panel_ranges(p);
        let corner = legend_corner(p, &xr, &yr);
        let sci = (sci_axis(&xr, p.log_x), sci_axis(&yr, p.log_y));
        match (p.log_x, p.log_y) {
            (false, false) => draw_panel(area, p, xr, yr, sci, corner),
            (true, false) => draw_panel(area, p, xr.log_scale(), yr, sci, corner),
            (false, true) => draw_panel(area, p, xr, yr.log_scale(), sci, corner),
            (true, true) => draw_panel(area, p, xr.log_scale(), yr.log_scale(), sci, corner),
        }?;
        if let Some(letter) = &p.letter {
            let font = FontDesc::new(FontFamily::SansSerif, 24.0, FontStyle::Bold);
            area.draw_text(letter, &font.color(&BLACK), (10, 8))
                .map_err(backend_err)?;
        }
    }
    Ok(())
}

fn draw_panel<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    x_coord: X,
    y_coord: Y,
    sci: (bool, bool),
    corner: SeriesLabelPosition,
) -> Result<(), FigureError>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_coord, y_coord)
        .map_err(backend_err)?;
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .x_label_formatter(&|v| fmt_tick(*v, sci.0))
        .y_label_formatter(&|v| fmt_tick(*v, sci.1))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(backend_err)?;

    if let Some(t) = &p.legend_title {
        chart
            .draw_series(std::iter::empty::<EmptyElement<(f64, f64), DB>>())
            .map_err(backend_err)?
            .label(t.as_str())
            .legend(|(x, y)| EmptyElement::at((x, y)));
    }
    let mut any_label = p.legend_title.is_some();
    for s in &p.series {
        let key = if s.color_key.is_empty() {
            &s.name
        } else {
            &s.color_key
        };
        let colour = colour_for(key);
        let pts: Vec<(f64, f64)> = s.x.iter().copied().zip(s.y.iter().copied()).collect();
        let anno = match s.kind {
            SeriesKind::Line => {
                let anno = chart
                    .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
                    .map_err(backend_err)?;
                anno.legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                })
            }
            SeriesKind::Points => {
                if let Some(err) = &s.y_err {
                    chart
                        .draw_series(pts.iter().zip(err).map(|(&(x, y), &e)| {
                            let (lo, hi) = error_bar(y, e, p.log_y);
                            ErrorBar::new_vertical(x, lo, y, hi, colour.stroke_width(1), 8)
                        }))
                        .map_err(backend_err)?;
                }
                let anno = chart
                    .draw_series(
                        pts.iter()
                            .map(|&pt| Circle::new(pt, 4, colour.filled().stroke_width(1))),
                    )
                    .map_err(backend_err)?;
                anno.legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()))
            }
        };
        if !s.name.is_empty() {
            anno.label(s.name.as_str());
            any_label = true;
        }
    }
    if any_label {
        chart
            .configure_series_labels()
            .position(corner)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .margin(8)
            .draw()
            .map_err(backend_err)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Heatmaps

const HEATMAP_WIDTH: u32 = 600;
const HEATMAP_HEIGHT: u32 = 440;
const COLOUR_BAR_WIDTH: u32 = 110;
const MISSING: RGBColor = RGBColor(200, 200, 200);

fn validate_heatmap(m: &Heatmap) -> Result<(), FigureError> {
    let bad = |message: String| FigureError::InvalidHeatmap {
        title: m.title.clone(),
        message,
    };
    for (axis, c, log) in [("x", &m.x, m.log_x), ("y", &m.y, m.log_y)] {
        if c.is_empty() {
            return Err(bad(format!("no {axis} centres")));
        }
        for (i, &v) in c.iter().enumerate() {
            if !v.is_finite() {
                return Err(bad(format!("{axis}[{i}] = {v} is not finite")));
            }
            if log && v <= 0.0 {
                return Err(bad(format!(
                    "{axis}[{i}] = {v} is not positive, but the {axis} axis is logarithmic"
                )));
            }
            if i > 0 && v <= c[i - 1] {
                return Err(bad(format!(
                    "{axis} centres are not strictly increasing at {i}"
                )));
            }
        }
    }
    if m.z.len() != m.x.len() * m.y.len() {
        return Err(bad(format!(
            "z has {} values, expected ny*nx = {}*{} = {}",
            m.z.len(),
            m.y.len(),
            m.x.len(),
            m.x.len() * m.y.len()
        )));
    }
    let (lo, hi) = m.z_range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(bad(format!("z_range ({lo}, {hi}) is not a finite lo < hi")));
    }
    Ok(())
}

/// Cell edges around strictly increasing centres (midpoints, geometric on log
/// axes; the outer edges mirror the neighbouring half-width).
fn cell_edges(c: &[f64], log: bool) -> Vec<f64> {
    let t: Vec<f64> = c.iter().map(|&v| if log { v.log10() } else { v }).collect();
    let n = t.len();
    let mut e = Vec::with_capacity(n + 1);
    if n == 1 {
        let h = if log {
            0.5
        } else {
            (t[0].abs() * 0.1).max(0.5)
        };
        e.extend([t[0] - h, t[0] + h]);
    } else {
        e.push(t[0] - (t[1] - t[0]) / 2.0);
        e.extend(t.windows(2).map(|w| (w[0] + w[1]) / 2.0));
        e.push(t[n - 1] + (t[n - 1] - t[n - 2]) / 2.0);
    }
    if log {
        e.iter().map(|v| 10f64.powf(*v)).collect()
    } else {
        e
    }
}

/// Renders heatmaps in a grid of `columns` columns, each with its own colour
/// bar (viridis-like, over `z_range`).
pub fn render_heatmaps(
    title: &str,
    maps: &[Heatmap],
    columns: usize,
) -> Result<Rendered, FigureError> {
    if maps.is_empty() {
        return Err(FigureError::NoHeatmaps);
    }
    if columns == 0 {
        return Err(FigureError::Layout("columns must be at least 1".into()));
    }
    for m in maps {
        validate_heatmap(m)?;
    }
    ensure_fonts()?;
    let rows = maps.len().div_ceil(columns) as u32;
    let cols = columns.min(maps.len()) as u32;
    let title_h = if title.is_empty() { 0 } else { TITLE_HEIGHT };
    let (width, height) = (cols * HEATMAP_WIDTH, rows * HEATMAP_HEIGHT + title_h);
    render_both(
        width,
        height,
        &HeatmapsPicture {
            title,
            maps,
            rows: rows as usize,
            cols: cols as usize,
        },
    )
}

fn draw_heatmap<DB: DrawingBackend>(
    cell: &DrawingArea<DB, Shift>,
    m: &Heatmap,
) -> Result<(), FigureError> {
    let area = cell.titled(&m.title, (FONT, 17)).map_err(backend_err)?;
    let w = area.dim_in_pixel().0;
    let (main, bar) = area.split_horizontally(w.saturating_sub(COLOUR_BAR_WIDTH));
    let xe = cell_edges(&m.x, m.log_x);
    let ye = cell_edges(&m.y, m.log_y);
    let xr = xe[0]..xe[xe.len() - 1];
    let yr = ye[0]..ye[ye.len() - 1];
    match (m.log_x, m.log_y) {
        (false, false) => draw_heatmap_cells(&main, m, xr, yr, &xe, &ye),
        (true, false) => draw_heatmap_cells(&main, m, xr.log_scale(), yr, &xe, &ye),
        (false, true) => draw_heatmap_cells(&main, m, xr, yr.log_scale(), &xe, &ye),
        (true, true) => draw_heatmap_cells(&main, m, xr.log_scale(), yr.log_scale(), &xe, &ye),
    }?;

    let (lo, hi) = m.z_range;
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(10)
        .margin_bottom(10 + 48)
        .margin_right(8)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(backend_err)?;
    cb.configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .y_desc(m.z_label.as_str())
        .y_label_formatter(&|v| fmt_tick(*v, false))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(backend_err)?;
    const STEPS: usize = 128;
    cb.draw_series((0..STEPS).map(|i| {
        let a = lo + (hi - lo) * i as f64 / STEPS as f64;
        let b = lo + (hi - lo) * (i + 1) as f64 / STEPS as f64;
        let t = (i as f64 + 0.5) / STEPS as f64;
        Rectangle::new([(0.0, a), (1.0, b)], viridis(t).filled())
    }))
    .map_err(backend_err)?;
    Ok(())
}

fn draw_heatmap_cells<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    m: &Heatmap,
    x_coord: X,
    y_coord: Y,
    xe: &[f64],
    ye: &[f64],
) -> Result<(), FigureError>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_coord, y_coord)
        .map_err(backend_err)?;
    let nx = m.x.len();
    let sci_x = sci_axis(&(xe[0]..xe[xe.len() - 1]), m.log_x);
    let sci_y = sci_axis(&(ye[0]..ye[ye.len() - 1]), m.log_y);
    let (lo, hi) = m.z_range;
    chart
        .draw_series((0..m.y.len()).flat_map(|iy| {
            (0..nx).map(move |ix| {
                let z = m.z[iy * nx + ix];
                let colour = if z.is_finite() {
                    viridis((z - lo) / (hi - lo))
                } else {
                    MISSING
                };
                Rectangle::new(
                    [(xe[ix], ye[iy]), (xe[ix + 1], ye[iy + 1])],
                    colour.filled(),
                )
            })
        }))
        .map_err(backend_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .x_desc(m.x_label.as_str())
        .y_desc(m.y_label.as_str())
        .x_label_formatter(&|v| fmt_tick(*v, sci_x))
        .y_label_formatter(&|v| fmt_tick(*v, sci_y))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(backend_err)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Backends

/// Draws the same picture on a bitmap (encoded as PNG) and on an SVG string.
trait Picture {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), FigureError>;
}

struct FigurePicture<'a>(&'a Figure);

impl Picture for FigurePicture<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        draw_figure(root, self.0)
    }
}

struct HeatmapsPicture<'a> {
    title: &'a str,
    maps: &'a [Heatmap],
    rows: usize,
    cols: usize,
}

impl Picture for HeatmapsPicture<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        root.fill(&WHITE).map_err(backend_err)?;
        let body = if self.title.is_empty() {
            root
        } else {
            root.titled(self.title, (FONT, 22)).map_err(backend_err)?
        };
        let cells = body.split_evenly((self.rows, self.cols));
        for (m, cell) in self.maps.iter().zip(cells.iter()) {
            draw_heatmap(cell, m)?;
        }
        Ok(())
    }
}

fn render_both<P: Picture>(width: u32, height: u32, draw: &P) -> Result<Rendered, FigureError> {
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw.draw(root.clone())?;
        root.present().map_err(backend_err)?;
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw.draw(root.clone())?;
        root.present().map_err(backend_err)?;
    }
    let png = encode_png(&rgb, width, height)?;
    Ok(Rendered {
        png,
        svg,
        width,
        height,
    })
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, FigureError> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| FigureError::Png(e.to_string()))?;
        w.write_image_data(rgb)
            .map_err(|e| FigureError::Png(e.to_string()))?;
        w.finish().map_err(|e| FigureError::Png(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(fmt_tick(1e-6, false), "1e-6");
        assert_eq!(fmt_tick(1e-6 * (1.0 - f64::EPSILON), false), "1e-6");
        assert_eq!(fmt_tick(0.30000000000000004, false), "0.3");
        assert_eq!(fmt_tick(2.5e5, false), "2.5e5");
        assert_eq!(fmt_tick(10.0, false), "10");
        assert_eq!(fmt_tick(10.0, true), "1e1");
        assert_eq!(fmt_tick(0.0, false), "0");
        // Real values on a log axis, however small, are never shown as 0.
        assert_eq!(fmt_tick(1e-13, true), "1e-13");
        assert_eq!(fmt_tick(3e-17, false), "0");
    }

    #[test]
    fn padded_log_range_is_padded_in_log_space() {
        let r = padded_range([1e-4, 1.0].into_iter(), true);
        assert!((r.start.log10() + 4.2).abs() < 1e-9, "{r:?}");
        assert!((r.end.log10() - 0.2).abs() < 1e-9, "{r:?}");
        let r = padded_range([2.0, 2.0].into_iter(), false);
        assert!(r.start < 2.0 && r.end > 2.0);
    }

    #[test]
    fn log_error_bars_stay_positive() {
        let (lo, hi) = error_bar(1.0, 5.0, true);
        assert!(lo > 0.0 && hi == 6.0);
        assert_eq!(error_bar(1.0, 5.0, false), (-4.0, 6.0));
    }

    #[test]
    fn cell_edges_bracket_centres() {
        let e = cell_edges(&[1.0, 10.0, 100.0], true);
        assert_eq!(e.len(), 4);
        assert!((e[1] - 10f64.sqrt()).abs() < 1e-9);
        assert!((e[0] - 0.1f64.sqrt()).abs() < 1e-9);
        assert_eq!(cell_edges(&[0.0, 1.0], false), vec![-0.5, 0.5, 1.5]);
    }

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }
}
