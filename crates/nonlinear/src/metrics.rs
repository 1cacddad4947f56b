//! Representation metrics of THEORY.md §11, computed on the last-layer
//! features of one common probe set of `n` inputs, before (A) and after (B)
//! fine-tuning.
//!
//! With `Xc` the `n x p` feature matrix whose columns (features) have had
//! their mean over the inputs subtracted, the centred Gram matrix is
//! `K = Xc Xc^T` (`n x n`). Then
//!
//! * participation ratio `PR(A) = (tr K_A)^2 / tr(K_A^2)`: the effective
//!   dimensionality of one representation (`k` for `k` equal-variance
//!   directions);
//! * effective number of shared dimensions
//!   `ENSD(A, B) = tr(K_A) tr(K_B) / tr(K_A K_B)`: `k l / m` when A has `k`
//!   and B has `l` equal-variance directions of which `m` are shared, and
//!   `ENSD(A, A) = PR(A)`.
//!
//! Both are invariant to rotations and to rescaling of the feature space,
//! because they only depend on `K` up to a scalar.
//!
//! **Computation.** `n x n` Gram matrices are never needed when the feature
//! dimension is smaller: `tr K = ||Xc||_F^2`, `tr(K^2) = ||Xc^T Xc||_F^2`
//! (`p x p`) and `tr(K_A K_B) = ||Xa^T Xb||_F^2` (`p_A x p_B`), by the cyclic
//! property of the trace. Each trace is computed on whichever side (features
//! or inputs) costs fewer multiply-adds; both give the same number up to
//! rounding (tested).

/// Errors of the representation metrics. `name` is the caller's label of the
/// feature matrix (e.g. "features before fine-tuning").
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("feature matrix '{name}': {len} values, expected n * p = {n} * {p} (row-major, inputs x features)")]
    ShapeMismatch {
        name: String,
        len: usize,
        n: usize,
        p: usize,
    },
    #[error("feature matrix '{name}': n = {n} inputs, expected at least 2 to centre the features")]
    TooFewInputs { name: String, n: usize },
    #[error("feature matrix '{name}': p = 0 features, expected at least 1")]
    NoFeatures { name: String },
    #[error("feature matrix '{name}': value {value} at input {row}, feature {col}; expected finite features")]
    NonFinite {
        name: String,
        row: usize,
        col: usize,
        value: f64,
    },
    #[error("feature matrix '{name}': every input has the same features (zero variance), so PR/ENSD are undefined; expected features that vary over the inputs")]
    ZeroVariance { name: String },
    #[error("feature matrices '{a}' ({na} inputs) and '{b}' ({nb} inputs) must be computed on the same inputs")]
    InputCountMismatch {
        a: String,
        na: usize,
        b: String,
        nb: usize,
    },
    #[error("feature matrices '{a}' and '{b}' share no variance (tr(K_A K_B) / sqrt(tr K_A^2 tr K_B^2) = {alignment:e}, below {ALIGNMENT_TOL:e}): ENSD is infinite")]
    NoSharedVariance {
        a: String,
        b: String,
        alignment: f64,
    },
}

/// Below this kernel alignment `tr(K_A K_B) / sqrt(tr(K_A^2) tr(K_B^2))`
/// (a cosine, in [0, 1]) the two representations are treated as orthogonal:
/// the exact value 0 is never reached in floating point, and ENSD would be a
/// meaningless rounding-error ratio above ~1e10.
pub const ALIGNMENT_TOL: f64 = 1e-10;

/// A validated, column-centred `n x p` feature matrix (row-major).
#[derive(Debug, Clone)]
pub struct Features {
    name: String,
    n: usize,
    p: usize,
    centred: Vec<f64>,
}

impl Features {
    /// Validates `data` (`n` inputs x `p` features, row-major) and subtracts
    /// each feature's mean over the inputs.
    pub fn new(name: &str, data: &[f64], n: usize, p: usize) -> Result<Self, MetricsError> {
        let name = name.to_string();
        if n.checked_mul(p) != Some(data.len()) {
            return Err(MetricsError::ShapeMismatch {
                name,
                len: data.len(),
                n,
                p,
            });
        }
        if n < 2 {
            return Err(MetricsError::TooFewInputs { name, n });
        }
        if p == 0 {
            return Err(MetricsError::NoFeatures { name });
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(MetricsError::NonFinite {
                name,
                row: k / p,
                col: k % p,
                value: data[k],
            });
        }
        // Exact test (all rows equal the first) rather than a threshold on
        // the centred trace, which rounding can leave at ~1e-32 instead of 0.
        let first = &data[..p];
        if data.chunks_exact(p).all(|row| row == first) {
            return Err(MetricsError::ZeroVariance { name });
        }
        let mut mean = vec![0.0; p];
        for row in data.chunks_exact(p) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let centred = data
            .chunks_exact(p)
            .flat_map(|row| row.iter().zip(&mean).map(|(v, m)| v - m))
            .collect();
        Ok(Self {
            name,
            n,
            p,
            centred,
        })
    }

