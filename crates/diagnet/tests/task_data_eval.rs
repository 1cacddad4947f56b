//! Tests 4 (task sampling), 5 (design generation), 6 (divergence),
//! 7 (dual solver) and 8 (evaluation).

use ptft_diagnet::data::{checksum, design, labels, DesignSpec};
use ptft_diagnet::dual::implicit_bias_solve;
use ptft_diagnet::eval::{active_frac, param_mse, rel_l2, test_mse};
use ptft_diagnet::gd::{matvec_seconds, train, DeviceKind, GdConfig};
use ptft_diagnet::task::{sample_single_task, sample_two_task, Group};
use ptft_diagnet::weights::{oracle_pretrained, reinit, symmetric_init};
use ptft_diagnet::DiagnetError;

// ---------------------------------------------------------------- 4. task

#[test]
fn two_task_exact_counts_and_teachers() {
    let (d, rho_pt, rho_ft, omega) = (1000, 0.1, 0.3, 0.25);
    let t = sample_two_task(d, rho_pt, rho_ft, omega, 1.5, 7).unwrap();
    let n_ft = 300;
    let n_ov = 75; // round(0.25 * 300)
    assert_eq!(t.count(Group::Overlap), n_ov);
    assert_eq!(t.count(Group::New), n_ft - n_ov);
    assert_eq!(t.count(Group::PtOnly), 100 - n_ov);
    assert_eq!(t.count(Group::None), d - 100 - (n_ft - n_ov));
    for i in 0..d {
        let g = t.group[i];
        let pt_active = matches!(g, Group::Overlap | Group::PtOnly);
        let ft_active = matches!(g, Group::Overlap | Group::New);
        assert_eq!(t.beta_pt[i] != 0.0, pt_active);
        if pt_active {
            assert_eq!(t.beta_pt[i].abs(), 1.5);
        }
        assert_eq!(t.beta_ft[i] != 0.0, ft_active);
    }
    // FT teacher variance 1/rho_ft on active coordinates (300 draws: the
    // sample variance is within 5 standard errors, sqrt(2/300) relative).
    let v: f64 = t.beta_ft.iter().map(|b| b * b).sum::<f64>() / n_ft as f64;
    assert!(
        (v * rho_ft - 1.0).abs() < 5.0 * (2.0f64 / 300.0).sqrt(),
        "var {v}"
    );
    // Rounding of small counts: round(0.5 * round(0.1 * 25)) = round(1.5) = 2 (half away from zero).
    let t = sample_two_task(25, 0.1, 0.1, 0.5, 1.0, 1).unwrap();
    assert_eq!(t.count(Group::Overlap) + t.count(Group::New), 3);
    assert_eq!(t.count(Group::Overlap), 2);
}

#[test]
fn seeds_reproducible_and_distinct() {
    let a = sample_two_task(500, 0.1, 0.1, 0.5, 1.0, 6).unwrap();
    let b = sample_two_task(500, 0.1, 0.1, 0.5, 1.0, 6).unwrap();
    let c = sample_two_task(500, 0.1, 0.1, 0.5, 1.0, 7).unwrap();
    assert_eq!(a.group, b.group);
    assert_eq!(a.beta_pt, b.beta_pt);
    assert_eq!(a.beta_ft, b.beta_ft);
    assert_ne!(a.group, c.group);
    assert_ne!(a.beta_ft, c.beta_ft);
    let s = sample_single_task(1000, 0.04, 3).unwrap();
    assert_eq!(s.count(Group::Active), 40);
    assert_eq!(s.count(Group::Inactive), 960);
    assert!(s.beta_pt.iter().all(|&b| b == 0.0));
    assert_eq!(
        s.beta_ft,
        sample_single_task(1000, 0.04, 3).unwrap().beta_ft
    );
    assert_eq!(Group::PtOnly.as_str(), "pt_only");
}

