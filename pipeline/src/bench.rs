//! `ptft bench`: the speed targets of BENCHMARKS.md, measured in-process on
//! the current machine (release build expected).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use ptft_engine::Workflow;
use ptft_store::Store;
use ptft_theory::{solve_curve, two_task_groups, Expectation, SolverSettings, TwoTask};

fn time<F: FnMut() -> Result<()>>(reps: usize, mut f: F) -> Result<(f64, f64)> {
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok((t[0], t[t.len() / 2]))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

pub fn run(quick: bool) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("machine: {} ({threads} threads available)", cpu_model());
    if cfg!(debug_assertions) {
        println!("WARNING: debug build; use `cargo run --release -- bench` for meaningful numbers");
    }
    let task = TwoTask {
        rho_pt: 0.1,
        rho_ft: 0.1,
        omega: 0.5,
        a_pt: 1.0,
    };
    let groups = two_task_groups(&task, 1e-3, 0.0, 0.0)?;
    let alphas: Vec<f64> = (0..80)
        .map(|i| 0.01 + (0.5 - 0.01) * i as f64 / 79.0)
        .collect();
    let settings = SolverSettings::default();
    println!(
        "{:58} {:>10} {:>10} {:>10}",
        "benchmark", "min (s)", "median (s)", "target (s)"
    );

    let quad = Expectation::Quadrature { nodes: 256 };
    let (min, med) = time(if quick { 3 } else { 11 }, || {
        solve_curve(&groups, &alphas, &quad, &settings)?;
        Ok(())
    })?;
    println!(
        "{:58} {min:>10.4} {med:>10.4} {:>10}",
        "replica curve, 80 alphas fwd+bwd, quadrature (256 nodes)", "0.1"
    );

    let mc = Expectation::MonteCarlo {
        samples: 80_000,
        seed: 0,
        batches: 50,
    };
    let (min, med) = time(if quick { 1 } else { 5 }, || {
        solve_curve(&groups, &alphas, &mc, &settings)?;
        Ok(())
    })?;
    println!(
        "{:58} {min:>10.4} {med:>10.4} {:>10}",
        "replica curve, 80 alphas fwd+bwd, Monte Carlo mc=80,000", "1"
    );

    // A 100 x 100 = 10,000-instance sweep, planned against a real (empty) store.
    let omegas: Vec<String> = (0..100).map(|i| format!("{}", i as f64 / 99.0)).collect();
    let cs: Vec<String> = (0..100)
        .map(|i| format!("{:e}", 1e-6 * 10f64.powf(6.0 * i as f64 / 99.0)))
        .collect();
    let text = format!(
        r#"{{"name": "bench10k", "stages": [{{"id": "grid", "kind": "replica_curve", "sweep": {{"omega": [{}], "c": [{}]}}}}, {{"id": "all", "kind": "concat", "inputs": {{"parts": "grid"}}}}]}}"#,
        omegas.join(","),
        cs.join(",")
    );
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path())?;
    let registry = ptft_stages::registry();
    let mut n = 0;
    let (min, med) = time(if quick { 1 } else { 5 }, || {
        let wf = Workflow::parse(&text, Path::new("bench10k.json"))?;
        n = ptft_engine::plan(&wf, &registry, Some(&store))?
            .instances
            .len();
        Ok(())
    })?;
    println!(
        "{:58} {min:>10.4} {med:>10.4} {:>10}",
        format!("ptft plan, generated sweep of {n} instances"),
        "1"
    );
    Ok(())
}