    /// Number of inputs.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of features.
    pub fn p(&self) -> usize {
        self.p
    }

    /// The caller's label.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.centred[i * self.p..(i + 1) * self.p]
    }

    /// `tr K = ||Xc||_F^2`.
    pub fn trace(&self) -> f64 {
        self.centred.iter().map(|v| v * v).sum()
    }
}

/// Which side a product trace is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `||Xa^T Xb||_F^2`, cost `n p_A p_B`.
    Features,
    /// `sum_ij K_A[i,j] K_B[i,j]`, cost `n^2 (p_A + p_B) / 2`.
    Inputs,
}

fn cheapest(n: usize, pa: usize, pb: usize) -> Route {
    // Gram matrices are symmetric, so only half of each is computed.
    if (pa as f64) * (pb as f64) <= (n as f64) * ((pa + pb) as f64) / 2.0 {
        Route::Features
    } else {
        Route::Inputs
    }
}

/// `tr(K_A K_B)` for two feature matrices over the same `n` inputs.
fn trace_product(a: &Features, b: &Features, route: Route) -> f64 {
    let n = a.n;
    match route {
        Route::Features => {
            let (pa, pb) = (a.p, b.p);
            let mut cross = vec![0.0; pa * pb];
            for i in 0..n {
                let (ra, rb) = (a.row(i), b.row(i));
                for (c, &x) in cross.chunks_exact_mut(pb).zip(ra) {
                    for (cj, &y) in c.iter_mut().zip(rb) {
                        *cj += x * y;
                    }
                }
            }
            cross.iter().map(|v| v * v).sum()
        }
        Route::Inputs => {
            let dot = |f: &Features, i: usize, j: usize| -> f64 {
                f.row(i).iter().zip(f.row(j)).map(|(x, y)| x * y).sum()
            };
            let mut diag = 0.0;
            let mut off = 0.0;
            for i in 0..n {
                diag += dot(a, i, i) * dot(b, i, i);
                for j in 0..i {
                    off += dot(a, i, j) * dot(b, i, j);
                }
            }
            diag + 2.0 * off
        }
    }
}

fn check_same_inputs(a: &Features, b: &Features) -> Result<(), MetricsError> {
    if a.n != b.n {
        return Err(MetricsError::InputCountMismatch {
            a: a.name.clone(),
            na: a.n,
            b: b.name.clone(),
            nb: b.n,
        });
    }
    Ok(())
}

/// `PR = (tr K)^2 / tr(K^2)`, in `[1, min(n - 1, p)]`.
pub fn participation_ratio(x: &Features) -> f64 {
    let t = x.trace();
    t * t / trace_product(x, x, cheapest(x.n, x.p, x.p))
}

/// `ENSD(A, B) = tr(K_A) tr(K_B) / tr(K_A K_B)`; an error when the two
/// representations are (numerically) orthogonal, where it is infinite.
pub fn ensd(a: &Features, b: &Features) -> Result<f64, MetricsError> {
    check_same_inputs(a, b)?;
    let ab = trace_product(a, b, cheapest(a.n, a.p, b.p));
    let aa = trace_product(a, a, cheapest(a.n, a.p, a.p));
    let bb = trace_product(b, b, cheapest(b.n, b.p, b.p));
    let alignment = ab / (aa * bb).sqrt();
    if alignment.is_nan() || alignment < ALIGNMENT_TOL {
        return Err(MetricsError::NoSharedVariance {
            a: a.name.clone(),
            b: b.name.clone(),
            alignment,
        });
    }
    Ok(a.trace() * b.trace() / ab)
}

/// The §11 numbers for one before/after pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepresentationChange {
    /// `PR(A)`, before fine-tuning.
    pub pr_before: f64,
    /// `PR(B)`, after fine-tuning.
    pub pr_after: f64,
    /// `ENSD(A, B)`.
    pub ensd: f64,
}