#[test]
fn infeasible_and_invalid_tasks_are_named() {
    // pt-only group negative: rho_pt - omega*rho_ft < 0.
    let e = sample_two_task(1000, 0.1, 0.5, 0.5, 1.0, 0).unwrap_err();
    assert!(matches!(e, DiagnetError::InfeasibleTask(_)));
    assert!(e.to_string().contains("rho_pt - omega*rho_ft"), "{e}");
    // none group negative: 1 - rho_pt - (1-omega) rho_ft < 0.
    let e = sample_two_task(1000, 0.5, 0.9, 0.2, 1.0, 0).unwrap_err();
    assert!(
        e.to_string().contains("1 - rho_pt - (1 - omega)*rho_ft"),
        "{e}"
    );
    // Feasible in probability but not after rounding at tiny d.
    let e = sample_two_task(10, 0.1, 0.2, 1.0, 1.0, 0).unwrap_err();
    assert!(e.to_string().contains("rho_pt - omega*rho_ft"), "{e}");
    for (rho_pt, rho_ft, omega) in [
        (0.0, 0.1, 0.5),
        (0.1, 1.0, 0.5),
        (0.1, 0.1, 1.5),
        (f64::NAN, 0.1, 0.5),
    ] {
        let e = sample_two_task(100, rho_pt, rho_ft, omega, 1.0, 0).unwrap_err();
        assert!(e.to_string().contains("outside the valid range"), "{e}");
    }
    assert!(sample_two_task(0, 0.1, 0.1, 0.5, 1.0, 0)
        .unwrap_err()
        .to_string()
        .contains("d = 0"));
    assert!(sample_two_task(5, 0.05, 0.05, 0.5, 1.0, 0).is_err()); // rounds to 0 active
    assert!(sample_single_task(100, 1.0, 0).is_err());
    assert!(sample_single_task(100, 0.001, 0).is_err());
}

// ---------------------------------------------------------------- 5. data

