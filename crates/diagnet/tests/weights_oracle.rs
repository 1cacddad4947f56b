//! Test 3: the oracle pretrained state (THEORY §4) and re-initialisation (§5).
//!
//! Tolerances. `beta`, `lambda_i`, `c_i` are recomputed from the stored
//! weights, each a sum/difference of two products, so floating point can
//! only promise them to ~1e-16 times the size of those products, not of the
//! result: for c = 1e-6 and beta_pt = 10 the products are ~10 while c is
//! 1e-6. The checks are therefore relative to the scale of the terms
//! (`|w+ v+| + |w- v-|` for beta, `w^2 + v^2` for lambda, `|w+ w-| + |v+ v-|`
//! for c) at 1e-12, which is the strongest statement that can hold; where the
//! result is not tiny against its terms this is a 1e-12 relative check.

use ptft_diagnet::weights::{oracle_pretrained, reinit, symmetric_init, Weights};
use ptft_diagnet::DiagnetError;

const BETAS: [f64; 11] = [
    0.0, 1e-9, -1e-7, 1e-4, -0.3, 1.0, -1.0, 2.5, -7.0, 10.0, -10.0,
];

fn check_state(w: &Weights, beta_pt: &[f64], c: f64, lambda: f64) {
    let b = w.beta();
    let li = w.lambda_i();
    let lm = w.lambda_minus_i();
    let ci = w.c_i();
    for i in 0..beta_pt.len() {
        let (wp, wm, vp, vm) = (w.w_plus[i], w.w_minus[i], w.v_plus[i], w.v_minus[i]);
        let sb = (wp * vp).abs() + (wm * vm).abs();
        let sl_p = wp * wp + vp * vp;
        let sl_m = wm * wm + vm * vm;
        let sc = (wp * wm).abs() + (vp * vm).abs();
        let ctx = format!("c={c:e} lambda={lambda:e} beta_pt={}", beta_pt[i]);
        assert!(
            (b[i] - beta_pt[i]).abs() <= 1e-12 * sb.max(beta_pt[i].abs()),
            "beta: {ctx}: {} vs {}",
            b[i],
            beta_pt[i]
        );
        assert!(
            (li[i] - lambda).abs() <= 1e-12 * sl_p.max(lambda.abs()),
            "lambda+: {ctx}: {}",
            li[i]
        );
        assert!(
            (lm[i] - lambda).abs() <= 1e-12 * sl_m.max(lambda.abs()),
            "lambda-: {ctx}: {}",
            lm[i]
        );
        assert!(
            (ci[i] - c).abs() <= 1e-12 * sc.max(c),
            "c: {ctx}: {}",
            ci[i]
        );
    }
}

#[test]
fn oracle_state_matches_conserved_quantities() {
    for c in [1e-6, 1e-3, 1.0, 30.0] {
        for lf in [-1.0, -0.99, -0.5, 0.0, 0.5, 0.99, 1.0] {
            let lambda = lf * c;
            let w = oracle_pretrained(&BETAS, c, lambda).unwrap();
            check_state(&w, &BETAS, c, lambda);
        }
    }
}

