//! Deterministic, parallel f64 mat-vec kernels on a row-major `n x d`
//! matrix: `X v` and `r^T X` (= `(X^T r)^T`).
//!
//! Why not candle's `matmul` on the CPU: for a matrix-*vector* product its
//! gemm backend takes a single-threaded gemv path, and every call probes the
//! machine's core count (parsing /proc when `RAYON_NUM_THREADS` is unset),
//! which costs ~25 µs — more than a whole epoch at the test sizes. These
//! kernels are wrapped as candle custom ops in [`crate::gd`], so the GD loop
//! still runs on candle tensors; on CUDA the regular cuBLAS `matmul` is used.
//!
//! Results do not depend on the number of threads: rows (for `X v`) and row
//! chunks (for `r^T X`, reduced in a fixed order) are fixed by `(n, d)`.

use crate::data::dot;
use rayon::prelude::*;

/// Below this many matrix entries the kernels run sequentially (thread
/// dispatch would cost more than the product).
const PAR_MIN: usize = 1 << 15;

/// `out = X v`.
pub(crate) fn matvec(x: &[f64], n: usize, d: usize, v: &[f64], out: &mut [f64]) {
    debug_assert_eq!(x.len(), n * d);
    if n * d < PAR_MIN {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(d)) {
            *o = dot(row, v);
        }
    } else {
        out.par_iter_mut()
            .zip(x.par_chunks_exact(d))
            .with_min_len(16)
            .for_each(|(o, row)| *o = dot(row, v));
    }
}

/// `out += a * row` (vectorisable axpy).
#[inline]
fn axpy(out: &mut [f64], a: f64, row: &[f64]) {
    for (o, x) in out.iter_mut().zip(row) {
        *o += a * x;
    }
}

/// `out = r^T X` (length `d`), i.e. `X^T r`. Each fixed chunk of rows is
/// streamed contiguously into its own partial sum; partials are added in
/// chunk order.
pub(crate) fn vecmat(x: &[f64], n: usize, d: usize, r: &[f64], out: &mut [f64]) {
    debug_assert_eq!(x.len(), n * d);
    out.iter_mut().for_each(|o| *o = 0.0);
    if n * d < PAR_MIN {
        for (row, &a) in x.chunks_exact(d).zip(r) {
            axpy(out, a, row);
        }
        return;
    }
    let rows_per_chunk = n.div_ceil(16).max(64);
    let partials: Vec<Vec<f64>> = x
        .par_chunks(rows_per_chunk * d)
        .zip(r.par_chunks(rows_per_chunk))
        .map(|(xc, rc)| {
            let mut p = vec![0.0; d];
            for (row, &a) in xc.chunks_exact(d).zip(rc) {
                axpy(&mut p, a, row);
            }
            p
        })
        .collect();
    out.par_chunks_mut(1024).enumerate().for_each(|(b, o)| {
        let j0 = b * 1024;
        let len = o.len();
        for p in &partials {
            for (ov, pv) in o.iter_mut().zip(&p[j0..j0 + len]) {
                *ov += pv;
            }
        }
    });
}
