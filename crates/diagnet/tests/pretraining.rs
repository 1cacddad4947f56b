//! Test 2: real pretraining by GD reaches the oracle state of THEORY §4.
//!
//! GD from the symmetric initialisation on n_pt = 4 d noiseless samples of
//! the pretraining teacher (overdetermined, so the interpolator is unique:
//! beta_pt itself). Checks: beta reaches beta_pt; the conserved quantities
//! drift by at most 1e-3 (GD multiplies lambda_i and c_i by
//! (1 - lr^2 g_i^2) per step, so the drift is sum lr^2 g_i^2, which the
//! chosen lr keeps below 1e-4 here); the fine-tuning scales c_ft from the
//! trained weights match the oracle's within 1e-3 relative per coordinate.
//!
//! Learning rate, in two phases. GD multiplies lambda_i and c_i by
//! (1 - lr^2 g_i^2) per step, so the relative drift is ~ lr * int g_i^2 dt:
//! proportional to lr and concentrated where |g_i| is large. A single
//! lr = 2 drifts c by 1.4% (c = 1) and 19% (c = 1e-3). So phase 1 fits the
//! data at lr = 0.005 until the train MSE is 1e-5, and phase 2 continues at
//! lr = 1 to full convergence. Phase 2 is needed because the PT-inactive
//! coordinates at c = 1e-3 have curvature ~ 2c/d and relax over ~1e6
//! epochs, and their c_ft = 2(lambda + c)(1 + O(beta^2/c^2)) needs
//! |beta| << c. Measured: drift of c 3e-5 (c = 1) and 5.2e-4 (c = 1e-3),
//! c_ft mismatch 2e-5 and 3.5e-4 (phase-2 lr = 2 or stopping phase 1 at
//! MSE 1e-4 pushes the c = 1e-3 drift past 1e-3, so the margin is ~2x).

use ptft_diagnet::data::{design, labels, DesignSpec};
use ptft_diagnet::gd::{train, DeviceKind, GdConfig, StopReason};
use ptft_diagnet::task::sample_two_task;
use ptft_diagnet::weights::{oracle_pretrained, reinit, symmetric_init};

const D: usize = 40;
const N_PT: usize = 4 * D;

fn case(c: f64, lf: f64) {
    let lambda = lf * c;
    let task = sample_two_task(D, 0.2, 0.1, 0.5, 1.0, 3).unwrap();
    let x = design(&DesignSpec {
        n: N_PT,
        d: D,
        seed: 4,
    });
    let y = labels(&x, N_PT, D, &task.beta_pt, 0.0, 0).unwrap();
    let init = symmetric_init(D, c, lambda).unwrap();
    let fit = GdConfig {
        lr: 0.005,
        max_epochs: 1_000_000,
        tol_train_mse: 1e-5,
        tol_rel_step: f64::INFINITY,
        check_every: 1000,
        device: DeviceKind::Cpu,
    };
    let r1 = train(&x, &y, N_PT, D, &init, &fit).unwrap();
    assert_eq!(
        r1.stop,
        StopReason::Converged,
        "phase 1 did not fit: mse {}",
        r1.train_mse
    );
    let relax = GdConfig {
        lr: 1.0,
        max_epochs: 2_000_000,
        tol_train_mse: 1e-20,
        tol_rel_step: 1e-10,
        check_every: 1000,
        device: DeviceKind::Cpu,
    };
    let r = train(&x, &y, N_PT, D, &r1.weights, &relax).unwrap();
    let w = &r.weights;
    let beta = w.beta();
    let max_err = beta
        .iter()
        .zip(&task.beta_pt)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    // Conserved-quantity drift: relative to c (lambda may be 0).
    let drift_l = w
        .lambda_i()
        .iter()
        .chain(&w.lambda_minus_i())
        .map(|l| (l - lambda).abs() / c)
        .fold(0.0, f64::max);
    let drift_c = w
        .c_i()
        .iter()
        .map(|ci| (ci - c).abs() / c)
        .fold(0.0, f64::max);
    let (_, c_ft_trained) = reinit(w, 0.0).unwrap();
    let oracle = oracle_pretrained(&task.beta_pt, c, lambda).unwrap();
    let (_, c_ft_oracle) = reinit(&oracle, 0.0).unwrap();
    let c_ft_rel = c_ft_trained
        .iter()
        .zip(&c_ft_oracle)
        .map(|(a, b)| (a - b).abs() / b)
        .fold(0.0, f64::max);
    eprintln!(
        "c={c:e} lambda={lf}c: epochs={}+{} stop={:?} max|beta-beta_pt|={max_err:.1e} drift lambda={drift_l:.1e} c={drift_c:.1e} c_ft rel={c_ft_rel:.1e}",
        r1.epochs, r.epochs, r.stop
    );
    assert!(max_err <= 1e-3 * c, "beta not reached: {max_err:e}");
    assert!(
        drift_l <= 1e-3 && drift_c <= 1e-3,
        "drift lambda {drift_l:e}, c {drift_c:e}"
    );
    assert!(c_ft_rel <= 1e-3, "c_ft mismatch {c_ft_rel:e}");
}

#[test]
fn pretraining_reaches_oracle_c_1e_3() {
    for lf in [0.0, 0.5, -0.5] {
        case(1e-3, lf);
    }
}

#[test]
fn pretraining_reaches_oracle_c_1() {
    for lf in [0.0, 0.5, -0.5] {
        case(1.0, lf);
    }
}
