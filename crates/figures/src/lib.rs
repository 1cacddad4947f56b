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
use plotters::element::DashedPathElement;
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

/// Dash pattern of a series' line (and of its legend sample).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LineStyle {
    #[default]
    Solid,
    /// Long dashes (8 px on, 5 px off).
    Dashed,
    /// Short dashes that read as dots (2 px on, 4 px off).
    Dotted,
}

impl LineStyle {
    /// `(dash, gap)` lengths in pixels, `None` for a solid line.
    fn dash_pattern(self) -> Option<(i32, i32)> {
        match self {
            LineStyle::Solid => None,
            LineStyle::Dashed => Some((8, 5)),
            LineStyle::Dotted => Some((2, 4)),
        }
    }
}

fn default_true() -> bool {
    true
}

/// One data series of a [`Panel`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend label. An empty name gets no legend entry.
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
    /// Dash pattern of the line of a `Line` series. `Points` series keep
    /// their markers and error bars; for them the style only shapes the
    /// legend sample (a line in this style through a marker), so one legend
    /// entry can stand for a theory line and its points of the same colour.
    /// Absent in serialised data: `Solid`.
    #[serde(default)]
    pub style: LineStyle,
    /// Whether the series gets a legend entry; it is drawn either way.
    /// Absent in serialised data: `true`.
    #[serde(default = "default_true")]
    pub in_legend: bool,
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
    /// A short remark (e.g. "points: empirical mean ± 1 SE") drawn in a small
    /// font at the bottom of the legend column, wrapped to its width.
    /// Absent in serialised data: `None`.
    #[serde(default)]
    pub note: Option<String>,
}

/// A grid of panels, filled row by row.
///
/// Each panel's legend sits in a column to the right of its plot, outside
/// the axes, so it never covers a curve. All panels of a figure share one
/// legend-column width: that of the widest legend (title, labels, and the
/// note up to 200 px of text), clamped to 110..=320 px, and zero when no
/// panel has a legend entry or note. Longer labels are cut with "…". The
/// rendered figure is therefore `columns × (panel_width + legend width)`
/// pixels wide (see [`Rendered::width`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub title: Option<String>,
    pub panels: Vec<Panel>,
    /// Number of grid columns (at least 1); rows follow from the panel count.
    pub columns: usize,
    /// Size in pixels of one panel's plot: caption, axes, tick labels and
    /// plotting area, *without* its legend column (at least 100×100).
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
/// Largest line/point figure in pixels (its RGB buffer is 3 bytes a pixel).
const MAX_PIXELS: u64 = 1 << 28;

// Legend column geometry, in pixels.
const LEGEND_FONT: f64 = 13.0;
const NOTE_FONT: f64 = 11.0;
const LEGEND_MIN_WIDTH: u32 = 110;
const LEGEND_MAX_WIDTH: u32 = 320;
const LEGEND_PAD_LEFT: u32 = 10;
const LEGEND_PAD_RIGHT: u32 = 8;
/// Three full dashes (8 on, 5 off) fit a sample: 8 + 5 + 8 + 5 + 8.
const SAMPLE_WIDTH: u32 = 34;
const SAMPLE_GAP: u32 = 7;
/// Indent of an entry's label: past the line/marker sample.
const LABEL_INDENT: u32 = LEGEND_PAD_LEFT + SAMPLE_WIDTH + SAMPLE_GAP;
const LEGEND_ROW: u32 = 18;
/// Rows shrink (with the font) down to this height when a legend is long.
const LEGEND_MIN_ROW: u32 = 12;
const NOTE_ROW: u32 = 14;
const NOTE_MAX_LINES: usize = 4;
/// A note widens the legend column up to this text width, then wraps.
const NOTE_MAX_TEXT: u32 = 200;
const NOTE_COLOUR: RGBColor = RGBColor(70, 70, 70);

/// Width in pixels of `text` in the embedded font at `size` (or about 7 px a
/// character at 13 px, should the font fail to measure it).
fn text_width(text: &str, size: f64) -> u32 {
    FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_else(|_| (text.chars().count() as f64 * 0.54 * size).ceil() as u32)
}

