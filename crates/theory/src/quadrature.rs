//! Gauss–Legendre rules, computed here (Newton on the Legendre recurrence)
//! so that the quadrature expectation has no external numerical dependency.

/// Nodes and weights of the `n`-point Gauss–Legendre rule on `[-1, 1]`,
/// accurate to a few ulps for the panel sizes used here (8–64).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = vec![0.0; n];
    let mut weights = vec![0.0; n];
    let nf = n as f64;
    for i in 0..n.div_ceil(2) {
        // Tricomi's initial guess for the i-th largest root, then Newton.
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (nf + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (p, d) = legendre_and_derivative(n, x);
            dp = d;
            let dx = p / d;
            x -= dx;
            if dx.abs() <= 1e-16 {
                break;
            }
        }
        let (_, d) = legendre_and_derivative(n, x);
        if d.is_finite() {
            dp = d;
        }
        let w = 2.0 / ((1.0 - x * x) * dp * dp);
        nodes[i] = -x;
        nodes[n - 1 - i] = x;
        weights[i] = w;
        weights[n - 1 - i] = w;
    }
    (nodes, weights)
}

/// `(P_n(x), P_n'(x))` by the three-term recurrence.
fn legendre_and_derivative(n: usize, x: f64) -> (f64, f64) {
    let mut p0 = 1.0;
    let mut p1 = x;
    if n == 0 {
        return (1.0, 0.0);
    }
    for k in 2..=n {
        let kf = k as f64;
        let p2 = ((2.0 * kf - 1.0) * x * p1 - (kf - 1.0) * p0) / kf;
        p0 = p1;
        p1 = p2;
    }
    let nf = n as f64;
    (p1, nf * (x * p1 - p0) / (x * x - 1.0))
}

/// Composite rule on `[a, b]` with `panels` panels of `per_panel` nodes.
pub fn composite(a: f64, b: f64, panels: usize, per_panel: usize) -> (Vec<f64>, Vec<f64>) {
    let (x, w) = gauss_legendre(per_panel);
    let width = (b - a) / panels as f64;
    let mut nodes = Vec::with_capacity(panels * per_panel);
    let mut weights = Vec::with_capacity(panels * per_panel);
    for p in 0..panels {
        let left = a + p as f64 * width;
        for (xi, wi) in x.iter().zip(&w) {
            nodes.push(left + 0.5 * width * (xi + 1.0));
            weights.push(0.5 * width * wi);
        }
    }
    (nodes, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrates_polynomials_exactly() {
        // An n-point rule is exact for degree 2n-1: int_{-1}^{1} x^k.
        for n in [8, 16] {
            let (x, w) = gauss_legendre(n);
            for k in 0..(2 * n) {
                let s: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(k as i32)).sum();
                let exact = if k % 2 == 1 {
                    0.0
                } else {
                    2.0 / (k as f64 + 1.0)
                };
                assert!((s - exact).abs() < 1e-14, "n={n} k={k} {s} {exact}");
            }
        }
    }

    #[test]
    fn gaussian_mass_on_half_line() {
        // int_0^9 phi(t) dt = 1/2 - (tail ~ 1e-19); composite 256 nodes.
        let (t, w) = composite(0.0, 9.0, 16, 16);
        let s: f64 = t
            .iter()
            .zip(&w)
            .map(|(t, w)| w * (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt())
            .sum();
        assert!((s - 0.5).abs() < 1e-15);
    }
}