/// PR of both representations and their ENSD.
pub fn compare(before: &Features, after: &Features) -> Result<RepresentationChange, MetricsError> {
    Ok(RepresentationChange {
        ensd: ensd(before, after)?,
        pr_before: participation_ratio(before),
        pr_after: participation_ratio(after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Sylvester Hadamard matrix of size `n` (a power of two), entry (i, j).
    /// Columns 1.. are exactly zero-mean, mutually orthogonal, with squared
    /// norm `n`: an exact design whose Gram spectrum is known.
    fn hadamard(i: usize, j: usize) -> f64 {
        if (i & j).count_ones() % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    }

    /// `p x k` matrix with orthonormal columns (column-major: `u[j][r]`),
    /// by twice-applied modified Gram–Schmidt on uniform noise.
    fn orthonormal(rng: &mut ChaCha8Rng, p: usize, k: usize) -> Vec<Vec<f64>> {
        let mut u: Vec<Vec<f64>> = Vec::new();
        while u.len() < k {
            let mut v: Vec<f64> = (0..p).map(|_| rng.random::<f64>() - 0.5).collect();
            for _ in 0..2 {
                for w in &u {
                    let d: f64 = v.iter().zip(w).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(w).for_each(|(a, b)| *a -= d * b);
                }
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            v.iter_mut().for_each(|a| *a /= norm);
            u.push(v);
        }
        u
    }

    /// `n x p` features `X[i] = offset + sum_j H[i, col_j] sqrt(var_j) U[:, j]`
    /// with random orthonormal `U` and a random constant offset (removed by
    /// centring). Centred Gram eigenvalues are exactly `n var_j`.
    fn exact_features(seed: u64, n: usize, p: usize, dirs: &[(usize, f64)]) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u = orthonormal(&mut rng, p, dirs.len());
        let offset: Vec<f64> = (0..p).map(|_| 10.0 * rng.random::<f64>()).collect();
        let mut x = Vec::with_capacity(n * p);
        for i in 0..n {
            for r in 0..p {
                let mut v = offset[r];
                for (j, &(col, var)) in dirs.iter().enumerate() {
                    v += hadamard(i, col) * var.sqrt() * u[j][r];
                }
                x.push(v);
            }
        }
        x
    }

    fn feats(name: &str, x: &[f64], n: usize, p: usize) -> Features {
        Features::new(name, x, n, p).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1.0), "{a} vs {b}");
    }

    const N: usize = 64;

    #[test]
    fn pr_of_k_equal_directions_is_k_on_both_routes() {
        let dirs: Vec<_> = (1..=5).map(|c| (c * 3, 1.0)).collect();
        // p < n (feature route) and p > n (input route).
        for p in [12, 100] {
            let x = exact_features(1, N, p, &dirs);
            let f = feats("A", &x, N, p);
            close(participation_ratio(&f), 5.0, 1e-10);
            close(f.trace(), 5.0 * N as f64, 1e-10);
            close(
                trace_product(&f, &f, Route::Features),
                trace_product(&f, &f, Route::Inputs),
                1e-10,
            );
        }
    }

    #[test]
    fn pr_of_spectrum_matches_closed_form() {
        let vars = [4.0, 2.5, 1.0, 0.3, 0.01];
        let dirs: Vec<_> = vars.iter().enumerate().map(|(j, &s)| (j + 7, s)).collect();
        let want = vars.iter().sum::<f64>().powi(2) / vars.iter().map(|s| s * s).sum::<f64>();
        for p in [9, 80] {
            let f = feats("A", &exact_features(2, N, p, &dirs), N, p);
            close(participation_ratio(&f), want, 1e-10);
        }
    }

    #[test]
    fn ensd_with_itself_equals_pr() {
        let dirs = [(3, 2.0), (5, 1.0), (9, 0.5)];
        let f = feats("A", &exact_features(3, N, 10, &dirs), N, 10);
        close(ensd(&f, &f).unwrap(), participation_ratio(&f), 1e-12);
        // A different rotation of the same directions is the same
        // representation up to rotation.
        let g = feats("A'", &exact_features(4, N, 13, &dirs), N, 13);
        close(ensd(&f, &g).unwrap(), participation_ratio(&f), 1e-10);
    }

    #[test]
    fn ensd_of_k_and_l_dims_sharing_m_is_kl_over_m() {
        for (k, l, m) in [(6, 4, 2), (3, 3, 1), (5, 8, 5), (10, 7, 3)] {
            // A uses Hadamard columns 1..=k, B columns k-m+1..=k-m+l.
            let da: Vec<_> = (1..=k).map(|c| (c, 1.0)).collect();
            let db: Vec<_> = (k - m + 1..=k - m + l).map(|c| (c, 1.0)).collect();
            for (pa, pb) in [(12, 9), (90, 70)] {
                let a = feats("A", &exact_features(5, N, pa, &da), N, pa);
                let b = feats("B", &exact_features(6, N, pb, &db), N, pb);
                let want = (k * l) as f64 / m as f64;
                close(ensd(&a, &b).unwrap(), want, 1e-10);
                close(ensd(&b, &a).unwrap(), want, 1e-10);
                let c = compare(&a, &b).unwrap();
                close(c.pr_before, k as f64, 1e-10);
                close(c.pr_after, l as f64, 1e-10);
            }
        }
    }

    #[test]
    fn orthogonal_representations_are_an_error() {
        let a = feats(
            "before",
            &exact_features(7, N, 8, &[(1, 1.0), (2, 1.0)]),
            N,
            8,
        );
        let b = feats(
            "after",
            &exact_features(8, N, 8, &[(3, 1.0), (4, 1.0)]),
            N,
            8,
        );
        let err = ensd(&a, &b).unwrap_err();
        assert!(
            matches!(err, MetricsError::NoSharedVariance { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("'before'") && msg.contains("'after'"), "{msg}");
    }

    #[test]
    fn invariant_to_rotation_and_scaling() {
        let (n, p) = (40, 6);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let x: Vec<f64> = (0..n * p).map(|_| rng.random::<f64>()).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 0.3 * rng.random::<f64>()).collect();
        // Rotate x's feature space by a random orthogonal p x p matrix Q.
        let q = orthonormal(&mut rng, p, p);
        let rotated: Vec<f64> = x
            .chunks_exact(p)
            .flat_map(|row| {
                q.iter()
                    .map(|col| row.iter().zip(col).map(|(a, b)| a * b).sum::<f64>())
                    .collect::<Vec<_>>()
            })
            .collect();
        let scaled: Vec<f64> = y.iter().map(|v| 37.5 * v).collect();
        let (fx, fy) = (feats("x", &x, n, p), feats("y", &y, n, p));
        let (fr, fs) = (feats("Qx", &rotated, n, p), feats("cy", &scaled, n, p));
        close(participation_ratio(&fr), participation_ratio(&fx), 1e-12);
        close(participation_ratio(&fs), participation_ratio(&fy), 1e-12);
        close(ensd(&fr, &fs).unwrap(), ensd(&fx, &fy).unwrap(), 1e-12);
        // Both computation routes agree on a generic cross term too.
        close(
            trace_product(&fx, &fy, Route::Features),
            trace_product(&fx, &fy, Route::Inputs),
            1e-12,
        );
    }

    #[test]
    fn bad_inputs_are_named_errors() {
        let e = Features::new("feat", &[1.0; 5], 2, 3).unwrap_err();
        assert!(matches!(
            e,
            MetricsError::ShapeMismatch {
                len: 5,
                n: 2,
                p: 3,
                ..
            }
        ));
        assert!(
            e.to_string()
                .contains("'feat': 5 values, expected n * p = 2 * 3"),
            "{e}"
        );
        let e = Features::new("feat", &[1.0; 3], 1, 3).unwrap_err();
        assert!(matches!(e, MetricsError::TooFewInputs { n: 1, .. }), "{e}");
        let e = Features::new("feat", &[], 2, 0).unwrap_err();
        assert!(matches!(e, MetricsError::NoFeatures { .. }), "{e}");
        // Overflowing n * p is a shape mismatch, not a panic.
        let e = Features::new("feat", &[1.0], usize::MAX, 2).unwrap_err();
        assert!(matches!(e, MetricsError::ShapeMismatch { .. }), "{e}");
        let e = Features::new("feat", &[1.0, 2.0, 3.0, f64::NAN], 2, 2).unwrap_err();
        assert!(matches!(e, MetricsError::NonFinite { row: 1, col: 1, .. }));
        assert!(e.to_string().contains("at input 1, feature 1"), "{e}");
        let e = Features::new("feat", &[0.1, 2.0, 0.1, 2.0, 0.1, 2.0], 3, 2).unwrap_err();
        assert!(matches!(e, MetricsError::ZeroVariance { .. }), "{e}");
        let a = feats("a", &[0.0, 1.0, 2.0], 3, 1);
        let b = feats("b", &[0.0, 1.0], 2, 1);
        let e = ensd(&a, &b).unwrap_err();
        assert!(
            matches!(e, MetricsError::InputCountMismatch { na: 3, nb: 2, .. }),
            "{e}"
        );
    }
}