#[test]
fn design_is_thread_count_independent_and_seeded() {
    let spec = DesignSpec {
        n: 300,
        d: 200,
        seed: 11,
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let x1 = one.install(|| design(&spec));
    let x2 = two.install(|| design(&spec));
    assert_eq!(x1, x2);
    assert_eq!(x1, design(&spec));
    let h = checksum(&x1);
    assert_eq!(h, checksum(&x2));
    assert_eq!(h.len(), 64);
    assert_ne!(
        h,
        checksum(&design(&DesignSpec {
            seed: 12,
            ..spec.clone()
        }))
    );
    assert_eq!(spec.generate_verified(&h).unwrap(), x1);
    assert!(matches!(
        spec.generate_verified("00").unwrap_err(),
        DiagnetError::ChecksumMismatch { .. }
    ));
    // A larger design is a prefix-extension: rows do not depend on n.
    let bigger = design(&DesignSpec {
        n: 301,
        ..spec.clone()
    });
    assert_eq!(&bigger[..x1.len()], &x1[..]);
}

#[test]
fn design_column_variance_is_one_over_d() {
    let (n, d) = (4000, 50);
    let x = design(&DesignSpec { n, d, seed: 5 });
    // Each column: n i.i.d. N(0, 1/d) draws; the sample second moment has
    // relative standard error sqrt(2/n) = 2.2%. Check every column within 5
    // standard errors, and the pooled value within 5 pooled errors.
    let mut pooled = 0.0;
    for j in 0..d {
        let m2: f64 = (0..n).map(|r| x[r * d + j].powi(2)).sum::<f64>() / n as f64;
        assert!(
            (m2 * d as f64 - 1.0).abs() < 5.0 * (2.0 / n as f64).sqrt(),
            "col {j}: {m2}"
        );
        pooled += m2;
    }
    pooled /= d as f64;
    assert!((pooled * d as f64 - 1.0).abs() < 5.0 * (2.0 / (n * d) as f64).sqrt());
    let mean: f64 = x.iter().sum::<f64>() / x.len() as f64;
    assert!(mean.abs() < 5.0 / ((n * d) as f64).sqrt() / (d as f64).sqrt());
}

#[test]
fn labels_are_exact_or_noisy() {
    let (n, d) = (50, 20);
    let x = design(&DesignSpec { n, d, seed: 1 });
    let beta: Vec<f64> = (0..d).map(|i| i as f64 * 0.1).collect();
    let y = labels(&x, n, d, &beta, 0.0, 0).unwrap();
    for r in 0..n {
        let want: f64 = (0..d).map(|j| x[r * d + j] * beta[j]).sum();
        assert!((y[r] - want).abs() < 1e-12);
    }
    let yn = labels(&x, n, d, &beta, 0.25, 9).unwrap();
    assert_eq!(yn, labels(&x, n, d, &beta, 0.25, 9).unwrap());
    assert_ne!(yn, y);
    assert!(labels(&x, n, d, &beta, -1.0, 0)
        .unwrap_err()
        .to_string()
        .contains("noise_var"));
    assert!(labels(&x, n, d, &beta[..5], 0.0, 0).is_err());
}

// ---------------------------------------------------------------- 6. divergence

#[test]
fn huge_learning_rate_reports_divergence() {
    let (n, d) = (20, 40);
    let t = sample_two_task(d, 0.2, 0.2, 0.5, 1.0, 0).unwrap();
    let x = design(&DesignSpec { n, d, seed: 0 });
    let y = labels(&x, n, d, &t.beta_ft, 0.0, 0).unwrap();
    let init = symmetric_init(d, 1.0, 0.0).unwrap();
    let cfg = GdConfig {
        lr: 1e6,
        max_epochs: 10_000,
        tol_train_mse: 1e-12,
        tol_rel_step: 1e-9,
        check_every: 10,
        device: DeviceKind::Cpu,
    };
    let e = train(&x, &y, n, d, &init, &cfg).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DiagnetError::Diverged { .. }), "{msg}");
    assert!(
        msg.contains("lr = 1e6") && msg.contains("smaller") && msg.contains("1e5"),
        "{msg}"
    );
    // Invalid configurations are rejected up front.
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let e = train(
            &x,
            &y,
            n,
            d,
            &init,
            &GdConfig {
                lr: bad,
                ..cfg.clone()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("lr"), "{e}");
    }
    assert!(train(
        &x,
        &y,
        n,
        d,
        &init,
        &GdConfig {
            max_epochs: 0,
            ..cfg.clone()
        }
    )
    .is_err());
    assert!(train(&x, &y[..5], n, d, &init, &cfg).is_err());
    // A stable run returns finite everything, and the trace is bounded.
    let ok = train(
        &x,
        &y,
        n,
        d,
        &init,
        &GdConfig {
            lr: 0.5,
            max_epochs: 20_000,
            check_every: 1,
            ..cfg.clone()
        },
    )
    .unwrap();
    assert!(ok.train_mse.is_finite() && ok.weights.beta().iter().all(|b| b.is_finite()));
    assert!(
        ok.trace.len() <= 501 && ok.trace.len() >= 250,
        "trace {}",
        ok.trace.len()
    );
    assert_eq!(ok.trace.first().unwrap().0, 0);
    assert_eq!(ok.trace.last().unwrap().0, ok.epochs);
    assert!(ok.trace.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn cuda_request_without_feature_is_explained() {
    let x = design(&DesignSpec {
        n: 4,
        d: 4,
        seed: 0,
    });
    let r = matvec_seconds(&x, 4, 4, 1, DeviceKind::Cuda);
    if cfg!(feature = "cuda") {
        return; // depends on the machine
    }
    let e = r.unwrap_err().to_string();
    assert!(e.contains("--features cuda"), "{e}");
    assert!(matvec_seconds(&x, 4, 4, 3, DeviceKind::Cpu).unwrap() > 0.0);
}

// ---------------------------------------------------------------- 7. dual

#[test]
fn dual_single_sample_closed_form() {
    // n = 1: beta_i = c_i sinh(x_i mu) with scalar mu solving
    // sum_i x_i c_i sinh(x_i mu) = y; solve that by bisection independently.
    let x = [0.5, -1.0, 2.0, 0.1];
    let c = [1e-3, 1.0, 0.2, 0.0];
    let y = [3.0];
    let f = |mu: f64| {
        x.iter()
            .zip(&c)
            .map(|(xi, ci)| xi * ci * (xi * mu).sinh())
            .sum::<f64>()
            - y[0]
    };
    let (mut lo, mut hi) = (0.0, 10.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) > 0.0 {
            hi = mid
        } else {
            lo = mid
        }
    }
    let mu = 0.5 * (lo + hi);
    let sol = implicit_bias_solve(&x, &y, 1, 4, &c, 1e-12, 100).unwrap();
    assert!(sol.residual <= 1e-12);
    assert_eq!(sol.beta[3], 0.0); // c = 0 coordinate stays at 0
    for i in 0..4 {
        let want = c[i] * (x[i] * mu).sinh();
        assert!(
            (sol.beta[i] - want).abs() <= 1e-10 * (1.0 + want.abs()),
            "{i}: {} vs {want}",
            sol.beta[i]
        );
    }
}

