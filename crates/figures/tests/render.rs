use ptft_figures::{
    colour_for, render_figure, render_heatmaps, Figure, FigureError, Heatmap, LineStyle, Panel,
    Series, SeriesKind,
};

fn line(name: &str, key: &str, x: Vec<f64>, y: Vec<f64>) -> Series {
    Series {
        name: name.into(),
        kind: SeriesKind::Line,
        x,
        y,
        y_err: None,
        color_key: key.into(),
        style: LineStyle::Solid,
        in_legend: true,
    }
}

fn points(name: &str, key: &str, x: Vec<f64>, y: Vec<f64>, err: Vec<f64>) -> Series {
    Series {
        name: name.into(),
        kind: SeriesKind::Points,
        x,
        y,
        y_err: Some(err),
        color_key: key.into(),
        style: LineStyle::Solid,
        in_legend: true,
    }
}

fn panel(letter: &str, title: &str, series: Vec<Series>) -> Panel {
    Panel {
        letter: Some(letter.into()),
        title: title.into(),
        x_label: "samples n".into(),
        y_label: "test loss".into(),
        log_x: true,
        log_y: true,
        series,
        legend_title: Some("init scale".into()),
        note: None,
    }
}

fn two_panel_figure() -> Figure {
    let x: Vec<f64> = (0..20).map(|i| 10f64.powf(1.0 + i as f64 * 0.15)).collect();
    let y: Vec<f64> = x.iter().map(|n| 1.0 / n.sqrt()).collect();
    let xs = vec![10.0, 100.0, 1000.0];
    let ys = vec![0.3, 0.1, 0.03];
    // The first error bar reaches below zero: clamped on the log axis.
    let es = vec![0.5, 0.02, 0.005];
    Figure {
        title: Some("Test figure".into()),
        panels: vec![
            panel(
                "a",
                "Lines panel",
                vec![
                    line("theory c=1e-6", "c=1e-6", x.clone(), y.clone()),
                    line(
                        "theory c=1",
                        "c=1",
                        x.clone(),
                        y.iter().map(|v| 3.0 * v).collect(),
                    ),
                ],
            ),
            panel(
                "b",
                "Points panel",
                vec![
                    points("sim c=1e-3", "c=1e-3", xs, ys, es),
                    line("theory c=1e-3", "c=1e-3", x, y),
                ],
            ),
        ],
        columns: 2,
        panel_width: 400,
        panel_height: 300,
    }
}

/// Width of the legend column of each panel of `fig`, from the rendered width.
fn legend_width(r: &ptft_figures::Rendered, fig: &Figure) -> u32 {
    let cols = fig.columns.min(fig.panels.len()) as u32;
    assert_eq!(
        r.width % cols,
        0,
        "width {} not a multiple of {cols}",
        r.width
    );
    r.width / cols - fig.panel_width
}

fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().expect("valid PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("valid PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Fraction of pixels that are not the white background.
fn ink_fraction(rgb: &[u8]) -> f64 {
    let px = rgb.chunks(3);
    let n = px.len();
    px.filter(|p| *p != [255, 255, 255]).count() as f64 / n as f64
}

/// Whether some pixel is close to `c`.
fn has_colour(rgb: &[u8], c: (u8, u8, u8)) -> bool {
    rgb.chunks(3).any(|p| {
        (p[0] as i32 - c.0 as i32).abs() <= 2
            && (p[1] as i32 - c.1 as i32).abs() <= 2
            && (p[2] as i32 - c.2 as i32).abs() <= 2
    })
}

#[test]
fn two_panel_figure_renders_png_and_svg() {
    let fig = two_panel_figure();
    let r = render_figure(&fig).expect("renders");
    // Two 400 px panels, each with the same legend column to its right.
    let legend = legend_width(&r, &fig);
    assert!((110..=320).contains(&legend), "legend column {legend} px");
    assert_eq!(r.height, 340);
    assert!(r
        .png
        .starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]));
    let (w, h, rgb) = decode(&r.png);
    assert_eq!((w, h), (r.width, 340));
    let ink = ink_fraction(&rgb);
    assert!(ink > 0.02 && ink < 0.6, "ink fraction {ink}");
    // Series colours really are drawn.
    for key in ["c=1e-6", "c=1", "c=1e-3"] {
        let c = colour_for(key);
        assert!(
            has_colour(&rgb, (c.0, c.1, c.2)),
            "no pixel in the colour of {key}"
        );
    }
    // Both panels have content: ink in each half.
    let half = |right: bool| -> Vec<u8> {
        rgb.chunks(3)
            .enumerate()
            .filter(|(i, _)| ((i % w as usize) >= w as usize / 2) == right)
            .flat_map(|(_, p)| p.to_vec())
            .collect()
    };
    assert!(ink_fraction(&half(false)) > 0.02);
    assert!(ink_fraction(&half(true)) > 0.02);

    assert!(r.svg.starts_with("<svg"));
    for text in [
        "Test figure",
        "Lines panel",
        "Points panel",
        "theory c=1e-6",
        "theory c=1",
        "sim c=1e-3",
        "init scale",
        "samples n",
        "test loss",
    ] {
        assert!(r.svg.contains(text), "SVG lacks {text:?}");
    }
    for letter in ["\na\n", "\nb\n"] {
        assert!(r.svg.contains(letter), "SVG lacks panel letter {letter:?}");
    }
}

#[test]
fn rendering_is_deterministic() {
    let fig = two_panel_figure();
    let a = render_figure(&fig).unwrap();
    let b = render_figure(&fig).unwrap();
    assert!(a.png == b.png, "PNG bytes differ between renders");
    assert_eq!(a.svg, b.svg);
}

#[test]
fn figure_roundtrips_through_serde() {
    let fig = two_panel_figure();
    let json = serde_json::to_string(&fig).unwrap();
    let back: Figure = serde_json::from_str(&json).unwrap();
    assert_eq!(back, fig);
}

#[test]
fn colours_are_stable_and_distinct() {
    let keys = ["c=1e-6", "c=1e-3", "c=1", "omega=0", "omega=0.5", "omega=1"];
    let colours: Vec<_> = keys.iter().map(|k| colour_for(k)).collect();
    for (k, c) in keys.iter().zip(&colours) {
        assert_eq!(colour_for(k), *c, "colour of {k} changed between calls");
    }
    for i in 0..keys.len() {
        for j in i + 1..keys.len() {
            assert_ne!(
                colours[i], colours[j],
                "{} and {} share a colour",
                keys[i], keys[j]
            );
        }
    }
    // Pinned across runs and builds, so a change of palette or hash (which
    // recolours every published figure) is a deliberate decision.
    let rgb: Vec<_> = colours.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(
        rgb,
        [
            (23, 190, 207),
            (227, 119, 194),
            (255, 127, 14),
            (44, 160, 44),
            (0, 128, 128),
            (140, 86, 75)
        ]
    );
}

fn modified(f: impl FnOnce(&mut Figure)) -> Result<ptft_figures::Rendered, FigureError> {
    let mut fig = two_panel_figure();
    f(&mut fig);
    render_figure(&fig)
}

#[test]
fn empty_panel_list_is_an_error() {
    assert_eq!(modified(|f| f.panels.clear()), Err(FigureError::NoPanels));
}

#[test]
fn zero_columns_is_an_error() {
    assert!(matches!(
        modified(|f| f.columns = 0),
        Err(FigureError::Layout(_))
    ));
}

#[test]
fn length_mismatch_is_an_error() {
    let e = modified(|f| {
        f.panels[0].series[1].y.pop();
    })
    .unwrap_err();
    assert_eq!(
        e,
        FigureError::LengthMismatch {
            panel: "Lines panel".into(),
            series: "theory c=1".into(),
            x_len: 20,
            y_len: 19
        }
    );
    assert!(e.to_string().contains("theory c=1"));
}

