#[path = "../tests/common/mod.rs"]
mod common;
use ptft_theory::{solve_curve, Expectation, SolverSettings};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let idx: usize = args[1].parse().unwrap();
    let mc = args.len() > 2;
    let quad_ref = common::read_curves("exp1_quadrature.csv");
    let mc_ref = common::read_curves("exp1_replica.csv");
    let qc = &quad_ref[idx];
    println!("{}", qc.config.label());
    let groups = qc.config.groups();
    println!("{groups:?}");
    let nodes: usize = std::env::var("NODES")
        .ok()
        .map(|s| s.parse().unwrap())
        .unwrap_or(256);
    let exp = if mc {
        Expectation::paper_monte_carlo()
    } else {
        Expectation::Quadrature { nodes }
    };
    let t = std::time::Instant::now();
    let r = solve_curve(&groups, &qc.alpha, &exp, &SolverSettings::default());
    println!("time {:.3}", t.elapsed().as_secs_f64());
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            println!("ERR {e}");
            return;
        }
    };
    let theirs = mc_ref
        .iter()
        .find(|c| c.config == qc.config)
        .map(|c| c.col("mse").to_vec());
    for (k, p) in r.iter().enumerate() {
        println!("{:.4} ours {:.6e} fwd {:.6e} bwd {:.6e} ref {:.6e} rel {:+.2e} paper {:.4e} it {} conv {} res {:.1e} s2 {:.3e} g {:.3e} act {:.4}",
          p.alpha, p.mse, p.mse_fwd, p.mse_bwd, qc.col("mse_quad")[k], (p.mse - qc.col("mse_quad")[k])/qc.col("mse_quad")[k],
          theirs.as_ref().map(|t| t[k]).unwrap_or(f64::NAN), p.iterations, p.converged, p.fp_residual, p.s2, p.g, p.active_frac);
    }
}
