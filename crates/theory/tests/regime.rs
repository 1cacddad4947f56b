//! THEORY §7: spot values of the regime metrics and the bounds of
//! Proposition 5.1 as property tests.

use proptest::prelude::*;
use ptft_theory::{c_ft, regime_point, TheoryError};

/// The four spot values listed in THEORY §7 (b = 1, b_pt = 1). They are
/// quoted to 5-6 significant digits, so the tolerance is 1e-5 absolute.
#[test]
fn spot_values() {
    let cases = [
        (1e-5, 0.0, 0.0, 1.88666, -0.88666),
        (1e-5, -0.99e-5, 0.0, 1.22980, -0.22980),
        (1e-5, 0.99e-5, 0.0, 1.96265, -0.96264),
        (1e-3, 0.0, 1.0, 1.93929, -0.62577),
    ];
    for (c, lambda, gamma, l_order, pd) in cases {
        let p = regime_point(1.0, 1.0, c, lambda, gamma).unwrap();
        println!(
            "c={c:e} lambda={lambda:e} gamma={gamma}: l-order {:.6} PD {:.6}",
            p.l_order, p.pd
        );
        assert!(
            (p.l_order - l_order).abs() <= 1e-5,
            "l-order {} vs {l_order}",
            p.l_order
        );
        assert!((p.pd - pd).abs() <= 1e-5, "PD {} vs {pd}", p.pd);
    }
}

#[test]
fn inactive_and_degenerate_coordinates() {
    // b_pt = 0: D = 0, PD = 0, c_ft = 2(lambda + c) + gamma^2/2.
    let p = regime_point(1.0, 0.0, 1e-3, 0.5e-3, 2.0).unwrap();
    assert_eq!(p.d, 0.0);
    assert_eq!(p.pd, 0.0);
    assert!((p.c_ft - (2.0 * 1.5e-3 + 2.0)).abs() < 1e-15);
    // lambda = -c, gamma = 0: c_ft = 0, the rich limit l-order = 1, PD = 0.
    let p = regime_point(1.0, 1.0, 1e-3, -1e-3, 0.0).unwrap();
    assert_eq!(p.c_ft, 0.0);
    assert_eq!(p.l_order, 1.0);
    assert_eq!(p.pd, 0.0);
    assert!(p.d > 0.0 && p.d < 1.0);
    // The limit is continuous: lambda = -c (1 - 1e-9) is close to it.
    let q = regime_point(1.0, 1.0, 1e-3, -1e-3 * (1.0 - 1e-9), 0.0).unwrap();
    assert!((q.d - p.d).abs() < 1e-6);
    // b = 0 is an error, not a NaN.
    assert!(matches!(
        regime_point(0.0, 1.0, 1e-3, 0.0, 0.0),
        Err(TheoryError::Undefined(_))
    ));
}

/// D is d log c_ft / d log |b_pt|: check against a finite difference.
#[test]
fn d_is_the_log_derivative_of_c_ft() {
    for &(b_pt, c, lambda, gamma) in &[
        (0.5, 1e-3, 0.0, 0.0),
        (2.0, 0.1, 0.05, 1.0),
        (1e-4, 1e-3, -0.5e-3, 0.1),
    ] {
        let p = regime_point(1.0, b_pt, c, lambda, gamma).unwrap();
        let h = 1e-6;
        let fd = (c_ft(b_pt * (1.0 + h), c, lambda, gamma).ln()
            - c_ft(b_pt * (1.0 - h), c, lambda, gamma).ln())
            / ((1.0 + h).ln() - (1.0 - h).ln());
        assert!((p.d - fd).abs() < 1e-8, "D {} vs fd {fd}", p.d);
    }
}

fn c_strategy() -> impl Strategy<Value = f64> {
    (-8.0f64..=2.0).prop_map(|e| 10f64.powf(e))
}

fn b_strategy() -> impl Strategy<Value = f64> {
    ((-3.0f64..=1.0), any::<bool>()).prop_map(|(e, neg)| {
        let b = 10f64.powf(e);
        if neg {
            -b
        } else {
            b
        }
    })
}

proptest! {
    // No failure-persistence files: a failing case is printed in full.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Proposition 5.1: 1 <= l-order <= 2, -1 <= PD <= 0, 0 <= D < 1 and
    /// l-order + PD >= 1. The slack 1e-9 covers rounding only (all four are
    /// computed in closed form from O(1) ratios).
    #[test]
    fn proposition_5_1_bounds(
        c in c_strategy(),
        ratio in -1.0f64..=1.0,
        gamma in 0.0f64..=10.0,
        b in b_strategy(),
        b_pt in 0.0f64..=10.0,
    ) {
        let lambda = ratio * c;
        let p = regime_point(b, b_pt, c, lambda, gamma).unwrap();
        let eps = 1e-9;
        prop_assert!(p.l_order >= 1.0 - eps && p.l_order <= 2.0 + eps, "l-order {}", p.l_order);
        prop_assert!(p.pd >= -1.0 - eps && p.pd <= eps, "PD {}", p.pd);
        prop_assert!(p.d >= -eps && p.d < 1.0, "D {}", p.d);
        prop_assert!(p.l_order + p.pd >= 1.0 - eps, "l-order + PD = {}", p.l_order + p.pd);
    }
}