#[test]
fn non_finite_value_is_an_error() {
    let e = modified(|f| f.panels[1].series[0].y[2] = f64::NAN).unwrap_err();
    match &e {
        FigureError::NonFinite {
            series,
            axis,
            index,
            ..
        } => {
            assert_eq!((series.as_str(), *axis, *index), ("sim c=1e-3", "y", 2));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("sim c=1e-3"));
    let e = modified(|f| f.panels[0].series[0].x[3] = f64::INFINITY).unwrap_err();
    assert!(
        matches!(
            e,
            FigureError::NonFinite {
                axis: "x",
                index: 3,
                ..
            }
        ),
        "{e:?}"
    );
    let e = modified(|f| f.panels[1].series[0].y_err.as_mut().unwrap()[0] = f64::NAN).unwrap_err();
    assert!(
        matches!(
            e,
            FigureError::NonFinite {
                axis: "y_err",
                index: 0,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn non_positive_on_log_axis_is_an_error() {
    let e = modified(|f| f.panels[0].series[0].y[4] = 0.0).unwrap_err();
    assert!(
        matches!(&e, FigureError::NonPositiveOnLogAxis { series, axis: "y", index: 4, value, .. }
            if series == "theory c=1e-6" && *value == 0.0),
        "{e:?}"
    );
    let e = modified(|f| f.panels[0].series[0].x[0] = -1.0).unwrap_err();
    assert!(
        matches!(e, FigureError::NonPositiveOnLogAxis { axis: "x", .. }),
        "{e:?}"
    );
    // The same values are fine on linear axes.
    modified(|f| {
        f.panels[0].log_x = false;
        f.panels[0].log_y = false;
        f.panels[0].series[0].y[4] = 0.0;
        f.panels[0].series[0].x[0] = -1.0;
    })
    .expect("linear axes accept non-positive values");
}

#[test]
fn y_err_length_mismatch_is_an_error() {
    let e = modified(|f| f.panels[1].series[0].y_err = Some(vec![0.1])).unwrap_err();
    assert_eq!(
        e,
        FigureError::ErrorLengthMismatch {
            panel: "Points panel".into(),
            series: "sim c=1e-3".into(),
            err_len: 1,
            y_len: 3
        }
    );
}

#[test]
fn negative_error_is_an_error() {
    let e = modified(|f| f.panels[1].series[0].y_err.as_mut().unwrap()[1] = -0.1).unwrap_err();
    assert!(
        matches!(e, FigureError::NegativeError { index: 1, .. }),
        "{e:?}"
    );
}

fn heatmap(nx: usize, ny: usize) -> Heatmap {
    let x: Vec<f64> = (0..nx)
        .map(|i| 10f64.powf(-3.0 + 4.0 * i as f64 / (nx - 1) as f64))
        .collect();
    let y: Vec<f64> = (0..ny).map(|j| j as f64 / (ny - 1) as f64).collect();
    let z = (0..ny)
        .flat_map(|j| (0..nx).map(move |i| (i + j) as f64 / (nx + ny - 2) as f64))
        .collect();
    Heatmap {
        title: "Sparsity map".into(),
        x_label: "c".into(),
        y_label: "omega".into(),
        log_x: true,
        log_y: false,
        x,
        y,
        z,
        z_label: "sparsity".into(),
        z_range: (0.0, 1.0),
    }
}

#[test]
fn heatmap_renders() {
    let mut missing = heatmap(41, 25);
    missing.z[0] = f64::NAN;
    let r = render_heatmaps("Heatmaps", &[heatmap(41, 25), missing], 2).expect("renders");
    let (w, h, rgb) = decode(&r.png);
    assert_eq!((w, h), (r.width, r.height));
    assert_eq!((w, h), (1200, 480));
    // Most of each map is covered by coloured cells.
    let ink = ink_fraction(&rgb);
    assert!(ink > 0.3, "ink fraction {ink}");
    // Both ends of the colour scale appear (cells and colour bar).
    assert!(has_colour(&rgb, (68, 1, 84)));
    assert!(has_colour(&rgb, (253, 231, 37)));
    for text in ["Heatmaps", "Sparsity map", "sparsity", "omega"] {
        assert!(r.svg.contains(text), "SVG lacks {text:?}");
    }
}

#[test]
fn heatmap_errors() {
    let mut m = heatmap(5, 4);
    m.z.pop();
    assert!(matches!(
        render_heatmaps("", &[m], 1),
        Err(FigureError::InvalidHeatmap { .. })
    ));
    let mut m = heatmap(5, 4);
    m.x[0] = 0.0; // log axis
    assert!(matches!(
        render_heatmaps("", &[m], 1),
        Err(FigureError::InvalidHeatmap { .. })
    ));
    let mut m = heatmap(5, 4);
    m.z_range = (1.0, 1.0);
    assert!(matches!(
        render_heatmaps("", &[m], 1),
        Err(FigureError::InvalidHeatmap { .. })
    ));
    assert_eq!(render_heatmaps("", &[], 1), Err(FigureError::NoHeatmaps));
}

#[test]
fn degenerate_panels_render() {
    let fig = Figure {
        title: None,
        panels: vec![
            Panel {
                letter: None,
                title: "empty".into(),
                x_label: String::new(),
                y_label: String::new(),
                log_x: true,
                log_y: false,
                series: vec![],
                legend_title: None,
                note: None,
            },
            Panel {
                letter: None,
                title: "single point, unnamed".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                log_x: false,
                log_y: true,
                series: vec![points("", "k", vec![2.0], vec![3.0], vec![0.0])],
                legend_title: None,
                note: None,
            },
            Panel {
                letter: None,
                title: "constant line".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                log_x: false,
                log_y: false,
                series: vec![line("flat", "k", vec![0.0, 1.0], vec![0.0, 0.0])],
                legend_title: None,
                note: None,
            },
        ],
        columns: 2,
        panel_width: 300,
        panel_height: 200,
    };
    let r = render_figure(&fig).expect("renders");
    // Three panels in two columns: two rows, no title strip; the one legend
    // entry ("flat") is short, so the legend column has its minimum width.
    assert_eq!((r.width, r.height), (2 * (300 + 110), 400));
    let (w, h, _) = decode(&r.png);
    assert_eq!((w, h), (820, 400));

    // Without any legend entry or note there is no legend column at all.
    let mut bare = fig.clone();
    bare.panels[2].series[0].in_legend = false;
    let r = render_figure(&bare).expect("renders");
    assert_eq!((r.width, r.height), (600, 400));
}

/// A one-panel figure (300x220 plot) with the given series.
fn one_panel(series: Vec<Series>) -> Figure {
    Figure {
        title: None,
        panels: vec![Panel {
            letter: None,
            title: "one".into(),
            x_label: "alpha".into(),
            y_label: "error".into(),
            log_x: true,
            log_y: true,
            series,
            legend_title: None,
            note: None,
        }],
        columns: 1,
        panel_width: 300,
        panel_height: 220,
    }
}

fn decay(name: &str, key: &str, scale: f64) -> Series {
    let x: Vec<f64> = (0..30).map(|i| 10f64.powf(-1.0 + i as f64 * 0.1)).collect();
    let y = x.iter().map(|a| scale / (1.0 + a * a)).collect();
    line(name, key, x, y)
}

/// Pixels of `rgb` (width `w`) in columns `cols` that are close to `c`.
fn colour_count_in(rgb: &[u8], w: u32, cols: std::ops::Range<u32>, c: (u8, u8, u8)) -> usize {
    rgb.chunks(3)
        .enumerate()
        .filter(|(i, p)| {
            cols.contains(&((*i as u32) % w))
                && (p[0] as i32 - c.0 as i32).abs() <= 2
                && (p[1] as i32 - c.1 as i32).abs() <= 2
                && (p[2] as i32 - c.2 as i32).abs() <= 2
        })
        .count()
}

#[test]
fn series_out_of_legend_is_drawn_without_entry() {
    let mut hidden = points(
        "hidden empirical points",
        "slot:3",
        vec![1.0, 3.0, 10.0],
        vec![0.4, 0.1, 0.01],
        vec![0.05, 0.01, 0.002],
    );
    hidden.in_legend = false;
    let fig = one_panel(vec![decay("shown theory line", "slot:0", 1.0), hidden]);
    let r = render_figure(&fig).expect("renders");
    assert!(r.svg.contains("shown theory line"));
    assert!(
        !r.svg.contains("hidden empirical points"),
        "a series with in_legend = false has a legend entry"
    );
    // The hidden series is still drawn in the plot, but has no sample in
    // the legend column; the shown one has both.
    let (w, _, rgb) = decode(&r.png);
    let (shown, hid) = (colour_for("slot:0"), colour_for("slot:3"));
    let plot = 0..fig.panel_width;
    let legend = fig.panel_width..w;
    assert!(colour_count_in(&rgb, w, plot.clone(), (hid.0, hid.1, hid.2)) > 0);
    assert_eq!(
        colour_count_in(&rgb, w, legend.clone(), (hid.0, hid.1, hid.2)),
        0
    );
    assert!(colour_count_in(&rgb, w, plot, (shown.0, shown.1, shown.2)) > 0);
    assert!(colour_count_in(&rgb, w, legend, (shown.0, shown.1, shown.2)) > 0);
}

#[test]
fn legend_column_grows_with_label_length() {
    let short = one_panel(vec![decay("a", "slot:0", 1.0)]);
    let long = one_panel(vec![decay(
        "lambda=-9.9e-4, omega=0.5, n_pre=4096",
        "slot:0",
        1.0,
    )]);
    let (rs, rl) = (
        render_figure(&short).unwrap(),
        render_figure(&long).unwrap(),
    );
    assert_eq!(rs.height, rl.height);
    assert!(rl.width > rs.width, "{} vs {}", rl.width, rs.width);
    // The legend column is clamped: at least 110 px, at most 320 px.
    assert_eq!(legend_width(&rs, &short), 110);
    assert!(legend_width(&rl, &long) > 200, "{}", rl.width);
    // An absurdly long label is cut with an ellipsis at the maximum width.
    let huge = one_panel(vec![decay(&"very long label ".repeat(40), "slot:0", 1.0)]);
    let rh = render_figure(&huge).unwrap();
    assert_eq!(legend_width(&rh, &huge), 320);
    assert!(rh.svg.contains('…'));
    assert!(!rh.svg.contains(huge.panels[0].series[0].name.trim_end()));
}

#[test]
fn dashed_and_dotted_lines_differ_from_solid() {
    let styled = |style: LineStyle| {
        let mut s = decay("styled", "slot:2", 1.0);
        s.style = style;
        render_figure(&one_panel(vec![s])).expect("renders")
    };
    let (solid, dashed, dotted) = (
        styled(LineStyle::Solid),
        styled(LineStyle::Dashed),
        styled(LineStyle::Dotted),
    );
    assert_ne!(solid.svg, dashed.svg);
    assert_ne!(solid.svg, dotted.svg);
    assert_ne!(dashed.svg, dotted.svg);
    assert_ne!(solid.png, dashed.png);
    // Dashes are separate paths: many more of them than for the solid line
    // (plot and legend sample), and more for dots than for dashes.
    let paths = |svg: &str| svg.matches("<polyline").count();
    assert!(paths(&dashed.svg) > paths(&solid.svg) + 10);
    assert!(paths(&dotted.svg) > paths(&dashed.svg));
    // The line is broken: fewer pixels in its colour.
    let c = colour_for("slot:2");
    let ink = |r: &ptft_figures::Rendered| {
        let (w, _, rgb) = decode(&r.png);
        colour_count_in(&rgb, w, 0..w, (c.0, c.1, c.2))
    };
    assert!(ink(&dashed) < ink(&solid));
    assert!(ink(&dotted) < ink(&dashed));
    // Points series keep their markers whatever the style.
    let mut p = points(
        "pts",
        "slot:2",
        vec![1.0, 2.0],
        vec![0.5, 0.2],
        vec![0.1, 0.1],
    );
    p.style = LineStyle::Dotted;
    render_figure(&one_panel(vec![p])).expect("renders");
}

#[test]
fn legend_title_and_note_are_drawn() {
    let mut fig = one_panel(vec![decay("theory", "slot:1", 1.0)]);
    fig.panels[0].legend_title = Some("init scale".into());
    fig.panels[0].note = Some("points: empirical mean ± 1 SE".into());
    let r = render_figure(&fig).unwrap();
    for text in ["init scale", "theory", "points: empirical mean ± 1 SE"] {
        assert!(r.svg.contains(text), "SVG lacks {text:?}");
    }
    // A note alone also gets a legend column; a long one is wrapped.
    let mut fig = one_panel(vec![decay("", "slot:1", 1.0)]);
    fig.panels[0].note = Some("points: empirical mean ± 1 SE over 20 seeds, lines: theory".into());
    let r = render_figure(&fig).unwrap();
    assert!(legend_width(&r, &fig) >= 110);
    assert!(r.svg.contains("points:") && r.svg.contains("theory"));
    assert!(!r.svg.contains("over 20 seeds, lines: theory"));
}

#[test]
fn overlong_legend_is_summarised() {
    // 40 entries cannot fit next to a plot about 100 px tall.
    let series = (0..40)
        .map(|i| {
            decay(
                &format!("series number {i}"),
                &format!("slot:{i}"),
                1.0 + i as f64,
            )
        })
        .collect();
    let mut fig = one_panel(series);
    fig.panel_height = 200;
    fig.panels[0].legend_title = Some("title".into());
    fig.panels[0].note = Some("a note that is long enough to need a few lines of text here".into());
    let r = render_figure(&fig).expect("renders");
    assert!(r.svg.contains("more"), "no '+N more' line");
    assert!(!r.svg.contains("series number 39"));
}

#[test]
fn old_json_without_new_fields_deserialises_with_defaults() {
    let mut fig = two_panel_figure();
    let mut json = serde_json::to_value(&fig).unwrap();
    for p in json["panels"].as_array_mut().unwrap() {
        p.as_object_mut().unwrap().remove("note");
        for s in p["series"].as_array_mut().unwrap() {
            let s = s.as_object_mut().unwrap();
            s.remove("style");
            s.remove("in_legend");
        }
    }
    let back: Figure = serde_json::from_value(json).unwrap();
    assert_eq!(back, fig);
    fig.panels[0].series[0].style = LineStyle::Dotted;
    fig.panels[0].series[0].in_legend = false;
    fig.panels[0].note = Some("n".into());
    let json = serde_json::to_string(&fig).unwrap();
    assert!(json.contains("\"Dotted\""));
    assert_eq!(serde_json::from_str::<Figure>(&json).unwrap(), fig);
}

#[test]
fn oversized_figure_is_an_error() {
    assert!(matches!(
        modified(|f| {
            f.panel_width = u32::MAX - 10;
        }),
        Err(FigureError::Layout(_))
    ));
    assert!(matches!(
        modified(|f| {
            f.panel_width = 40_000;
            f.panel_height = 40_000;
        }),
        Err(FigureError::Layout(_))
    ));
}

#[test]
fn minimum_size_panels_with_full_legends_render() {
    let mut hidden = decay("hidden", "slot:5", 2.0);
    hidden.in_legend = false;
    let mut fig = one_panel(vec![
        decay("a <label> & more", "slot:0", 1.0),
        hidden,
        decay(&"x".repeat(2000), "slot:1", 3.0),
    ]);
    fig.panel_width = 100;
    fig.panel_height = 100;
    fig.title = Some("tiny".into());
    fig.panels[0].legend_title = Some("t".repeat(500));
    fig.panels[0].note = Some("n ".repeat(500));
    fig.panels[0].letter = Some("a".into());
    let only_note = Panel {
        series: vec![],
        legend_title: None,
        note: Some("only a note".into()),
        ..fig.panels[0].clone()
    };
    fig.panels.push(only_note);
    fig.columns = 3;
    let r = render_figure(&fig).expect("renders");
    assert_eq!((r.width, r.height), (2 * (100 + 320), 140));
    // Text that needs escaping in SVG is escaped.
    fig.panel_height = 300;
    let r = render_figure(&fig).expect("renders");
    assert!(r.svg.contains("&lt;label&gt; &amp; more"));
}