#[test]
fn dual_kkt_and_residual() {
    let (n, d) = (30, 90);
    for (c, lf, gamma) in [(1e-6, -0.99, 0.0), (1e-3, 0.0, 0.0), (1.0, 0.99, 1.0)] {
        let t = sample_two_task(d, 0.1, 0.1, 0.5, 1.0, 2).unwrap();
        let pt = oracle_pretrained(&t.beta_pt, c, lf * c).unwrap();
        let (_, c_ft) = reinit(&pt, gamma).unwrap();
        let x = design(&DesignSpec { n, d, seed: 3 });
        let y = labels(&x, n, d, &t.beta_ft, 0.0, 0).unwrap();
        let sol = implicit_bias_solve(&x, &y, n, d, &c_ft, 1e-10, 200).unwrap();
        assert!(sol.residual <= 1e-9, "residual {}", sol.residual);
        // KKT: a_i = asinh(beta_i / c_i) lies in the row space of X. Project
        // a on the row space by least squares (normal equations via faer-free
        // Gram-Schmidt on the rows) and require a tiny remainder.
        let a: Vec<f64> = sol
            .beta
            .iter()
            .zip(&c_ft)
            .map(|(b, ci)| (b / ci).asinh())
            .collect();
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for r in 0..n {
            let mut v = x[r * d..(r + 1) * d].to_vec();
            for _ in 0..2 {
                for q in &basis {
                    let p: f64 = v.iter().zip(q).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(q).for_each(|(vi, qi)| *vi -= p * qi);
                }
            }
            let nv = v.iter().map(|t| t * t).sum::<f64>().sqrt();
            v.iter_mut().for_each(|t| *t /= nv);
            basis.push(v);
        }
        let mut rem = a.clone();
        for q in &basis {
            let p: f64 = rem.iter().zip(q).map(|(a, b)| a * b).sum();
            rem.iter_mut().zip(q).for_each(|(ri, qi)| *ri -= p * qi);
        }
        let na = a.iter().map(|t| t * t).sum::<f64>().sqrt();
        let nr = rem.iter().map(|t| t * t).sum::<f64>().sqrt();
        assert!(nr <= 1e-8 * na, "c={c}: KKT remainder {nr:e} of {na:e}");
        // And it equals X^T mu for the returned multiplier.
        for i in 0..d {
            let s: f64 = (0..n).map(|r| x[r * d + i] * sol.mu[r]).sum();
            assert!(
                (s - a[i]).abs() <= 1e-7 * (1.0 + a[i].abs()),
                "c={c} i={i}: {s} vs {}",
                a[i]
            );
        }
    }
}