/// The closed forms of THEORY §4, written literally (acosh/asinh), agree with
/// the cancellation-free implementation where they are well conditioned.
#[test]
fn oracle_matches_theory_closed_forms() {
    let c = 0.7;
    for &lambda in &[0.3, -0.3] {
        let m = f64::abs(lambda);
        for &b in &[0.0, 0.4, -1.3, 3.0] {
            let a = (c / m).acosh();
            let bb = (b / c).asinh();
            let (cp, cm) = (((a + bb) / 2.0).cosh(), ((a - bb) / 2.0).cosh());
            let (sp, sm) = (((a + bb) / 2.0).sinh(), ((a - bb) / 2.0).sinh());
            let (wp, wm, vp, vm) = if lambda > 0.0 {
                (m.sqrt() * cp, m.sqrt() * cm, m.sqrt() * sp, m.sqrt() * sm)
            } else {
                (m.sqrt() * sp, m.sqrt() * sm, m.sqrt() * cp, m.sqrt() * cm)
            };
            let w = oracle_pretrained(&[b], c, lambda).unwrap();
            for (got, want) in [
                (w.w_plus[0], wp),
                (w.w_minus[0], wm),
                (w.v_plus[0], vp),
                (w.v_minus[0], vm),
            ] {
                assert!(
                    (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                    "lambda={lambda} b={b}: {got} vs {want}"
                );
            }
        }
    }
    // lambda = 0: w+ = v+ = a, w- = v- = c / (2a), a^2 = (b + sqrt(b^2 + c^2)) / 2.
    for &b in &[0.0, 0.4, -1.3, 3.0] {
        let a = ((b + f64::hypot(b, c)) / 2.0).sqrt();
        let w = oracle_pretrained(&[b], c, 0.0).unwrap();
        for (got, want) in [
            (w.w_plus[0], a),
            (w.v_plus[0], a),
            (w.w_minus[0], c / (2.0 * a)),
            (w.v_minus[0], c / (2.0 * a)),
        ] {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "lambda=0 b={b}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn reinit_c_ft_matches_theory() {
    for c in [1e-6, 1e-3, 1.0] {
        for lf in [-0.9999, -0.99, 0.0, 0.5, 0.99, 1.0] {
            for gamma in [0.0, 1.0, 10.0] {
                let lambda = lf * c;
                let pt = oracle_pretrained(&BETAS, c, lambda).unwrap();
                let (ft, c_ft) = reinit(&pt, gamma).unwrap();
                for (i, &b) in BETAS.iter().enumerate() {
                    let want = ptft_theory::c_ft(b, c, lambda, gamma);
                    assert!(
                        (c_ft[i] - want).abs() <= 1e-12 * want,
                        "c={c:e} lambda={lf}c gamma={gamma} b={b}: {} vs {want}",
                        c_ft[i]
                    );
                }
                // Fine-tuning init: beta = 0, c_i = c_ft, symmetric pathways.
                assert!(ft
                    .beta()
                    .iter()
                    .all(|&v| v.abs() <= 1e-15 * (1.0 + gamma * gamma)));
                for (ci, cf) in ft.c_i().iter().zip(&c_ft) {
                    assert!((ci - cf).abs() <= 1e-14 * (cf + gamma * gamma));
                }
            }
        }
    }
}

#[test]
fn degenerate_saddle_gives_exact_zero_c_ft() {
    let c = 1e-3;
    let pt = oracle_pretrained(&BETAS, c, -c).unwrap();
    let (ft, c_ft) = reinit(&pt, 0.0).unwrap();
    assert!(c_ft.iter().all(|&v| v == 0.0));
    assert!(ft.w_plus.iter().chain(&ft.v_plus).all(|&v| v == 0.0));
}

#[test]
fn symmetric_init_and_validation() {
    let w = symmetric_init(5, 1e-3, 0.5e-3).unwrap();
    assert!(w.beta().iter().all(|&b| b == 0.0));
    for (l, c) in w.lambda_i().iter().zip(w.c_i()) {
        assert!((l - 0.5e-3).abs() <= 1e-18 && (c - 1e-3).abs() <= 1e-18);
    }
    let w = symmetric_init(3, 1.0, -1.0).unwrap();
    assert!(w.w_plus.iter().all(|&v| v == 0.0));
    for (c, l) in [
        (0.0, 0.0),
        (-1.0, 0.0),
        (1.0, 2.0),
        (f64::NAN, 0.0),
        (1.0, f64::INFINITY),
    ] {
        let e = symmetric_init(3, c, l).unwrap_err();
        assert!(matches!(e, DiagnetError::Theory(_)), "{e}");
        assert!(oracle_pretrained(&[1.0], c, l).is_err());
    }
    let e = symmetric_init(3, 1e-3, 2e-3).unwrap_err().to_string();
    assert!(e.contains("lambda"), "{e}");
    assert!(symmetric_init(0, 1.0, 0.0).is_err());
    assert!(oracle_pretrained(&[f64::NAN], 1.0, 0.0).is_err());
    let pt = oracle_pretrained(&[1.0], 1.0, 0.0).unwrap();
    assert!(reinit(&pt, -1.0).unwrap_err().to_string().contains("gamma"));
    assert!(reinit(&pt, f64::NAN).is_err());
}
