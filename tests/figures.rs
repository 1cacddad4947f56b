//! The paper's figures as workflows: `fig3.json` shrunk through its `vars`
//! (the same stages, a smaller d and fewer seeds, so it runs in seconds)
//! shows that changing one swept value recomputes exactly that curve, its
//! empirical points and the figure — with every other panel's drawn rows
//! unchanged — and that `ptft explain` names artifacts from which the
//! plotted number is reproduced.

mod common;

use std::collections::BTreeSet;

use common::Sandbox;

use serde_json::{json, Value};

use common::{small_fig3, write_json as write, ALPHAS, SEEDS};

fn stage_mut<'a>(wf: &'a mut Value, id: &str) -> &'a mut Value {
    wf["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("fig3.json has no stage `{id}`"))
}

fn figure_rows(sb: &Sandbox, wf: &str) -> Vec<Value> {
    let v = sb.ok_json(&["export", "fig3", "--workflow", wf, "--format", "json"]);
    v.as_array().unwrap().clone()
}

#[test]
fn changing_one_swept_value_recomputes_only_that_curve_its_points_and_the_figure() {
    let sb = Sandbox::new();
    let wf = write(&sb, "fig3.json", &small_fig3());
    let first = sb.ok_json(&["run", &wf, "--json"]);
    assert_eq!(first["failed"], 0, "{first}");
    let before = figure_rows(&sb, &wf);

    // Panel c's relative scale 0.99e-3 -> 0.5e-3, in the theory sweep and
    // in the pretraining sweep that feeds its empirical points.
    let mut changed = small_fig3();
    for id in ["theory_c", "pretrained_c"] {
        let lambdas = &mut stage_mut(&mut changed, id)["sweep"]["lambda"];
        let list = lambdas.as_array_mut().unwrap();
        let i = list
            .iter()
            .position(|v| v.as_f64() == Some(9.9e-4))
            .unwrap();
        list[i] = json!(5e-4);
    }
    let wf2 = write(&sb, "fig3.json", &changed);
    let plan = sb.ok_json(&["plan", &wf2, "--json"]);
    let will_run: BTreeSet<String> = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "will_run")
        .map(|s| s["label"].as_str().unwrap().to_string())
        .collect();
    let (s, a) = (SEEDS.len(), ALPHAS.len());
    // per overlap omega in {0, 1}: 1 curve, s pretrained + s inits,
    // s*a exact solves + s*a evaluations, 1 empirical curve; plus the figure.
    assert_eq!(
        will_run.len(),
        2 * (1 + 2 * s + 2 * s * a + 1) + 1,
        "{will_run:#?}"
    );
    for label in &will_run {
        let stage = label.split('[').next().unwrap();
        let expected = label == "fig3"
            || (label.contains("lambda=0.0005")
                && [
                    "theory_c",
                    "pretrained_c",
                    "init_c",
                    "exact_c",
                    "eval_c",
                    "empirical_c",
                ]
                .contains(&stage));
        assert!(expected, "{label} should not recompute");
    }
    let second = sb.ok_json(&["run", &wf2, "--json"]);
    assert_eq!(
        second["computed"].as_u64().unwrap() as usize,
        will_run.len()
    );
    assert_eq!(second["failed"], 0);

    // Every drawn row outside panel c is the same; in panel c exactly the
    // series of the changed value differ.
    let after = figure_rows(&sb, &wf2);
    let outside = |rows: &[Value]| -> Vec<Value> {
        rows.iter().filter(|r| r["panel"] != "c").cloned().collect()
    };
    assert_eq!(outside(&before), outside(&after));
    let series = |rows: &[Value]| -> BTreeSet<String> {
        rows.iter()
            .filter(|r| r["panel"] == "c")
            .map(|r| r["series"].as_str().unwrap().to_string())
            .collect()
    };
    let (old, new) = (series(&before), series(&after));
    let gone: Vec<_> = old.difference(&new).collect();
    let came: Vec<_> = new.difference(&old).collect();
    assert_eq!(gone.len(), 4, "{gone:?}"); // 2 overlaps x (line, points)
    assert!(
        gone.iter().all(|s| s.starts_with("lambda=9.9e-4")),
        "{gone:?}"
    );
    assert!(
        came.iter().all(|s| s.starts_with("lambda=5e-4")),
        "{came:?}"
    );
    assert_eq!(came.len(), 4);
}

