//! Monte-Carlo mode: agreement with quadrature within the measured
//! seed-to-seed spread, and with the authors' Monte-Carlo curves within
//! their documented (seed-driven) error.

mod common;

use ptft_theory::{solve_curve, CurvePoint, Expectation, SolverSettings};

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

fn mc(samples: usize, seed: u64) -> Expectation {
    Expectation::MonteCarlo {
        samples,
        seed,
        batches: 50,
    }
}

/// mc = 10^6, six seeds (0-5), Experiment-1 baseline, at alphas across the
/// curve including the transition region the reference README discusses
/// (0.2023, 0.3015, 0.3635). The seed mean must agree with quadrature within
/// t * SE, SE = sd/sqrt(6) measured here from the seed-to-seed spread and
/// t = 4.03 the two-sided 99% Student-t quantile for 5 degrees of freedom
/// (with six seeds the sd is itself uncertain; a normal 3-sigma bound would
/// fail a correct solver several percent of the time), plus 1e-3 relative
/// for the quadrature's discretisation error and the O(1/mc) bias of a fixed
/// point built on sample moments. (The dominant Monte-Carlo error is the
/// sample's teacher energy: over 40 seeds E[X^2] has sd 0.0064 at 10^6.)
#[test]
fn monte_carlo_at_one_million_agrees_with_quadrature() {
    let curves = common::read_curves("exp1_quadrature.csv");
    let base = curves.iter().find(|c| c.config.is_baseline()).unwrap();
    let idx = [15, 31, 47, 57];
    let alphas: Vec<f64> = idx.iter().map(|&i| base.alpha[i]).collect();
    assert!((alphas[1] - 0.2023).abs() < 1e-4 && (alphas[3] - 0.3635).abs() < 1e-4);
    let groups = base.config.groups();
    let settings = SolverSettings::default();
    let quad = solve_curve(&groups, &alphas, &Expectation::default(), &settings).unwrap();
    let seeds = 6;
    let t_crit = 4.03;
    let runs: Vec<Vec<CurvePoint>> = (0..seeds)
        .map(|seed| solve_curve(&groups, &alphas, &mc(1_000_000, seed), &settings).unwrap())
        .collect();
    for (k, q) in quad.iter().enumerate() {
        let v: Vec<f64> = runs.iter().map(|r| r[k].mse).collect();
        let (mean, sd) = mean_sd(&v);
        let se_mean = sd / (seeds as f64).sqrt();
        let dev = (mean - q.mse).abs();
        println!(
            "alpha {:.4}: quad {:.5} MC mean {:.5} seed sd {:.5} ({:.2}%) |dev| {:.5} = {:.2} SE; \
             batch-means SE (seed 0) {:.5}",
            q.alpha,
            q.mse,
            mean,
            sd,
            100.0 * sd / mean,
            dev,
            dev / se_mean,
            runs[0][k].mse_se
        );
        assert!(runs.iter().all(|r| r[k].converged));
        assert!(
            dev <= t_crit * se_mean + 1e-3 * q.mse,
            "alpha {}: MC mean {mean} vs quadrature {} (sd {sd})",
            q.alpha,
            q.mse
        );
    }
}

/// mc = 80,000 against the authors' curves (`exp1_replica.csv`): baseline
/// and the one-at-a-time omega and lambda sweeps, every fourth alpha of
/// their grid (runtime), rows with mse < 1e-3 excepted (README).
///
/// Both curves are single Monte-Carlo draws whose error is seed-driven and
/// amplified ~10x near the transition (README). A fixed relative band cannot
/// hold for every configuration: against the converged quadrature, their
/// own curves are off by up to 20% (baseline) and 38% (lambda = -0.99c),
/// and a single seed of ours by a similar amount in the other direction.
/// So the test asks whether their curve is consistent with being one more
/// draw of our Monte-Carlo solver. With our four seeds' mean m and sd s
/// (their README used four seeds too) it requires
/// `|theirs - m| <= 5 s sqrt(1 + 1/4) + 0.05 theirs`. The 5% term is their
/// documented systematic upward offset away from the transition (their
/// sample's teacher energy is 1.029); 5 s rather than 3 s because s from
/// four seeds is itself uncertain (3 degrees of freedom). On the low-alpha
/// plateau s is ~2%, so the allowance there is ~16%: a wrong teacher
/// variance, group fraction or penalty scale moves the curve by more.
#[test]
fn monte_carlo_at_80k_is_consistent_with_authors_curves() {
    let mc_ref = common::read_curves("exp1_replica.csv");
    let quad_ref = common::read_curves("exp1_quadrature.csv");
    let settings = SolverSettings::default();
    let configs: Vec<_> = mc_ref
        .iter()
        .filter(|c| {
            let k = &c.config;
            k.in_omega_or_lambda_sweep() && (k.omega == 0.5 || k.lambda == 0.0)
        })
        .collect();
    assert_eq!(configs.len(), 6, "baseline + 2 omega + 3 lambda variants");
    let mut worst_seed0 = 0.0_f64;
    let mut worst_mean = 0.0_f64;
    let mut worst_z = 0.0_f64;
    for curve in configs {
        let cfg = &curve.config;
        let quad = quad_ref.iter().find(|c| c.config == *cfg).unwrap();
        let idx: Vec<usize> = (0..curve.alpha.len()).step_by(4).chain([79]).collect();
        let alphas: Vec<f64> = idx.iter().map(|&i| curve.alpha[i]).collect();
        let seeds = 4;
        let runs: Vec<Vec<CurvePoint>> = (0..seeds)
            .map(|seed| solve_curve(&cfg.groups(), &alphas, &mc(80_000, seed), &settings).unwrap())
            .collect();
        let (mut d0, mut dm, mut zmax) = (0.0_f64, 0.0_f64, 0.0_f64);
        for (k, &i) in idx.iter().enumerate() {
            let theirs = curve.col("mse")[i];
            if theirs < 1e-3 {
                continue;
            }
            let v: Vec<f64> = runs.iter().map(|r| r[k].mse).collect();
            let (mean, sd) = mean_sd(&v);
            let spread = sd * (1.0 + 1.0 / seeds as f64).sqrt();
            let dev = (theirs - mean).abs();
            d0 = d0.max((v[0] - theirs).abs() / theirs);
            dm = dm.max(dev / theirs);
            zmax = zmax.max((dev - 0.05 * theirs).max(0.0) / spread);
            assert!(
                dev <= 5.0 * spread + 0.05 * theirs,
                "{} alpha {:.4}: authors {theirs:.5}, our 4-seed mean {mean:.5} (sd {sd:.5}), \
                 quadrature {:.5}",
                cfg.label(),
                alphas[k],
                quad.col("mse_quad")[i]
            );
        }
        println!(
            "{:<44} max rel dev vs authors: seed 0 {:.3}, 4-seed mean {:.3}; \
             max excess over 5% in seed sds {:.2}",
            cfg.label(),
            d0,
            dm,
            zmax
        );
        worst_seed0 = worst_seed0.max(d0);
        worst_mean = worst_mean.max(dm);
        worst_z = worst_z.max(zmax);
    }
    println!(
        "worst: seed-0 rel dev {worst_seed0:.3}, 4-seed-mean rel dev {worst_mean:.3}, \
         excess {worst_z:.2} sd"
    );
}
