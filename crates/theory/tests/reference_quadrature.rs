//! Quadrature mode against the reference theory curves
//! (`tests/data/exp1_quadrature.csv`, all 24 Experiment-1 configurations).

mod common;

use ptft_theory::{solve_curve, Expectation, SolverSettings};

/// Tolerance from the reference README: `|mse - mse_quad| <= 1e-3 mse_quad +
/// 1e-8`. The reference was computed with the same discretisation as our
/// default (8-node Gauss–Legendre panels, 256 nodes on [0, 9] = 512 on ±9)
/// and tolerance 1e-11, so agreement is in fact ~1e-6; the 1e-3 allowance
/// is the README's "safe" bound that also absorbs solver-tolerance effects.
/// Rows below 1e-8 are excepted (README: they reflect solver tolerances and
/// the gamma_ext ridge, not the theory).
#[test]
fn quadrature_matches_reference_on_all_24_configurations() {
    let curves = common::read_curves("exp1_quadrature.csv");
    assert_eq!(curves.len(), 24, "reference has 24 configurations");
    let settings = SolverSettings::default();
    let mut worst = 0.0_f64;
    let mut checked = 0;
    let mut seen_baseline = false;
    for curve in &curves {
        let cfg = &curve.config;
        seen_baseline |= cfg.is_baseline();
        let out = solve_curve(
            &cfg.groups(),
            &curve.alpha,
            &Expectation::default(),
            &settings,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", cfg.label()));
        let reference = curve.col("mse_quad");
        let mut worst_cfg = 0.0_f64;
        for (p, &r) in out.iter().zip(reference) {
            assert!(
                p.converged,
                "{} alpha {}: not converged",
                cfg.label(),
                p.alpha
            );
            if r < 1e-8 {
                continue;
            }
            checked += 1;
            let err = (p.mse - r).abs();
            worst_cfg = worst_cfg.max(err / r);
            assert!(
                err <= 1e-3 * r + 1e-8,
                "{} alpha {}: mse {} vs reference {} (rel {:.2e})",
                cfg.label(),
                p.alpha,
                p.mse,
                r,
                err / r
            );
            // No multistability in Experiment 1 (README): both branches agree.
            assert!(
                p.diff_db.abs() < 0.01,
                "{} alpha {}: diff_db {}",
                cfg.label(),
                p.alpha,
                p.diff_db
            );
        }
        println!("{:<44} max rel err {:.2e}", cfg.label(), worst_cfg);
        worst = worst.max(worst_cfg);
    }
    assert!(seen_baseline);
    println!("{checked} rows checked, worst relative error {worst:.2e}");
}

/// The reference's discretisation is not fully converged where the rich
/// regime's prox has a sharp transition (MSE ~1e-3, c = 1e-6): our own
/// refinement study shows 256 vs 2048 nodes differ by up to ~6e-3 there.
/// This test pins down that the refined answer stays within 1e-2 of the
/// reference on the curve where the discrepancy is largest, and within
/// 1e-3 where the MSE is above 5e-2 (the discretisation error is then
/// ~1e-5), so an accidental change of rule or of the integrand shows up.
#[test]
fn refined_quadrature_is_close_to_reference() {
    let curves = common::read_curves("exp1_quadrature.csv");
    let settings = SolverSettings::default();
    let curve = curves
        .iter()
        .find(|c| c.config.omega == 0.0 && c.config.c == 1e-6)
        .expect("omega 0, c 1e-6 curve");
    let fine = solve_curve(
        &curve.config.groups(),
        &curve.alpha,
        &Expectation::Quadrature { nodes: 2048 },
        &settings,
    )
    .unwrap();
    let mut worst = 0.0_f64;
    for (p, &r) in fine.iter().zip(curve.col("mse_quad")) {
        let rel = (p.mse - r).abs() / r;
        worst = worst.max(rel);
        let tol = if r > 5e-2 { 1e-3 } else { 1e-2 };
        assert!(
            rel <= tol,
            "alpha {}: {} vs {} (rel {rel:.2e})",
            p.alpha,
            p.mse,
            r
        );
    }
    println!("2048-node solution vs reference: max rel deviation {worst:.2e}");
}
