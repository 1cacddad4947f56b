//! The scalar proximal operator of the replica theory (THEORY §9) and its
//! derivatives.
//!
//! `X_hat(z; g, c) = argmin_x (x - z)^2 / (2g) + q(x; c)` solves
//! `x - z + (g/2) asinh(x/c) = 0`. Solving for `x` directly is badly
//! conditioned in the rich regime (`c` down to `1e-12`: `asinh(x/c)` is a
//! near-step), so we substitute `x = c sinh(u)`, `u = asinh(x/c)`:
//!
//! `h(u) = c sinh(u) + (g/2) u - |z| = 0`,
//!
//! which for `u >= 0` is increasing and convex. Newton started to the right
//! of the root therefore decreases monotonically onto it; a step that leaves
//! the bracket `[0, min(asinh(|z|/c), 2|z|/g)]` falls back to bisection. The
//! prox is odd in `z`, so we solve for `|z|` and restore the sign.
//!
//! In `u` the derivatives come out in closed form and bounded. With
//! `C = c cosh(u) = sqrt(x^2 + c^2)` and `D = C + g/2`:
//! `dx/dz = C/D`, `dx/dg = -(u/2) C/D`, `sigma2 = g C/D`,
//! `d sigma2/dx = (g/D)^2 tanh(u)/2`, `(d sigma2/dg)|_x = (C/D)^2`.

/// Result of one prox evaluation: the estimate and everything the replica
/// fixed point needs to differentiate through it. Derivatives are total
/// derivatives at fixed `z` (resp. fixed `g`), with signs for negative `z`
/// already applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prox {
    /// `X_hat(z)`.
    pub x: f64,
    /// `asinh(x / c)` (signed); reuse it as the next warm start.
    pub u: f64,
    /// `dX_hat/dz = 1 / (1 + g q''(x))`.
    pub dx_dz: f64,
    /// `du/dz = 1 / (c cosh u + g/2)`; with `du/dg = -(u/2) du/dz` it gives
    /// a first-order predictor of `u` at a nearby `(z, g)` (warm starts).
    pub du_dz: f64,
    /// `dX_hat/dg = -q'(x) / (1 + g q''(x))`.
    pub dx_dg: f64,
    /// `sigma2 = g / (1 + g q''(x)) = g dx/dz`.
    pub sigma2: f64,
    /// `d sigma2 / dz` (through `x`).
    pub dsigma2_dz: f64,
    /// `d sigma2 / dg` (explicit plus through `x`).
    pub dsigma2_dg: f64,
}

/// `(c sinh u, c cosh u)` for `u >= 0`, accurate to a few ulps, from at
/// most one `exp`: a Taylor polynomial below `u = 0.1` (where
/// `(e^u - e^-u)/2` would cancel; the first omitted term is
/// `u^11/11! < 3e-19` relative), `(e^u -+ e^-u)/2` up to `u = 350`, and
/// `c e^u / 2` folded into one exponent beyond (so that tiny `c` with huge
/// `u` cannot overflow).
#[inline]
fn c_sinh_cosh(u: f64, c: f64) -> (f64, f64) {
    if u < 0.1 {
        let u2 = u * u;
        let sh = u
            * (1.0
                + u2 / 6.0
                    * (1.0
                        + u2 / 20.0 * (1.0 + u2 / 42.0 * (1.0 + u2 / 72.0 * (1.0 + u2 / 110.0)))));
        let ch = 1.0
            + u2 / 2.0
                * (1.0 + u2 / 12.0 * (1.0 + u2 / 30.0 * (1.0 + u2 / 56.0 * (1.0 + u2 / 90.0))));
        (c * sh, c * ch)
    } else if u <= 350.0 {
        let e = u.exp();
        let inv = 1.0 / e;
        (c * 0.5 * (e - inv), c * 0.5 * (e + inv))
    } else {
        let e = (u + c.ln() - std::f64::consts::LN_2).exp();
        (e, e)
    }
}

/// `(sinh d, cosh d)` for a small Newton step `d` (Taylor below 0.1).
#[inline]
fn sinh_cosh_small(d: f64) -> (f64, f64) {
    if d.abs() < 0.1 {
        let d2 = d * d;
        let sh = d * (1.0 + d2 / 6.0 * (1.0 + d2 / 20.0 * (1.0 + d2 / 42.0 * (1.0 + d2 / 72.0))));
        let ch = 1.0 + d2 / 2.0 * (1.0 + d2 / 12.0 * (1.0 + d2 / 30.0 * (1.0 + d2 / 56.0)));
        (sh, ch)
    } else {
        (d.sinh(), d.cosh())
    }
}