/// `text`, cut at the end with "…" to at most `max` pixels wide (empty when
/// not even "…" fits).
fn fit_text(text: &str, max: u32, size: f64) -> String {
    if text_width(text, size) <= max {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let cut = |k: usize| {
        let mut s: String = chars[..k].iter().collect();
        s.truncate(s.trim_end().len());
        s.push('…');
        s
    };
    let fits = |k: usize| text_width(&cut(k), size) <= max;
    if chars.is_empty() || !fits(0) {
        return String::new();
    }
    // Longest prefix that fits (text width grows with the prefix).
    let (mut lo, mut hi) = (0, chars.len() - 1);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    cut(lo)
}

/// Greedy word wrap of `text` into lines at most `max` pixels wide, at most
/// `max_lines` of them (the last one ending in "…" when text was left out).
fn wrap_text(text: &str, max: u32, size: f64, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut left_out = false;
    for word in text.split_whitespace() {
        if cur.is_empty() {
            cur = word.to_string();
            continue;
        }
        let candidate = format!("{cur} {word}");
        if text_width(&candidate, size) <= max {
            cur = candidate;
        } else {
            lines.push(std::mem::replace(&mut cur, word.to_string()));
            if lines.len() == max_lines {
                left_out = true;
                cur.clear();
                break;
            }
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    let mut lines: Vec<String> = lines.iter().map(|l| fit_text(l, max, size)).collect();
    if left_out {
        if let Some(last) = lines.last_mut() {
            if !last.ends_with('…') {
                *last = fit_text(&format!("{last} …"), max, size);
            }
        }
    }
    lines
}

/// The colour of a series: of its `color_key`, else of its name.
fn series_colour(s: &Series) -> RGBColor {
    colour_for(if s.color_key.is_empty() {
        &s.name
    } else {
        &s.color_key
    })
}

/// One legend line: the title (no sample) or a series.
struct LegendEntry<'a> {
    label: &'a str,
    sample: Option<(SeriesKind, LineStyle, RGBColor)>,
}

fn legend_entries(p: &Panel) -> Vec<LegendEntry<'_>> {
    let title = p
        .legend_title
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| LegendEntry {
            label: t,
            sample: None,
        });
    let series = p
        .series
        .iter()
        .filter(|s| s.in_legend && !s.name.is_empty())
        .map(|s| LegendEntry {
            label: &s.name,
            sample: Some((s.kind, s.style, series_colour(s))),
        });
    title.chain(series).collect()
}

fn panel_note(p: &Panel) -> Option<&str> {
    p.note.as_deref().filter(|n| !n.trim().is_empty())
}

/// Width of the legend column `p` needs: 0 without entries or note, else
/// within `LEGEND_MIN_WIDTH..=LEGEND_MAX_WIDTH`.
fn legend_width(p: &Panel) -> u32 {
    let entries = legend_entries(p);
    let note = panel_note(p);
    if entries.is_empty() && note.is_none() {
        return 0;
    }
    let mut content = 0u32;
    for e in &entries {
        let indent = if e.sample.is_some() {
            LABEL_INDENT
        } else {
            LEGEND_PAD_LEFT
        };
        content = content.max(indent.saturating_add(text_width(e.label, LEGEND_FONT)));
    }
    if let Some(n) = note {
        content = content.max(LEGEND_PAD_LEFT + text_width(n, NOTE_FONT).min(NOTE_MAX_TEXT));
    }
    content
        .saturating_add(LEGEND_PAD_RIGHT)
        .clamp(LEGEND_MIN_WIDTH, LEGEND_MAX_WIDTH)
}

/// Pixel layout of a [`Figure`].
#[derive(Debug, Clone, Copy)]
struct FigureLayout {
    rows: usize,
    cols: usize,
    /// Width of every panel's legend column.
    legend_width: u32,
    width: u32,
    height: u32,
}

/// Needs a validated figure (at least one panel and column).
fn figure_layout(f: &Figure) -> Result<FigureLayout, FigureError> {
    let rows = f.panels.len().div_ceil(f.columns);
    let cols = f.columns.min(f.panels.len());
    let legend_width = f.panels.iter().map(legend_width).max().unwrap_or(0);
    let title = if f.title.is_some() { TITLE_HEIGHT } else { 0 };
    let size = (|| {
        let cell = f.panel_width.checked_add(legend_width)?;
        let width = u32::try_from(cols).ok()?.checked_mul(cell)?;
        let height = u32::try_from(rows)
            .ok()?
            .checked_mul(f.panel_height)?
            .checked_add(title)?;
        (u64::from(width) * u64::from(height) <= MAX_PIXELS).then_some((width, height))
    })();
    let (width, height) = size.ok_or_else(|| {
        FigureError::Layout(format!(
            "{rows}x{cols} panels of {}x{} px (plus a {legend_width} px legend column) \
             exceed the {MAX_PIXELS}-pixel limit",
            f.panel_width, f.panel_height
        ))
    })?;
    Ok(FigureLayout {
        rows,
        cols,
        legend_width,
        width,
        height,
    })
}

