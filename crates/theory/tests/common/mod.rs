//! Helpers shared by the integration tests and the `exp1_compare` example:
//! reading the reference CSVs copied into `tests/data/` (see ORIGIN.md).
#![allow(dead_code)]

use ptft_theory::{two_task_groups, Group, TwoTask};
use std::path::PathBuf;

/// `tests/data/` at the workspace root.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

/// One Experiment-1 configuration (task and initialisation).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub rho_pt: f64,
    pub rho_ft: f64,
    pub omega: f64,
    pub c: f64,
    pub lambda: f64,
    pub gamma: f64,
}

impl Config {
    pub fn groups(&self) -> Vec<Group> {
        let task = TwoTask {
            rho_pt: self.rho_pt,
            rho_ft: self.rho_ft,
            omega: self.omega,
            a_pt: 1.0,
        };
        two_task_groups(&task, self.c, self.lambda, self.gamma).expect("valid reference config")
    }

    pub fn is_baseline(&self) -> bool {
        self.omega == 0.5 && self.c == 1e-3 && self.lambda == 0.0 && self.gamma == 0.0
    }

    /// Baseline or a one-at-a-time sweep of omega or lambda.
    pub fn in_omega_or_lambda_sweep(&self) -> bool {
        self.c == 1e-3 && self.gamma == 0.0 && (self.lambda == 0.0 || self.omega == 0.5)
    }

    pub fn label(&self) -> String {
        format!(
            "omega={} c={:e} lambda={:e} gamma={}",
            self.omega, self.c, self.lambda, self.gamma
        )
    }
}

/// A reference curve: configuration, alpha grid, and named value columns.
#[derive(Debug, Clone)]
pub struct Curve {
    pub config: Config,
    pub alpha: Vec<f64>,
    pub columns: Vec<(String, Vec<f64>)>,
}

impl Curve {
    pub fn col(&self, name: &str) -> &[f64] {
        &self
            .columns
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("column {name}"))
            .1
    }
}

/// Read a reference CSV (numeric columns; first six are the configuration,
/// the seventh is alpha) and group its rows into curves, in file order.
pub fn read_curves(file: &str) -> Vec<Curve> {
    let path = data_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(
        &header[..7],
        &["rho_pt", "rho_ft", "omega", "c", "lambda", "gamma", "alpha"]
    );
    let mut curves: Vec<Curve> = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let v: Vec<f64> = line
            .split(',')
            .map(|s| s.trim().parse::<f64>().expect("numeric field"))
            .collect();
        let config = Config {
            rho_pt: v[0],
            rho_ft: v[1],
            omega: v[2],
            c: v[3],
            lambda: v[4],
            gamma: v[5],
        };
        if curves.last().map(|c| c.config != config).unwrap_or(true) {
            curves.push(Curve {
                config: config.clone(),
                alpha: Vec::new(),
                columns: header[7..]
                    .iter()
                    .map(|h| (h.clone(), Vec::new()))
                    .collect(),
            });
        }
        let cur = curves.last_mut().expect("just pushed");
        cur.alpha.push(v[6]);
        for (k, col) in cur.columns.iter_mut().enumerate() {
            col.1.push(v[7 + k]);
        }
    }
    curves
}
