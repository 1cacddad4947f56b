//! Writes /tmp/ptft-demo.png, /tmp/ptft-demo.svg and /tmp/ptft-demo-heatmap.png
//! from synthetic data, for eyeballing the styling.

use ptft_figures::{
    render_figure, render_heatmaps, Figure, Heatmap, LineStyle, Panel, Series, SeriesKind,
};

fn logspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 10f64.powf(a + (b - a) * i as f64 / (n - 1) as f64))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (k, c) in [1e-6, 1e-3, 1.0].into_iter().enumerate() {
        let key = format!("c={c:e}");
        let x = logspace(1.0, 4.0, 40);
        let y: Vec<f64> = x
            .iter()
            .map(|n| (1.0 + 30.0 * c) / n.sqrt() + 1e-3)
            .collect();
        a.push(Series {
            name: format!("theory {key}"),
            kind: SeriesKind::Line,
            x: x.clone(),
            y: y.clone(),
            y_err: None,
            color_key: key.clone(),
            style: LineStyle::Solid,
            in_legend: true,
        });
        let xs = logspace(1.0, 4.0, 7);
        let ys: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, n)| {
                ((1.0 + 30.0 * c) / n.sqrt() + 1e-3) * (1.0 + 0.08 * ((i + k) as f64).sin())
            })
            .collect();
        let es: Vec<f64> = ys.iter().map(|y| 0.25 * y).collect();
        a.push(Series {
            name: format!("sim {key}"),
            kind: SeriesKind::Points,
            x: xs,
            y: ys,
            y_err: Some(es),
            color_key: key.clone(),
            style: LineStyle::Solid,
            in_legend: true,
        });
        let om: Vec<f64> = (0..=20).map(|i| i as f64 / 20.0).collect();
        let yb: Vec<f64> = om
            .iter()
            .map(|w| (1.0 + 30.0 * c) * (0.05 + w * w))
            .collect();
        b.push(Series {
            name: key.clone(),
            kind: SeriesKind::Line,
            x: om,
            y: yb,
            y_err: None,
            color_key: key,
            style: LineStyle::Dashed,
            in_legend: true,
        });
    }
    let fig = Figure {
        title: Some("Demo: generalisation vs. sample size".into()),
        panels: vec![
            Panel {
                letter: Some("a".into()),
                title: "Test loss (log–log)".into(),
                x_label: "fine-tuning samples n".into(),
                y_label: "test loss".into(),
                log_x: true,
                log_y: true,
                series: a,
                legend_title: Some("init scale".into()),
                note: Some("points: mean ± 1 SE".into()),
            },
            Panel {
                letter: Some("b".into()),
                title: "Loss vs. ω".into(),
                x_label: "ω".into(),
                y_label: "loss".into(),
                log_x: false,
                log_y: true,
                series: b,
                legend_title: None,
                note: None,
            },
        ],
        columns: 2,
        panel_width: 560,
        panel_height: 420,
    };
    let r = render_figure(&fig)?;
    std::fs::write("/tmp/ptft-demo.png", &r.png)?;
    std::fs::write("/tmp/ptft-demo.svg", &r.svg)?;
    println!("figure {}x{}", r.width, r.height);

    let x = logspace(-3.0, 1.0, 41);
    let y: Vec<f64> = (0..25).map(|i| i as f64 / 24.0).collect();
    let mut maps = Vec::new();
    for (t, shift) in [("Map A", 0.0), ("Map B", 0.3)] {
        let z = y
            .iter()
            .flat_map(|&w| {
                x.iter()
                    .map(move |&c| (c.log10() + 3.0) / 4.0 * (1.0 - w) + shift * w)
            })
            .collect();
        maps.push(Heatmap {
            title: t.into(),
            x_label: "c".into(),
            y_label: "ω".into(),
            log_x: true,
            log_y: false,
            x: x.clone(),
            y: y.clone(),
            z,
            z_label: "feature sparsity".into(),
            z_range: (0.0, 1.0),
        });
    }
    let h = render_heatmaps("Demo heatmaps", &maps, 2)?;
    std::fs::write("/tmp/ptft-demo-heatmap.png", &h.png)?;
    println!("heatmaps {}x{}", h.width, h.height);
    Ok(())
}