/// Renders a grid of panels to PNG and SVG. Each panel's legend is drawn in
/// a column right of its plot (see [`Figure`] for the size).
pub fn render_figure(f: &Figure) -> Result<Rendered, FigureError> {
    validate_figure(f)?;
    ensure_fonts()?;
    let layout = figure_layout(f)?;
    render_both(layout.width, layout.height, &FigurePicture(f, layout))
}

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    f: &Figure,
    layout: FigureLayout,
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
    let cells = body.split_evenly((layout.rows, layout.cols));
    for (p, cell) in f.panels.iter().zip(cells.iter()) {
        let (area, legend) = cell.split_horizontally(f.panel_width);
        let (xr, yr) = panel_ranges(p);
        let sci = (sci_axis(&xr, p.log_x), sci_axis(&yr, p.log_y));
        let plot_y = match (p.log_x, p.log_y) {
            (false, false) => draw_panel(&area, p, xr, yr, sci),
            (true, false) => draw_panel(&area, p, xr.log_scale(), yr, sci),
            (false, true) => draw_panel(&area, p, xr, yr.log_scale(), sci),
            (true, true) => draw_panel(&area, p, xr.log_scale(), yr.log_scale(), sci),
        }?;
        if layout.legend_width > 0 {
            draw_legend(&legend, p, plot_y)?;
        }
        if let Some(letter) = &p.letter {
            let font = FontDesc::new(FontFamily::SansSerif, 24.0, FontStyle::Bold);
            area.draw_text(letter, &font.color(&BLACK), (10, 8))
                .map_err(backend_err)?;
        }
    }
    Ok(())
}

/// Draws the axes and series of `p`; returns the vertical pixel range (in
/// backend coordinates) of its plotting area.
fn draw_panel<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    x_coord: X,
    y_coord: Y,
    sci: (bool, bool),
) -> Result<Range<i32>, FigureError>
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

    for s in &p.series {
        let colour = series_colour(s);
        let pts: Vec<(f64, f64)> = s.x.iter().copied().zip(s.y.iter().copied()).collect();
        match s.kind {
            SeriesKind::Line => {
                let stroke = colour.stroke_width(2);
                match s.style.dash_pattern() {
                    None => {
                        chart
                            .draw_series(LineSeries::new(pts, stroke))
                            .map_err(backend_err)?;
                    }
                    Some((dash, gap)) => {
                        // Dashes are measured in pixels, so they look the
                        // same on linear and log axes.
                        chart
                            .draw_series(std::iter::once(DashedPathElement::new(
                                pts, dash, gap, stroke,
                            )))
                            .map_err(backend_err)?;
                    }
                }
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
                chart
                    .draw_series(
                        pts.iter()
                            .map(|&pt| Circle::new(pt, 4, colour.filled().stroke_width(1))),
                    )
                    .map_err(backend_err)?;
            }
        }
    }
    Ok(chart.plotting_area().get_pixel_range().1)
}

/// A legend sample centred vertically on `y`, starting at `x`: a line in the
/// series' dash pattern, with a marker in the middle for `Points` series.
fn draw_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (kind, style, colour): (SeriesKind, LineStyle, RGBColor),
    x: i32,
    y: i32,
) -> Result<(), FigureError> {
    let pts = vec![(x, y), (x + SAMPLE_WIDTH as i32, y)];
    let stroke = colour.stroke_width(2);
    match style.dash_pattern() {
        None => area.draw(&PathElement::new(pts, stroke)),
        Some((dash, gap)) => area.draw(&DashedPathElement::new(pts, dash, gap, stroke)),
    }
    .map_err(backend_err)?;
    if kind == SeriesKind::Points {
        area.draw(&Circle::new(
            (x + SAMPLE_WIDTH as i32 / 2, y),
            4,
            colour.filled().stroke_width(1),
        ))
        .map_err(backend_err)?;
    }
    Ok(())
}