#[test]
fn explain_names_the_artifacts_that_reproduce_a_plotted_number() {
    let sb = Sandbox::new();
    let wf = write(&sb, "fig3.json", &small_fig3());
    let run = sb.ok_json(&["run", &wf, "--json"]);
    assert_eq!(run["failed"], 0, "{run}");

    let series = "lambda=-9.9e-4, omega=1 (empirical)";
    let e = sb.ok_json(&[
        "explain",
        "fig3",
        "--workflow",
        &wf,
        "--series",
        series,
        "--x",
        "0.29",
        "--json",
    ]);
    let points = e["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{e:#}");
    let pt = &points[0];
    assert_eq!(pt["panel"], "c");
    assert_eq!(pt["x"], 0.3, "the nearest plotted alpha");
    assert_eq!(pt["reproduced"], true);
    let y = pt["y"].as_f64().unwrap();
    let se = pt["y_err"].as_f64().unwrap();

    // Independently: the evaluations the chain names, read back through
    // `ptft export`, give the plotted mean and standard error.
    let chain = e["chain"].as_array().unwrap();
    let evals: Vec<&Value> = chain.iter().filter(|n| n["kind"] == "evaluate").collect();
    assert_eq!(
        evals.len(),
        SEEDS.len(),
        "one evaluation per seed at alpha = 0.3"
    );
    let mut mse = Vec::new();
    for n in &evals {
        assert_eq!(n["coords"]["alpha"], 0.3);
        let rows = sb.ok_json(&[
            "export",
            n["artifact"].as_str().unwrap(),
            "--workflow",
            &wf,
            "--format",
            "json",
        ]);
        mse.push(rows[0]["param_mse"].as_f64().unwrap());
    }
    let m = mse.len() as f64;
    let mean = mse.iter().sum::<f64>() / m;
    let sd = (mse.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0)).sqrt();
    // Same formula, possibly another summation order: a few ulps.
    assert!(
        (mean - y).abs() <= 4.0 * f64::EPSILON * y.abs(),
        "{mean} vs {y}"
    );
    assert!(
        (sd / m.sqrt() - se).abs() <= 1e-12 * se.abs(),
        "{} vs {se}",
        sd / m.sqrt()
    );

    // The chain reaches the roots with their params and seeds: one task per
    // seed, each recording the seed it drew from; the pretraining with the
    // panel's lambda; every artifact hash is a full blake3 hex.
    let tasks: BTreeSet<u64> = chain
        .iter()
        .filter(|n| n["kind"] == "task")
        .map(|n| n["seeds"]["task"].as_u64().unwrap())
        .collect();
    assert_eq!(tasks, SEEDS.iter().copied().collect());
    assert!(chain
        .iter()
        .filter(|n| n["kind"] == "pretrain")
        .all(|n| n["params"]["lambda"] == -9.9e-4 && n["params"]["c"] == 1e-3));
    assert!(chain
        .iter()
        .all(|n| n["artifact"].as_str().unwrap().len() == 64));
    assert!(chain.iter().all(|n| n["version"].is_u64()));
    let reproduce: Vec<&str> = e["reproduce"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        reproduce
            .iter()
            .any(|c| c.starts_with("ptft run ") && c.ends_with("fig3.json")),
        "{reproduce:?}"
    );

    // A theory line: the value is the replica curve's row, bit for bit.
    let line = sb.ok_json(&[
        "explain",
        "fig3",
        "--workflow",
        &wf,
        "--series",
        "c=0.001, omega=0",
        "--x",
        "0.25",
        "--panel",
        "a",
        "--json",
    ]);
    let lp = &line["points"][0];
    assert_eq!(lp["reproduced"], true);
    assert_eq!(lp["source"]["values"]["mse"], lp["y"]);
    assert_eq!(
        line["chain"].as_array().unwrap().len(),
        1,
        "a replica curve has no inputs"
    );

    // Human output and errors.
    let text = String::from_utf8(sb.ok(&[
        "explain",
        "fig3",
        "--workflow",
        &wf,
        "--series",
        series,
        "--x",
        "0.3",
    ]))
    .unwrap();
    assert!(
        text.contains("bit-identical") && text.contains("reproduce:"),
        "{text}"
    );
    let bad = sb.ptft(&[
        "explain",
        "fig3",
        "--workflow",
        &wf,
        "--series",
        "no such",
        "--x",
        "0.3",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        msg.contains("no series `no such`") && msg.contains(series),
        "{msg}"
    );
}

/// The frozen start (lambda = -c, gamma = 0: every c_ft is 0) against
/// independent truth: the replica theory's MSE is exactly 1, and the
/// empirical points — the exact gradient-flow limit beta = 0, so
/// param_mse = ||beta_ft||^2 / d — agree with it within 4 standard errors
/// of the seed mean (the SE comes from the seeds themselves).
#[test]
fn frozen_start_points_agree_with_the_theory_curve() {
    let sb = Sandbox::new();
    let wf = write(&sb, "fig3.json", &small_fig3());
    sb.ok(&["run", &wf, "-q"]);
    for omega in [0, 1] {
        let theory = sb.ok_json(&[
            "export",
            &format!("theory_c[lambda=-0.001,omega={omega}]"),
            "--workflow",
            &wf,
            "--format",
            "json",
        ]);
        for row in theory.as_array().unwrap() {
            let mse = row["mse"].as_f64().unwrap();
            assert!((mse - 1.0).abs() < 1e-9, "theory at lambda = -c: {mse}");
        }
        let points = sb.ok_json(&[
            "export",
            &format!("empirical_c[lambda=-0.001,omega={omega}]"),
            "--workflow",
            &wf,
            "--format",
            "json",
        ]);
        for row in points.as_array().unwrap() {
            let (m, se) = (
                row["param_mse"].as_f64().unwrap(),
                row["param_mse_se"].as_f64().unwrap(),
            );
            assert!(se > 0.0, "{row}");
            assert!(
                (m - 1.0).abs() <= 4.0 * se,
                "alpha {}: {m} ± {se} vs 1",
                row["alpha"]
            );
        }
    }
}
