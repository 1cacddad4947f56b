//! The scalar prox: equation residual over the whole (c, z, g) range, odd
//! symmetry, the c = 0 saddle, and derivatives against finite differences.

use ptft_theory::penalty::asinh_ratio;
use ptft_theory::{prox, prox_warm};

const CS: [f64; 6] = [0.0, 1e-12, 1e-6, 1e-3, 1.0, 1e3];
const GS: [f64; 5] = [1e-14, 1e-6, 1e-2, 1.0, 1e2];

fn zs() -> Vec<f64> {
    let mut v = vec![0.0];
    let mut z = 1e-12;
    while z <= 1e4 {
        v.push(z);
        v.push(-z);
        v.push(3.7 * z);
        z *= 10.0;
    }
    v
}

/// Residual of `x - z + (g/2) asinh(x/c) = 0`, relative to the size of its
/// terms. The solver stops when its predicted error in `u = asinh(x/c)` is
/// below 1e-13 u + 1e-14, so 1e-12 of the term scale (plus a few ulps of
/// |z| for the cancellation in x - z) is a fair bound.
#[test]
fn prox_solves_its_equation() {
    let mut worst = 0.0_f64;
    for &c in &CS {
        for &g in &GS {
            for &z in &zs() {
                let p = prox(z, g, c);
                assert!(
                    p.x.is_finite() && p.sigma2.is_finite(),
                    "c={c} g={g} z={z}: {p:?}"
                );
                if c == 0.0 {
                    assert_eq!(p.x, 0.0);
                    assert_eq!(p.sigma2, 0.0);
                    continue;
                }
                let shrink = 0.5 * g * asinh_ratio(p.x, c);
                let res = p.x - z + shrink;
                let scale = z.abs() + p.x.abs() + shrink.abs();
                let rel = if scale > 0.0 { res.abs() / scale } else { 0.0 };
                worst = worst.max(rel);
                assert!(
                    rel <= 1e-12,
                    "c={c} g={g} z={z}: x={} residual {res:e} (rel {rel:e})",
                    p.x
                );
                // x lies between 0 and z, with z's sign.
                assert!(p.x.abs() <= z.abs() && p.x * z >= 0.0);
                // u is asinh(x/c) (it is the warm-start state).
                let u = asinh_ratio(p.x, c);
                assert!(
                    (p.u - u).abs() <= 1e-10 * (1.0 + u.abs()),
                    "u {} vs {}",
                    p.u,
                    u
                );
            }
        }
    }
    println!("worst relative prox residual {worst:e}");
}

#[test]
fn prox_is_odd_and_warm_start_independent() {
    for &c in &CS[1..] {
        for &g in &GS {
            for &z in &zs() {
                let a = prox(z, g, c);
                let b = prox(-z, g, c);
                assert_eq!(a.x, -b.x, "odd x at c={c} g={g} z={z}");
                assert_eq!(a.dx_dz, b.dx_dz);
                assert_eq!(a.sigma2, b.sigma2);
                assert_eq!(a.dx_dg, -b.dx_dg);
                // Any warm start reaches the same root (to solver tolerance).
                for warm in [0.0, 1e-9, 0.5, 3.0, 40.0, f64::INFINITY, f64::NAN] {
                    let w = prox_warm(z, g, c, warm);
                    assert!(
                        (w.x - a.x).abs() <= 1e-12 * (a.x.abs() + c.min(1.0) * 1e-3),
                        "warm {warm}: {} vs {} (c={c} g={g} z={z})",
                        w.x,
                        a.x
                    );
                }
            }
        }
    }
}

/// Analytic `dx/dz`, `dx/dg`, `d sigma2/dz`, `d sigma2/dg` against central
/// differences with step 1e-6 relative. Truncation error is O(h^2) ~ 1e-12
/// relative; rounding is bounded separately (see `noise`), so 1e-6 relative
/// plus that noise is safely above both but would catch any wrong factor or
/// sign.
#[test]
fn prox_derivatives_match_finite_differences() {
    for &c in &[1e-6, 1e-3, 1.0, 1e3] {
        for &g in &[1e-3, 0.1, 1.0, 10.0] {
            for &z in &[-5.0, -0.3, 0.01, 0.2, 1.5, 30.0] {
                let p = prox(z, g, c);
                let hz = 1e-6 * z.abs();
                let hg = 1e-6 * g;
                let (zp, zm) = (prox(z + hz, g, c), prox(z - hz, g, c));
                let (gp, gm) = (prox(z, g + hg, c), prox(z, g - hg, c));
                // Rounding noise of a central difference: ~eps |f| / h per
                // evaluation, and the prox itself is accurate to ~1e-14
                // relative; 100x that bounds the noise.
                let noise = |f: f64, h: f64| 100.0 * 1e-14 * f.abs().max(1e-300) / h;
                let checks = [
                    ("dx/dz", p.dx_dz, (zp.x - zm.x) / (2.0 * hz), noise(p.x, hz)),
                    ("dx/dg", p.dx_dg, (gp.x - gm.x) / (2.0 * hg), noise(p.x, hg)),
                    (
                        "dsigma2/dz",
                        p.dsigma2_dz,
                        (zp.sigma2 - zm.sigma2) / (2.0 * hz),
                        noise(p.sigma2, hz),
                    ),
                    (
                        "dsigma2/dg",
                        p.dsigma2_dg,
                        (gp.sigma2 - gm.sigma2) / (2.0 * hg),
                        noise(p.sigma2, hg),
                    ),
                ];
                for (name, analytic, fd, noise) in checks {
                    assert!(
                        (analytic - fd).abs() <= 1e-6 * analytic.abs().max(fd.abs()) + noise,
                        "{name} at c={c} g={g} z={z}: analytic {analytic:e} fd {fd:e}"
                    );
                }
            }
        }
    }
}
