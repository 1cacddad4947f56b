//! Trying to break the store: SIGKILL at random moments, two processes on
//! one store, flipped bytes, garbage collection and a full disk. After each,
//! `ptft verify` must be clean and the results must be the ones an
//! undisturbed run gives.
//!
//! "The same results" is checked on keys and `data_hash` (blake3 of the
//! table data): an artifact's file hash also covers its provenance, which
//! records run times, so two honest runs give different file hashes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{small_fig3, write_json, Sandbox};
use serde_json::Value;

const EXP4: &str = include_str!("../workflows/exp4_single_task.json");

/// A small deterministic generator (xorshift64*) so the random kill times
/// and flipped bytes are the same on every run of the test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// instance → (key, data_hash) of every finished instance of a run report.
fn results(sb: &Sandbox, report: &Value) -> BTreeMap<String, (String, String)> {
    let store = ptft_store::Store::open_existing(sb.store()).unwrap();
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["artifact"].is_string())
        .map(|i| {
            let prov = store
                .read(i["artifact"].as_str().unwrap())
                .unwrap()
                .provenance;
            (
                i["instance"].as_str().unwrap().to_string(),
                (
                    i["key"].as_str().unwrap().to_string(),
                    prov["data_hash"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn verify(sb: &Sandbox) -> Value {
    let out = sb.ptft(&["verify", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_clean(v: &Value) {
    for k in ["corrupt", "missing", "bad_index"] {
        assert_eq!(v[k].as_array().unwrap().len(), 0, "{k}: {v:#}");
    }
}

fn objects(sb: &Sandbox) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(sb.store().join("objects")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

/// The results of an undisturbed cold run of the small fig3 workflow, and
/// how long it took (the scale for "a random moment during a run").
fn undisturbed_small_fig3() -> (BTreeMap<String, (String, String)>, Duration) {
    let reference = Sandbox::new();
    let wf = write_json(&reference, "small.json", &small_fig3());
    let t0 = Instant::now();
    let clean_run = reference.ok_json(&["run", &wf, "--json", "-j", "2"]);
    let cold = t0.elapsed();
    (results(&reference, &clean_run), cold)
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_bad_artifact() {
    let (expected, cold) = undisturbed_small_fig3();

    let sb = Sandbox::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Kill at a random moment inside the run; when a run finished before
    // its kill (machine faster than the estimate), narrow the window and
    // try again, until 20 kills have hit a running process.
    let mut window = cold.as_millis() as u64 * 3 / 5 + 1;
    let (mut killed_mid_run, mut attempts) = (0, 0u64);
    while killed_mid_run < 20 && attempts < 80 {
        // Each attempt draws two new seeds, so every attempt has hundreds
        // of instances left to compute when the kill lands.
        let mut wf = small_fig3();
        wf["vars"]["seeds"] = serde_json::json!([100 + 2 * attempts, 101 + 2 * attempts]);
        attempts += 1;
        let wf = write_json(&sb, "attempt.json", &wf);
        let mut child = Command::new(env!("CARGO_BIN_EXE_ptft"))
            .args(["run", &wf, "-q", "-j", "2", "--store"])
            .arg(sb.store())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(window)));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        } else {
            window = window * 2 / 3 + 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        // Whatever moment it died at, the store holds only whole artifacts.
        assert_clean(&verify(&sb));
    }
    assert_eq!(killed_mid_run, 20, "after {attempts} attempts");
    let wf = write_json(&sb, "small.json", &small_fig3());
    let last = sb.ok_json(&["run", &wf, "--json", "-j", "2"]);
    assert_eq!(last["failed"], 0);
    assert_clean(&verify(&sb));
    assert_eq!(results(&sb, &last), expected);
}

#[test]
fn two_processes_on_one_store_compute_each_key_once() {
    let sb = Sandbox::new();
    let a = write_json(&sb, "a.json", &small_fig3());
    // The second workflow overlaps: the same stages under another name,
    // minus panel f.
    let mut other = small_fig3();
    other["name"] = "fig3_copy".into();
    let stages = other["stages"].as_array_mut().unwrap();
    stages.retain(|s| !s["id"].as_str().unwrap().ends_with("_f") && s["id"] != "fig3");
    let b = write_json(&sb, "b.json", &other);
    let spawn = |wf: &str| {
        Command::new(env!("CARGO_BIN_EXE_ptft"))
            .args(["run", wf, "--json", "-j", "2", "--store"])
            .arg(sb.store())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (pa, pb) = (spawn(&a), spawn(&b));
    let (oa, ob) = (
        pa.wait_with_output().unwrap(),
        pb.wait_with_output().unwrap(),
    );
    assert!(
        oa.status.success(),
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert!(
        ob.status.success(),
        "{}",
        String::from_utf8_lossy(&ob.stderr)
    );
    let (ra, rb): (Value, Value) = (
        serde_json::from_slice(&oa.stdout).unwrap(),
        serde_json::from_slice(&ob.stdout).unwrap(),
    );
    // Count computations per key across both processes.
    let mut computed: BTreeMap<String, usize> = BTreeMap::new();
    let mut all: BTreeSet<String> = BTreeSet::new();
    for r in [&ra, &rb] {
        for i in r["instances"].as_array().unwrap() {
            let key = i["key"].as_str().unwrap().to_string();
            if i["outcome"] == "computed" {
                *computed.entry(key.clone()).or_default() += 1;
            }
            all.insert(key);
        }
    }
    let twice: Vec<_> = computed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "computed more than once: {twice:?}");
    assert_eq!(
        computed.len(),
        all.len(),
        "every key computed by one of them"
    );
    // And the provenance agrees: one artifact per key in the index.
    assert_clean(&verify(&sb));
    let shared = rb["instances"].as_array().unwrap().len();
    assert!(
        shared > 100,
        "the workflows overlap substantially ({shared})"
    );
}

#[test]
fn flipped_bytes_are_found_by_verify_and_recomputed_by_run() {
    let sb = Sandbox::new();
    let wf = sb.write("exp4.json", EXP4);
    let wf = wf.to_str().unwrap();
    let first = sb.ok_json(&["run", wf, "--json"]);
    let expected = results(&sb, &first);
    let files = objects(&sb);
    assert!(files.len() >= 10);
    let mut rng = Rng(42);
    let mut chosen = BTreeSet::new();
    while chosen.len() < 10 {
        chosen.insert(rng.below(files.len() as u64) as usize);
    }
    let mut flipped = BTreeSet::new();
    for &i in &chosen {
        let mut bytes = std::fs::read(&files[i]).unwrap();
        let at = rng.below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
        std::fs::write(&files[i], bytes).unwrap();
        flipped.insert(files[i].file_stem().unwrap().to_str().unwrap().to_string());
    }

    let out = sb.ptft(&["verify", "--json"]);
    assert_eq!(out.status.code(), Some(1), "verify exits 1 on corruption");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: BTreeSet<String> = v["corrupt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["artifact"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        found, flipped,
        "verify finds exactly the 10 flipped artifacts"
    );

    let plan = sb.ok_json(&["plan", wf, "--json"]);
    let corrupt_reasons = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["why"]["reason"] == "artifact_corrupt")
        .count();
    assert_eq!(corrupt_reasons, 10);
    let rerun = sb.ok_json(&["run", wf, "--json"]);
    assert_eq!(rerun["computed"], 10, "exactly the corrupt ones recompute");
    assert_clean(&verify(&sb));
    let quarantined = std::fs::read_dir(sb.store().join("quarantine"))
        .unwrap()
        .count();
    assert_eq!(quarantined, 10, "the bad bytes are kept aside, not deleted");
    assert_eq!(results(&sb, &rerun), expected);
}

#[test]
fn gc_keeps_what_named_workflows_use_and_is_a_dry_run_by_default() {
    let sb = Sandbox::new();
    let exp4 = sb.write("exp4.json", EXP4);
    let quick = sb.write("quick.json", include_str!("../workflows/quickstart.json"));
    let (exp4, quick) = (exp4.to_str().unwrap(), quick.to_str().unwrap());
    sb.ok(&["run", exp4, "-q"]);
    sb.ok(&["run", quick, "-q"]);
    let before = objects(&sb).len();

    let dry = sb.ok_json(&["gc", quick, "--json"]);
    assert_eq!(dry["deleted"], false);
    assert_eq!(
        dry["artifacts"], 13,
        "the 13 exp4 artifacts are unreachable from the quickstart"
    );
    assert!(dry["bytes"].as_u64().unwrap() > 0);
    assert_eq!(objects(&sb).len(), before, "a dry run deletes nothing");

    let done = sb.ok_json(&["gc", quick, "--yes", "--json"]);
    assert_eq!(done["artifacts"], 13);
    assert_eq!(objects(&sb).len(), before - 13);
    assert_clean(&verify(&sb));
    let p = sb.ok_json(&["plan", quick, "--json"]);
    assert!(p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "cached"));
    let p = sb.ok_json(&["plan", exp4, "--json"]);
    assert!(p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "will_run"));

    let none = sb.ptft(&["gc"]);
    assert_eq!(none.status.code(), Some(2));
}

#[test]
fn a_full_disk_fails_cleanly_and_the_next_run_completes() {
    let reference = Sandbox::new();
    let wf = reference.write("exp4.json", EXP4);
    let expected = results(
        &reference,
        &reference.ok_json(&["run", wf.to_str().unwrap(), "--json"]),
    );

    let sb = Sandbox::new();
    let wf = sb.write("exp4.json", EXP4);
    let wf = wf.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ptft"))
        .args(["run", wf, "--store"])
        .arg(sb.store())
        .env("PTFT_FAIL_WRITES_AFTER", "5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("No space left on device") && err.contains("objects/"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let v = verify(&sb);
    assert_clean(&v);
    assert_eq!(
        v["stray_temp"].as_array().unwrap().len(),
        0,
        "no partial file left: {v:#}"
    );
    let last = sb.ok_json(&["run", wf, "--json"]);
    assert_eq!(results(&sb, &last), expected);
}

#[test]
fn ctrl_c_lets_running_instances_finish_and_exits_130() {
    let (expected, cold) = undisturbed_small_fig3();

    let sb = Sandbox::new();
    let wf = write_json(&sb, "small.json", &small_fig3());
    let child = Command::new(env!("CARGO_BIN_EXE_ptft"))
        .args(["run", &wf, "-j", "2", "--store"])
        .arg(sb.store())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(cold / 3);
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted:") && err.contains("not started"),
        "{err}"
    );
    assert_clean(&verify(&sb));
    let rest = sb.ok_json(&["run", &wf, "--json", "-j", "2"]);
    assert!(
        rest["computed"].as_u64().unwrap() > 0,
        "the interrupted run left work to do"
    );
    assert!(rest["cached"].as_u64().unwrap() > 0, "and finished some");
    assert_eq!(results(&sb, &rest), expected);
}
