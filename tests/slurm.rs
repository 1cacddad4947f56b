//! The SLURM executor against a real single-node cluster (started by
//! `tests/slurm/start-cluster.sh`, which `.ci/run` calls; `SLURM_CONF`
//! must point at it). Where no cluster is reachable the tests print
//! `SKIPPED (no SLURM cluster): ...` and pass — visibly, never silently:
//! `.ci/run` also reports whether the cluster came up.
//!
//! "Identical to the local executor" is checked on keys and `data_hash`:
//! an artifact file's own hash also covers its provenance, which records
//! the host and run times.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{write_json, Sandbox};
use serde_json::{json, Value};

fn cluster() -> Result<(), String> {
    if std::env::var_os("SLURM_CONF").is_none() {
        return Err("SLURM_CONF is not set (run tests/slurm/start-cluster.sh DIR first)".into());
    }
    match Command::new("sinfo").args(["-h", "-o", "%t"]).output() {
        Ok(o) if o.status.success() => {
            let state = String::from_utf8_lossy(&o.stdout);
            if state
                .lines()
                .any(|l| ["idle", "mix", "alloc"].contains(&l.trim()))
            {
                Ok(())
            } else {
                Err(format!("no usable node (sinfo: {})", state.trim()))
            }
        }
        Ok(o) => Err(format!(
            "sinfo failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("sinfo not runnable: {e}")),
    }
}

macro_rules! require_cluster {
    () => {
        if let Err(why) = cluster() {
            eprintln!("SKIPPED (no SLURM cluster): {why}");
            println!("SKIPPED (no SLURM cluster): {why}");
            return;
        }
    };
}

/// instance → (key, data_hash) of every artifact a plan names as cached.
fn results(sb: &Sandbox, wf: &str) -> BTreeMap<String, (String, String)> {
    let store = ptft_store::Store::open_existing(sb.store()).unwrap();
    let plan = sb.ok_json(&["plan", wf, "--json"]);
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["status"], "cached", "{s}");
            let prov = store
                .read(s["artifact"].as_str().unwrap())
                .unwrap()
                .provenance;
            (
                s["label"].as_str().unwrap().to_string(),
                (
                    s["key"].as_str().unwrap().to_string(),
                    prov["data_hash"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// A sweep fan-out (theory curves, and a small empirical chain over seeds
/// and alphas) with dependent aggregates.
fn fan_out() -> Value {
    json!({
        "name": "slurm_e2e",
        "stages": [
            {"id": "curves", "kind": "replica_curve",
             "params": {"alpha": {"linspace": {"start": 0.05, "stop": 0.5, "num": 10}}},
             "sweep": {"omega": [0, 0.5, 1]}},
            {"id": "table", "kind": "concat", "inputs": {"parts": "curves"}},
            {"id": "task", "kind": "task", "params": {"model": "two_task", "d": 100}, "sweep": {"seed": [1, 2]}},
            {"id": "data", "kind": "dataset", "params": {"split": "ft"}, "inputs": {"task": "task"},
             "sweep": {"alpha": [0.2, 0.4]}},
            {"id": "pre", "kind": "pretrain", "inputs": {"task": "task"}},
            {"id": "init", "kind": "reinit", "inputs": {"pretrained": "pre"}},
            {"id": "exact", "kind": "implicit_bias_solve",
             "inputs": {"init": "init", "data": "data", "task": "task"}},
            {"id": "eval", "kind": "evaluate", "params": {"n_test": 500},
             "inputs": {"estimate": "exact", "task": "task"}},
            {"id": "curve", "kind": "empirical_curve", "inputs": {"evaluations": "eval"}}
        ]
    })
}

#[test]
fn slurm_run_gives_the_local_executors_keys_and_data() {
    require_cluster!();
    let local = Sandbox::new();
    let wf = write_json(&local, "wf.json", &fan_out());
    local.ok(&["run", &wf, "-q"]);
    let expected = results(&local, &wf);

    let sb = Sandbox::new();
    // The workflow's per-stage override reaches sbatch.
    let mut spec = fan_out();
    spec["stages"][1]["resources"] = json!({"mem_mb": 700});
    let wf = write_json(&sb, "wf.json", &spec);
    let run = sb.ptft(&[
        "run",
        &wf,
        "--executor",
        "slurm",
        "--json",
        "--max-jobs",
        "4",
        "--cpus-per-task",
        "1",
    ]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("1 cpu, 700 MB"),
        "the concat stage's override: {err}"
    );
    assert!(
        err.contains("1 cpu, 1000 MB"),
        "kind default memory, --cpus-per-task: {err}"
    );
    let out: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(out["failed"], 0, "{out:#}");
    assert_eq!(out["computed"].as_u64().unwrap() as usize, expected.len());
    assert!(
        out["waves"].as_u64().unwrap() >= 4,
        "dependent levels ran as later waves: {out}"
    );
    assert!(out["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["job"]["array_job_id"].is_string()));
    assert_eq!(results(&sb, &wf), expected);
    // And a rerun submits nothing.
    let again = sb.ok_json(&["run", &wf, "--executor", "slurm", "--json"]);
    assert_eq!(
        (again["computed"].as_u64(), again["waves"].as_u64()),
        (Some(0), Some(0))
    );
}

#[test]
fn a_failing_stage_names_its_slurm_job_and_log() {
    require_cluster!();
    let sb = Sandbox::new();
    let mut wf = fan_out();
    // A bad parameter that only shows at run time: one Newton step cannot
    // reach the tolerance.
    wf["stages"][6]["params"] = json!({"max_iter": 1, "tol": 1e-14});
    let wf = write_json(&sb, "wf.json", &wf);
    let out = sb.ptft(&["run", &wf, "--executor", "slurm", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failures = v["failures"].as_object().unwrap();
    assert_eq!(failures.len(), 4, "the 4 exact solves: {v:#}");
    for (label, why) in failures {
        let why = why.as_str().unwrap();
        assert!(label.starts_with("exact["), "{label}");
        assert!(
            why.contains("did not converge") && why.contains("SLURM job "),
            "{why}"
        );
        let log = why.rsplit("log ").next().unwrap().trim_end_matches(']');
        let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{log}: {e}"));
        assert!(
            text.contains("did not converge"),
            "the log says why: {text}"
        );
    }
    // Everything independent finished; the dependents were not run.
    assert_eq!(v["skipped"], 4 + 1); // 4 evaluations + the curve
    assert!(v["computed"].as_u64().unwrap() >= 4 + 2 + 2 + 2 + 2);
}