/// Solve `c sinh(u) + half_g u = a` for `a > 0`, `c > 0`, `half_g >= 0`.
/// Returns `(u, c sinh u, c cosh u)` at the root. The final Newton step `d`
/// is applied exactly through `sinh(u + d) = sinh u cosh d + cosh u sinh d`,
/// so no extra `exp` is needed and `x` keeps full relative accuracy even when
/// the step was not tiny (nearly linear `h`, where one step is exact).
#[inline]
fn solve_u(a: f64, half_g: f64, c: f64, warm: f64) -> (f64, f64, f64) {
    let mut lo = 0.0_f64;
    // Upper end of the bracket: c sinh(u) >= 0 gives u <= 2a/g (one
    // division), and (g/2) u >= 0 gives u <= asinh(a/c) (a logarithm, so it
    // is computed only when needed: cold starts, g = 0, overshoots).
    let cheap_hi = if half_g > 0.0 {
        a / half_g
    } else {
        f64::INFINITY
    };
    let warm_ok = warm > lo && warm < cheap_hi;
    let mut tight = !warm_ok;
    let mut hi = if warm_ok {
        cheap_hi
    } else {
        cheap_hi.min(crate::penalty::asinh_ratio(a, c))
    };
    let mut u = if warm_ok && warm < hi { warm } else { hi };
    for _ in 0..200 {
        let (cs, cc) = c_sinh_cosh(u, c);
        let h = cs + half_g * u - a;
        if h > 0.0 {
            hi = u;
        } else {
            lo = u;
        }
        let inv_dh = 1.0 / (cc + half_g);
        let du = -h * inv_dh;
        // Newton's error after this step is h''(xi) du^2 / (2 h'(u)), xi
        // between u and u + du, and h'' = c sinh <= cs + cc |du| there.
        // Stopping on this prediction (safety factor 2, target 1e-14 u)
        // saves the confirming iteration; in the lazy or deep-shrinkage
        // regime h is almost linear and one step suffices. The tolerance is
        // relative to u (not absolute) because x = c sinh(u) ~ c u for small
        // u must keep its relative accuracy; rounding in h limits the
        // attainable |du| to ~1e-16 u, well inside it.
        if du.abs() <= 1e-13 * u || (cs + cc * du.abs()) * inv_dh * du * du <= 1e-14 * u {
            let (sd, cd) = sinh_cosh_small(du);
            return (u + du, cs * cd + cc * sd, cc * cd + cs * sd);
        }
        let mut next = u + du;
        if !(next > lo && next < hi) || (du > 1.0 && !tight) {
            // Overshoot (from the left of the root Newton jumps right; with
            // the loose bound 2a/g that can be hundreds of units away in the
            // exponential region): tighten the bracket with asinh(a/c), from
            // whose right end Newton descends monotonically, else bisect.
            if !tight {
                hi = hi.min(crate::penalty::asinh_ratio(a, c));
                tight = true;
                if !(next > lo && next < hi) {
                    next = hi;
                }
            } else {
                next = 0.5 * (lo + hi);
            }
            if hi - lo <= 1e-13 * hi {
                u = 0.5 * (lo + hi);
                break;
            }
        }
        u = next;
    }
    let (cs, cc) = c_sinh_cosh(u, c);
    (u, cs, cc)
}

/// Prox with a warm start `warm_u` (a guess of `u = asinh(x/c)`, e.g. a
/// previous solution for a nearby `z`; its sign is ignored, and a guess
/// outside the bracket, such as `f64::INFINITY`, means "no warm start"). Domain: `z` finite, `g >= 0`, `c >= 0`; `c = 0` (the
/// degenerate saddle: infinite penalty off zero) returns `x = 0` exactly with
/// `sigma2 = 0` and zero derivatives.
#[inline]
pub fn prox_warm(z: f64, g: f64, c: f64, warm_u: f64) -> Prox {
    let a = z.abs();
    if c == 0.0 || a == 0.0 {
        // At z = 0 (c > 0): x = 0, u = 0, C = c, D = c + g/2.
        if c == 0.0 {
            return Prox {
                x: 0.0,
                u: 0.0,
                dx_dz: 0.0,
                du_dz: 0.0,
                dx_dg: 0.0,
                sigma2: 0.0,
                dsigma2_dz: 0.0,
                dsigma2_dg: 0.0,
            };
        }
        let r = c / (c + 0.5 * g);
        return Prox {
            x: 0.0,
            u: 0.0,
            dx_dz: r,
            du_dz: 1.0 / (c + 0.5 * g),
            dx_dg: 0.0,
            sigma2: g * r,
            dsigma2_dz: 0.0,
            dsigma2_dg: r * r,
        };
    }
    let half_g = 0.5 * g;
    let (u_abs, x_abs, big_c) = solve_u(a, half_g, c, warm_u.abs());
    let sign = if z < 0.0 { -1.0 } else { 1.0 };
    let u = sign * u_abs;
    let x = sign * x_abs;
    let inv_d = 1.0 / (big_c + half_g);
    let r = big_c * inv_d;
    let dx_dz = r;
    let dx_dg = -0.5 * u * r;
    let g_over_d = g * inv_d;
    // tanh(u) = x / C, bounded by 1.
    let dsig_dx = 0.5 * g_over_d * g_over_d * (x / big_c);
    Prox {
        x,
        u,
        dx_dz,
        du_dz: inv_d,
        dx_dg,
        sigma2: g * r,
        dsigma2_dz: dsig_dx * dx_dz,
        dsigma2_dg: r * r + dsig_dx * dx_dg,
    }
}

/// Prox without a warm start (starts at the right end of the bracket).
pub fn prox(z: f64, g: f64, c: f64) -> Prox {
    prox_warm(z, g, c, f64::INFINITY)
}