#[test]
fn dual_errors_are_reported() {
    let x = design(&DesignSpec {
        n: 5,
        d: 8,
        seed: 0,
    });
    let y = vec![1.0; 5];
    // All c = 0 (the degenerate saddle): no interpolator, an error not NaN.
    let e = implicit_bias_solve(&x, &y, 5, 8, &[0.0; 8], 1e-10, 50).unwrap_err();
    assert!(matches!(e, DiagnetError::NotConverged { .. }), "{e}");
    assert!(e.to_string().contains("residual"), "{e}");
    assert!(implicit_bias_solve(&x, &y, 5, 8, &[-1.0; 8], 1e-10, 50).is_err());
    assert!(implicit_bias_solve(&x, &y, 5, 8, &[1.0; 8], 0.0, 50).is_err());
    let z = implicit_bias_solve(&x, &[0.0; 5], 5, 8, &[1.0; 8], 1e-10, 50).unwrap();
    assert!(z.beta.iter().all(|&b| b == 0.0));
}

// ---------------------------------------------------------------- 8. eval

#[test]
fn test_mse_matches_param_mse() {
    let d = 100;
    let t = sample_two_task(d, 0.1, 0.1, 0.5, 1.0, 0).unwrap();
    let beta_hat: Vec<f64> = t
        .beta_ft
        .iter()
        .enumerate()
        .map(|(i, b)| b + 0.1 * ((i % 7) as f64 - 3.0))
        .collect();
    let pm = param_mse(&beta_hat, &t.beta_ft);
    let n_test = 20_000;
    let tm = test_mse(&beta_hat, &t.beta_ft, n_test, 42).unwrap();
    // x . e ~ N(0, ||e||^2/d) = N(0, pm), so (x . e)^2 has mean pm and
    // variance 2 pm^2: the Monte-Carlo standard error is pm sqrt(2/n_test).
    let se = pm * (2.0 / n_test as f64).sqrt();
    assert!(
        (tm - pm).abs() <= 4.0 * se,
        "test {tm} vs param {pm} (se {se})"
    );
    // Deterministic, seed-dependent, independent of chunking/threads.
    assert_eq!(tm, test_mse(&beta_hat, &t.beta_ft, n_test, 42).unwrap());
    assert_ne!(tm, test_mse(&beta_hat, &t.beta_ft, n_test, 43).unwrap());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    assert_eq!(
        tm,
        one.install(|| test_mse(&beta_hat, &t.beta_ft, n_test, 42).unwrap())
    );
    // Same rows as the stored design generator.
    let x = design(&DesignSpec {
        n: 3000,
        d,
        seed: 42,
    });
    let y_hat = labels(&x, 3000, d, &beta_hat, 0.0, 0).unwrap();
    let y = labels(&x, 3000, d, &t.beta_ft, 0.0, 0).unwrap();
    let direct = y_hat
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / 3000.0;
    let via = test_mse(&beta_hat, &t.beta_ft, 3000, 42).unwrap();
    assert!((direct - via).abs() <= 1e-12 * direct);
    assert!(test_mse(&beta_hat, &t.beta_ft, 0, 1).is_err());
    assert!(test_mse(&beta_hat[..3], &t.beta_ft, 10, 1).is_err());
}

#[test]
fn small_metrics() {
    assert_eq!(active_frac(&[0.0, 1e-7, 2e-6, -1.0], 1e-6), 0.5);
    assert_eq!(active_frac(&[], 1e-6), 0.0);
    assert_eq!(rel_l2(&[1.0, 1.0], &[1.0, 1.0]), 0.0);
    assert!((rel_l2(&[2.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-15);
    assert_eq!(rel_l2(&[0.0], &[0.0]), 0.0);
    assert_eq!(param_mse(&[1.0, 3.0], &[0.0, 1.0]), 2.5);
}
