//! A temporary directory with its own store, and `ptft` run inside it: the
//! harness the end-to-end tests share.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `ptft ARGS --store <sandbox store>`, run in the sandbox.
    pub fn ptft(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ptft"))
            .args(args)
            .arg("--store")
            .arg(self.store())
            .current_dir(self.dir.path())
            .env_remove("PTFT_STORE")
            .output()
            .unwrap()
    }

    /// Stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.ptft(args);
        assert!(
            out.status.success(),
            "ptft {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    pub fn ok_json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.ok(args)).unwrap()
    }
}

const FIG3: &str = include_str!("../../workflows/fig3.json");
pub const SEEDS: [u64; 3] = [6, 7, 8];
pub const ALPHAS: [f64; 3] = [0.1, 0.3, 0.5];

/// fig3.json with smaller `vars` (d = 200, 3 seeds, 3 alphas): the shipped
/// stage graph, real science, seconds to run.
pub fn small_fig3() -> Value {
    let mut wf: Value = serde_json::from_str(FIG3).unwrap();
    wf["vars"] = serde_json::json!({"d": 200, "seeds": SEEDS, "alphas": ALPHAS, "n_test": 1000});
    wf
}

/// Writes `v` as a workflow file in the sandbox; returns its path.
pub fn write_json(sb: &Sandbox, name: &str, v: &Value) -> String {
    let p = sb.write(name, &serde_json::to_string_pretty(v).unwrap());
    p.to_str().unwrap().to_string()
}
