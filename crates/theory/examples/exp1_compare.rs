//! Compare our replica solver with the reference Experiment-1 curves.
//!
//! For all 24 configurations: solve in quadrature mode (default settings)
//! and in the paper's Monte-Carlo mode (mc = 80,000, seed 0), then print the
//! max relative error against the converged quadrature reference
//! (`exp1_quadrature.csv`, rows with mse_quad < 1e-8 skipped as the reference
//! README prescribes) and the max relative deviation of our Monte Carlo from
//! the authors' Monte-Carlo curves (`exp1_replica.csv`, rows with
//! mse < 1e-3 skipped).
//!
//! Run: `cargo run --release -p ptft-theory --example exp1_compare`

#[path = "../tests/common/mod.rs"]
mod common;

use ptft_theory::{solve_curve, Expectation, SolverSettings};
use std::time::Instant;

fn main() {
    let quad_ref = common::read_curves("exp1_quadrature.csv");
    let mc_ref = common::read_curves("exp1_replica.csv");
    let settings = SolverSettings::default();
    let t_all = Instant::now();
    let (mut t_quad, mut t_mc) = (0.0, 0.0);
    let (mut worst_quad, mut worst_mc) = (0.0_f64, 0.0_f64);
    println!(
        "{:<44} {:>12} {:>12} {:>8} {:>8}",
        "configuration", "quad relerr", "MC vs paper", "t_quad", "t_mc"
    );
    for qc in &quad_ref {
        let cfg = &qc.config;
        let groups = cfg.groups();
        let t0 = Instant::now();
        let quad = solve_curve(&groups, &qc.alpha, &Expectation::default(), &settings)
            .expect("quadrature solve");
        let tq = t0.elapsed().as_secs_f64();
        t_quad += tq;
        let reference = qc.col("mse_quad");
        let mut max_rel = 0.0_f64;
        for (p, &r) in quad.iter().zip(reference) {
            if r >= 1e-8 {
                max_rel = max_rel.max((p.mse - r).abs() / r);
            }
        }
        worst_quad = worst_quad.max(max_rel);

        let mut mc_dev = f64::NAN;
        let mut tm = 0.0;
        if let Some(mc_curve) = mc_ref.iter().find(|c| c.config == *cfg) {
            let t1 = Instant::now();
            let mc = solve_curve(
                &groups,
                &mc_curve.alpha,
                &Expectation::paper_monte_carlo(),
                &settings,
            )
            .expect("Monte-Carlo solve");
            tm = t1.elapsed().as_secs_f64();
            t_mc += tm;
            let theirs = mc_curve.col("mse");
            let mut dev = 0.0_f64;
            for (p, &r) in mc.iter().zip(theirs) {
                if r >= 1e-3 {
                    dev = dev.max((p.mse - r).abs() / r);
                }
            }
            mc_dev = dev;
            worst_mc = worst_mc.max(dev);
        }
        println!(
            "{:<44} {:>12.3e} {:>12.4} {:>7.3}s {:>7.3}s",
            cfg.label(),
            max_rel,
            mc_dev,
            tq,
            tm
        );
    }
    println!(
        "worst quad relerr {worst_quad:.3e}; worst MC-vs-paper rel dev {worst_mc:.4}; \
         time quad {t_quad:.2}s, MC {t_mc:.2}s, total {:.2}s",
        t_all.elapsed().as_secs_f64()
    );

    // Timing of one 80-point baseline curve (forward + backward), best of 3.
    let base = quad_ref
        .iter()
        .find(|c| c.config.is_baseline())
        .expect("baseline");
    let groups = base.config.groups();
    for (name, exp) in [
        ("quadrature (256 nodes)", Expectation::default()),
        ("Monte Carlo (80,000)", Expectation::paper_monte_carlo()),
    ] {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            solve_curve(&groups, &base.alpha, &exp, &settings).expect("baseline solve");
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "baseline 80-point curve, {name}: {best:.3}s (best of 3, {} rayon threads)",
            rayon::current_num_threads()
        );
    }
}