/// Draws the legend of `p` into its column `area`: entries from the top of
/// the plotting area (`plot_y`, backend pixels) down, the note aligned with
/// its bottom. Entries that do not fit even at the smallest row height are
/// summarised as "+N more".
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    plot_y: Range<i32>,
) -> Result<(), FigureError> {
    let width = area.dim_in_pixel().0;
    let base_y = area.get_base_pixel().1;
    let (top, bottom) = (plot_y.start - base_y, plot_y.end - base_y);
    let x0 = LEGEND_PAD_LEFT as i32;
    let text_max = width.saturating_sub(LEGEND_PAD_LEFT + LEGEND_PAD_RIGHT);
    let label_max = width.saturating_sub(LABEL_INDENT + LEGEND_PAD_RIGHT);
    let left = |size: f64, colour: &RGBColor| {
        FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
            .color(colour)
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Left,
                text_anchor::VPos::Center,
            ))
    };

    let note_lines = match panel_note(p) {
        Some(n) => wrap_text(n, text_max, NOTE_FONT, NOTE_MAX_LINES),
        None => Vec::new(),
    };
    let note_h = (note_lines.len() as u32 * NOTE_ROW) as i32;
    let note_style = left(NOTE_FONT, &NOTE_COLOUR);
    for (i, line) in note_lines.iter().enumerate() {
        let y = bottom - note_h + (i as u32 * NOTE_ROW + NOTE_ROW / 2) as i32;
        area.draw(&Text::new(line.as_str(), (x0, y), note_style.clone()))
            .map_err(backend_err)?;
    }

    let entries = legend_entries(p);
    if entries.is_empty() {
        return Ok(());
    }
    let gap = if note_h > 0 { 10 } else { 0 };
    let avail = u32::try_from(bottom - note_h - gap - top).unwrap_or(0);
    let n = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let row = (avail / n).clamp(LEGEND_MIN_ROW, LEGEND_ROW);
    let rows = (avail / row) as usize;
    if rows == 0 {
        return Ok(());
    }
    let shown = if rows >= entries.len() {
        entries.len()
    } else {
        rows - 1
    };
    let size = (f64::from(row) - 4.0).clamp(9.0, LEGEND_FONT);
    let label_style = left(size, &BLACK);
    let row_y = |i: usize| top + (i as u32 * row + row / 2) as i32;
    for (i, e) in entries.iter().take(shown).enumerate() {
        let y = row_y(i);
        let (x, max) = match e.sample {
            None => (x0, text_max),
            Some(sample) => {
                draw_sample(area, sample, x0, y)?;
                (LABEL_INDENT as i32, label_max)
            }
        };
        let label = fit_text(e.label, max, size);
        area.draw(&Text::new(label, (x, y), label_style.clone()))
            .map_err(backend_err)?;
    }
    if shown < entries.len() {
        let more = fit_text(&format!("+{} more", entries.len() - shown), text_max, size);
        area.draw(&Text::new(
            more,
            (x0, row_y(shown)),
            left(size, &NOTE_COLOUR),
        ))
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

struct FigurePicture<'a>(&'a Figure, FigureLayout);

impl Picture for FigurePicture<'_> {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        draw_figure(root, self.0, self.1)
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
    fn text_is_cut_and_wrapped_to_width() {
        ensure_fonts().unwrap();
        let w = text_width("lambda=-9.9e-4, omega=0", LEGEND_FONT);
        // About 7 px a character at the legend font size.
        assert!((120..200).contains(&w), "{w}");
        assert_eq!(fit_text("short", 200, LEGEND_FONT), "short");
        let cut = fit_text("a label far too long for the column", 100, LEGEND_FONT);
        assert!(cut.ends_with('…') && cut.len() > 3, "{cut:?}");
        assert!(text_width(&cut, LEGEND_FONT) <= 100);
        assert_eq!(fit_text("anything", 2, LEGEND_FONT), "");
        assert_eq!(fit_text("", 0, LEGEND_FONT), "");

        let lines = wrap_text("points: empirical mean ± 1 SE", 100, NOTE_FONT, 4);
        assert!(lines.len() >= 2, "{lines:?}");
        assert_eq!(lines.join(" "), "points: empirical mean ± 1 SE");
        assert!(lines.iter().all(|l| text_width(l, NOTE_FONT) <= 100));
        let lines = wrap_text(&"word ".repeat(200), 100, NOTE_FONT, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'), "{lines:?}");
        assert!(wrap_text("   ", 100, NOTE_FONT, 3).is_empty());
        let lines = wrap_text(&"x".repeat(500), 100, NOTE_FONT, 3);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with('…'));
    }

    #[test]
    fn legend_width_is_clamped_and_zero_without_entries() {
        ensure_fonts().unwrap();
        let series = |name: &str, in_legend: bool| Series {
            name: name.into(),
            kind: SeriesKind::Line,
            x: vec![1.0],
            y: vec![1.0],
            y_err: None,
            color_key: String::new(),
            style: LineStyle::Solid,
            in_legend,
        };
        let mut p = Panel {
            letter: None,
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            log_x: false,
            log_y: false,
            series: vec![series("hidden", false), series("", true)],
            legend_title: Some(" ".into()),
            note: Some(String::new()),
        };
        assert_eq!(legend_width(&p), 0);
        p.series.push(series("x", true));
        assert_eq!(legend_width(&p), LEGEND_MIN_WIDTH);
        p.series.push(series(&"long ".repeat(100), true));
        assert_eq!(legend_width(&p), LEGEND_MAX_WIDTH);
        p.series.truncate(2);
        p.note = Some("a note".into());
        assert_eq!(legend_width(&p), LEGEND_MIN_WIDTH);
    }

    #[test]
    fn viridis_endpoints() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }
}
