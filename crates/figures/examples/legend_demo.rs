//! Writes /tmp/legend_demo.png and /tmp/legend_demo.svg: two panels, each with
//! 8 theory lines (4 colours x solid/dashed) and 8 matching point series with
//! error bars that have no legend entries of their own, for eyeballing the
//! legend column, the dash patterns and the note.

use ptft_figures::{render_figure, Figure, LineStyle, Panel, Series, SeriesKind};

fn logspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64))
        .collect()
}

/// A made-up generalisation-error curve: decays with alpha from about 1 to a
/// floor between 1e-7 and 1e-4 that grows with |lambda|.
fn curve(alpha: f64, lambda: f64, omega: f64, panel: usize) -> f64 {
    let floor = 1e-7 * (1e3f64).powf(lambda.abs() / 9.9e-4) * (1.0 + 0.5 * omega);
    let rate = 1.6 + 0.8 * omega + 0.4 * panel as f64 + 200.0 * lambda;
    0.9 / (1.0 + alpha.powf(rate)) + floor
}

fn panel(k: usize, letter: &str, title: &str, style2: LineStyle) -> Panel {
    let mut series = Vec::new();
    for (slot, lambda) in [-9.9e-4, -1e-4, 0.0, 9.9e-4].into_iter().enumerate() {
        for (omega, style) in [(0.0, LineStyle::Solid), (1.0, style2)] {
            let name = format!("lambda={lambda:.1e}, omega={omega}").replace("0.0e0", "0");
            let key = format!("slot:{slot}");
            let x = logspace(-1.0, 3.0, 160);
            let y = x.iter().map(|&a| curve(a, lambda, omega, k)).collect();
            series.push(Series {
                name: name.clone(),
                kind: SeriesKind::Line,
                x,
                y,
                y_err: None,
                color_key: key.clone(),
                style,
                in_legend: true,
            });
            let xs = logspace(-1.0, 3.0, 9);
            let ys: Vec<f64> = xs
                .iter()
                .enumerate()
                .map(|(i, &a)| {
                    curve(a, lambda, omega, k) * (1.0 + 0.15 * ((i + slot) as f64).sin())
                })
                .collect();
            let es = ys.iter().map(|y| 0.3 * y).collect();
            series.push(Series {
                name: format!("{name} (empirical)"),
                kind: SeriesKind::Points,
                x: xs,
                y: ys,
                y_err: Some(es),
                color_key: key,
                style,
                in_legend: false,
            });
        }
    }
    Panel {
        letter: Some(letter.into()),
        title: title.into(),
        x_label: "alpha = n/d".into(),
        y_label: "generalisation error".into(),
        log_x: true,
        log_y: true,
        series,
        legend_title: Some("theory (lines), sim (points)".into()),
        note: Some("points: empirical mean ± 1 SE".into()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fig = Figure {
        title: Some("Generalisation error vs. alpha".into()),
        panels: vec![
            panel(0, "a", "Linear network", LineStyle::Dashed),
            panel(1, "b", "Two-layer network", LineStyle::Dotted),
        ],
        columns: 2,
        panel_width: 460,
        panel_height: 360,
    };
    let r = render_figure(&fig)?;
    std::fs::write("/tmp/legend_demo.png", &r.png)?;
    std::fs::write("/tmp/legend_demo.svg", &r.svg)?;
    println!("figure {}x{}", r.width, r.height);
    Ok(())
}
