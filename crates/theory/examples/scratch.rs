#[path = "../tests/common/mod.rs"]
mod common;
use ptft_theory::*;
fn main() {
    let quad_ref = common::read_curves("exp1_quadrature.csv");
    let cfg = &quad_ref[11].config;
    let groups = cfg.groups();
    for seed in 0..8u64 {
        let mut ev = MomentEvaluator::new(
            &groups,
            &Expectation::MonteCarlo {
                samples: 80_000,
                seed,
                batches: 50,
            },
        )
        .unwrap();
        let m = ev.evaluate(1e-12, 1e12).unwrap();
        println!("seed {seed} mean X^2 {:.4}", m.mse);
    }
}
