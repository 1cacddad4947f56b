//! Analytic derivatives of the moments (the Newton Jacobian) against central
//! finite differences, in both expectation modes, rich and lazy regimes.

use ptft_theory::{two_task_groups, Expectation, MomentEvaluator, TwoTask};

fn check(expectation: &Expectation, c: f64, lambda: f64, gamma: f64) {
    let task = TwoTask {
        rho_pt: 0.1,
        rho_ft: 0.1,
        omega: 0.5,
        a_pt: 1.0,
    };
    let groups = two_task_groups(&task, c, lambda, gamma).unwrap();
    let mut ev = MomentEvaluator::new(&groups, expectation).unwrap();
    for &(s2, g) in &[(5.0, 1.0), (0.3, 0.2), (1e-2, 3e-2), (1e-4, 1e-3)] {
        let m = ev.evaluate(s2, g).unwrap();
        let (hs, hg) = (1e-5 * s2, 1e-5 * g);
        let sp = ev.evaluate(s2 + hs, g).unwrap();
        let sm = ev.evaluate(s2 - hs, g).unwrap();
        let gp = ev.evaluate(s2, g + hg).unwrap();
        let gm = ev.evaluate(s2, g - hg).unwrap();
        let checks = [
            (
                "dmse/dS",
                m.dmse_ds,
                (sp.mse - sm.mse) / (2.0 * hs),
                m.mse / s2,
            ),
            (
                "dmse/dg",
                m.dmse_dg,
                (gp.mse - gm.mse) / (2.0 * hg),
                m.mse / g,
            ),
            (
                "dEs2/dS",
                m.dsigma2_ds,
                (sp.e_sigma2 - sm.e_sigma2) / (2.0 * hs),
                m.e_sigma2 / s2,
            ),
            (
                "dEs2/dg",
                m.dsigma2_dg,
                (gp.e_sigma2 - gm.e_sigma2) / (2.0 * hg),
                m.e_sigma2 / g,
            ),
        ];
        for (name, analytic, fd, scale) in checks {
            // Relative step 1e-5: truncation ~1e-10 and rounding ~1e-11 of
            // the natural scale (value / variable). The prox is solved to
            // ~1e-13 relative and warm starts move it by that much between
            // the +h and -h evaluations, which divided by 2h ~ 1e-5 leaves
            // ~1e-8 of the scale. 1e-6 of the scale is therefore safe, and
            // is far below any real error (a missing term is O(scale)).
            assert!(
                (analytic - fd).abs() <= 1e-6 * scale.abs() + 1e-6 * analytic.abs(),
                "{expectation:?} c={c} lambda={lambda} gamma={gamma} S={s2} g={g}: \
                 {name} analytic {analytic:e} vs fd {fd:e}"
            );
        }
    }
}

#[test]
fn quadrature_jacobian_rich_and_lazy() {
    let quad = Expectation::Quadrature { nodes: 256 };
    check(&quad, 1e-3, 0.0, 0.0); // baseline (rich-ish, c_ft = 2e-3 inactive)
    check(&quad, 1e-6, -0.99e-6, 0.0); // very rich
    check(&quad, 1.0, 0.0, 0.0); // lazy
    check(&quad, 1e-3, 0.0, 10.0); // lazy through gamma
}

#[test]
fn monte_carlo_jacobian_rich_and_lazy() {
    let mc = Expectation::MonteCarlo {
        samples: 20_000,
        seed: 3,
        batches: 50,
    };
    check(&mc, 1e-3, 0.0, 0.0);
    check(&mc, 1e-6, -0.99e-6, 0.0);
    check(&mc, 1.0, 0.0, 0.0);
    check(&mc, 1e-3, 0.0, 10.0);
}
