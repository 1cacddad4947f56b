//! The shipped Experiment 1 workflow, run through the `ptft` binary, against
//! the reference quadrature curves (tests/data/exp1_quadrature.csv, copied
//! unmodified from the authors' reference folder; see tests/data/ORIGIN.md).
//!
//! This checks the whole chain a user relies on — workflow file, sweep
//! bundles, parameter mapping, solver, concat, export — not just the solver.
//! Tolerance (tests/data/README.md): |mse - mse_quad| <= 1e-3 mse_quad + 1e-8,
//! for every alpha of all 24 configurations, excluding reference values
//! below 1e-8 (solver-tolerance territory, meaningless in both files).

use std::process::Command;

use serde_json::Value;

#[test]
fn exp1_theory_workflow_matches_reference_quadrature_curves() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let wf = format!("{root}/workflows/exp1_theory.json");
    let run = Command::new(env!("CARGO_BIN_EXE_ptft"))
        .args(["run", &wf, "--quiet", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ptft"))
        .args([
            "export",
            "exp1_table",
            "--workflow",
            &wf,
            "--format",
            "json",
            "--store",
        ])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 24 * 80);

    let text = std::fs::read_to_string(format!("{root}/tests/data/exp1_quadrature.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (io, ic, il, ig, ia, iq) = (
        col("omega"),
        col("c"),
        col("lambda"),
        col("gamma"),
        col("alpha"),
        col("mse_quad"),
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-300);
    let num = |r: &Value, k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("column {k} missing in {r}"))
    };

    let (mut checked, mut worst, mut worst_at) = (0, 0.0f64, String::new());
    for line in lines {
        let f: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let mse_quad = f[iq];
        let ours = rows
            .iter()
            .find(|r| {
                close(num(r, "omega"), f[io])
                    && close(num(r, "c"), f[ic])
                    && close(num(r, "lambda"), f[il])
                    && close(num(r, "gamma"), f[ig])
                    && (num(r, "alpha") - f[ia]).abs() < 1e-9
            })
            .unwrap_or_else(|| panic!("no row for reference line {line}"));
        if mse_quad < 1e-8 {
            continue;
        }
        let mse = num(ours, "mse");
        let err = (mse - mse_quad).abs();
        assert!(
            err <= 1e-3 * mse_quad + 1e-8,
            "{}: alpha {} mse {mse} vs reference {mse_quad}",
            ours["source"],
            f[ia]
        );
        if err / mse_quad > worst {
            worst = err / mse_quad;
            worst_at = format!("{} alpha {}", ours["source"], f[ia]);
        }
        checked += 1;
    }
    eprintln!("checked {checked} points; worst relative error {worst:.2e} at {worst_at}");
    assert!(
        checked > 1800,
        "only {checked} reference points were comparable"
    );
}
