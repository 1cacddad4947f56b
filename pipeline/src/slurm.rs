//! `ptft run --executor slurm`: the same workflow on a SLURM cluster.
//!
//! Design: *waves* that keep submitting as results land. Each wave plans
//! the workflow against the shared store, takes every instance whose inputs
//! are all published (one per key), and submits them as job arrays — one
//! array per distinct resource request, each array task running `ptft
//! worker` on one instance. When the wave's arrays have left the queue the
//! workflow is planned again and the next wave goes out. We chose this over
//! one up-front graph of `--dependency=afterok` jobs because (1) the store,
//! not SLURM, is the source of truth for what exists: a key computed by
//! another user or run meanwhile is simply not resubmitted; (2) an array
//! per wave keeps the job count near the graph's depth, not its width
//! (10,000 instances become a handful of submissions); (3) a failed
//! instance stops only its dependents, which `afterok` chains make awkward
//! to report. The cost is one scheduling round trip per level of the
//! graph (seconds), small next to real cluster work.
//!
//! Workers publish through the engine exactly as a local run does (same
//! key lock, same compute, same publish), so keys and data are identical.
//! Every worker writes a small JSON result next to its log; a missing
//! result (job killed for time or memory) is a failure that names the
//! job id and the log.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use ptft_engine::{Outcome, Plan, Resources, RunOptions};
use ptft_store::Store;
use serde_json::{json, Value};

use crate::{bad_input, interrupt, load_plan, tool_info};

/// Scheduler options from the command line. `cpus`, `mem_mb` and `time`
/// replace the kinds' defaults; a workflow's per-stage `resources` still
/// win over them.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub time_min: Option<u64>,
    pub cpus: Option<u32>,
    pub mem_mb: Option<u64>,
    /// At most this many array tasks of one submission run at once.
    pub max_jobs: Option<u32>,
    /// Instances per array task (default: enough that one submission has
    /// at most [`DEFAULT_TASKS`] tasks).
    pub batch: Option<usize>,
}

/// Array tasks per submission when `--batch` is not given. Launching a
/// task costs the scheduler about a second or two; small instances (a
/// replica curve takes 10 ms) are therefore run many per task.
pub const DEFAULT_TASKS: usize = 16;

fn resources_of(plan: &Plan, i: usize, o: &SlurmOptions) -> Resources {
    let inst = &plan.instances[i];
    let base = Resources {
        cpus: o.cpus.unwrap_or(inst.resources.cpus),
        mem_mb: o.mem_mb.unwrap_or(inst.resources.mem_mb),
        time_min: o.time_min.unwrap_or(inst.resources.time_min),
        gpus: inst.resources.gpus,
    };
    inst.resource_override.over(base)
}

/// `sbatch`, `squeue`, `scancel` must be on PATH.
fn check_tools() -> Result<()> {
    for tool in ["sbatch", "squeue", "scancel"] {
        let ok = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            return Err(bad_input(format!(
                "--executor slurm needs `{tool}` on PATH (a SLURM client; is SLURM_CONF set?)"
            )));
        }
    }
    Ok(())
}

struct Submitted {
    job_id: String,
    labels: Vec<String>,
    batch: usize,
}

/// Runs `file` through SLURM; prints the same summary as a local run.
pub fn run(file: &Path, store_root: &Path, o: &SlurmOptions, json_out: bool) -> Result<ExitCode> {
    check_tools()?;
    let started = Instant::now();
    let store = Store::open(store_root)
        .with_context(|| format!("opening store {}", store_root.display()))?;
    let exe = std::env::current_exe().context("locating the ptft binary for the workers")?;
    let file =
        std::fs::canonicalize(file).with_context(|| format!("reading {}", file.display()))?;
    let store_abs = std::fs::canonicalize(store_root)?;
    let run_dir =
        store_abs
            .join("slurm")
            .join(format!("{}-{}", chrono_like_stamp(), std::process::id()));
    std::fs::create_dir_all(&run_dir)?;
    let cancel = interrupt::flag();

    let first = load_plan(&file, Some(&store))?;
    let workflow = first.workflow.name.clone();
    let cached_at_start = first.cached();
    let mut computed = 0usize;
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut reports: Vec<Value> = Vec::new();
    let mut wave = 0;
    loop {
        let plan = load_plan(&file, Some(&store))?;
        // Ready: not yet published, every input published, not failed, one
        // instance per key.
        let mut seen_keys = BTreeSet::new();
        let ready: Vec<usize> = (0..plan.instances.len())
            .filter(|&i| {
                let inst = &plan.instances[i];
                inst.will_run()
                    && !failures.contains_key(&inst.label)
                    && inst
                        .inputs
                        .values()
                        .flatten()
                        .all(|&u| !plan.instances[u].will_run())
                    && seen_keys.insert(inst.key.clone())
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        // One array per distinct resource request.
        let mut groups: BTreeMap<(u32, u64, u64, u32), Vec<usize>> = BTreeMap::new();
        for &i in &ready {
            let r = resources_of(&plan, i, o);
            groups
                .entry((r.cpus, r.mem_mb, r.time_min, r.gpus))
                .or_default()
                .push(i);
        }
        let mut submitted = Vec::new();
        for (g, ((cpus, mem_mb, time_min, gpus), members)) in groups.iter().enumerate() {
            let tag = format!("wave{wave}-{g}");
            let manifest = run_dir.join(format!("{tag}.manifest"));
            let labels: Vec<String> = members
                .iter()
                .map(|&i| plan.instances[i].label.clone())
                .collect();
            std::fs::write(&manifest, labels.join("\n") + "\n")?;
            let batch = o
                .batch
                .unwrap_or_else(|| members.len().div_ceil(DEFAULT_TASKS))
                .max(1);
            let tasks = members.len().div_ceil(batch);
            let mut cmd = Command::new("sbatch");
            cmd.arg("--parsable")
                .arg(format!("--job-name=ptft-{workflow}"))
                .arg(format!(
                    "--array=0-{}{}",
                    tasks - 1,
                    o.max_jobs.map(|k| format!("%{k}")).unwrap_or_default()
                ))
                .arg(format!("--output={}/{tag}-%A_%a.log", run_dir.display()))
                .arg(format!("--cpus-per-task={cpus}"))
                .arg(format!("--mem={mem_mb}M"))
                .arg(format!("--time={time_min}"));
            if *gpus > 0 {
                cmd.arg(format!("--gres=gpu:{gpus}"));
            }
            if let Some(p) = &o.partition {
                cmd.arg(format!("--partition={p}"));
            }
            cmd.arg(format!(
                "--wrap={} --store {} worker {} --manifest {} --task $SLURM_ARRAY_TASK_ID --batch {batch} --results {}",
                sh(&exe.display().to_string()),
                sh(&store_abs.display().to_string()),
                sh(&file.display().to_string()),
                sh(&manifest.display().to_string()),
                sh(&run_dir.join(&tag).display().to_string()),
            ));
            let out = cmd.output().context("running sbatch")?;
            if !out.status.success() {
                cancel_all(&submitted);
                bail!(
                    "sbatch refused the {tag} array: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let job_id = String::from_utf8_lossy(&out.stdout)
                .trim()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string();
            // Progress on stderr even with --json (stdout stays machine-readable).
            eprintln!(
                "wave {wave}: submitted {} instance(s) as array job {job_id} of {tasks} task(s) ({cpus} cpu, {mem_mb} MB, {time_min} min each)",
                members.len()
            );
            submitted.push((
                Submitted {
                    job_id,
                    labels,
                    batch,
                },
                tag,
            ));
        }
        // Wait for the wave to leave the queue; Ctrl-C cancels it.
        let ids: Vec<String> = submitted.iter().map(|(s, _)| s.job_id.clone()).collect();
        loop {
            if cancel.load(Ordering::SeqCst) {
                cancel_all(&submitted);
                eprintln!("interrupted: cancelled SLURM jobs {}", ids.join(", "));
                return Ok(ExitCode::from(130));
            }
            let q = Command::new("squeue")
                .args(["-h", "-o", "%i", "-j", &ids.join(",")])
                .output()
                .context("running squeue")?;
            if String::from_utf8_lossy(&q.stdout).trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        for (s, tag) in &submitted {
            for (idx, label) in s.labels.iter().enumerate() {
                let result = run_dir.join(tag).join(format!("{idx}.json"));
                let task = idx / s.batch;
                let log = run_dir.join(format!("{tag}-{}_{task}.log", s.job_id));
                let r: Option<Value> = std::fs::read(&result)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                match r {
                    Some(r) if r["outcome"] == "computed" || r["outcome"] == "cached" => {
                        if r["outcome"] == "computed" {
                            computed += 1;
                        }
                        reports.push(r);
                    }
                    Some(r) => {
                        let why = r["error"]
                            .as_str()
                            .or(r["because"].as_str())
                            .unwrap_or("failed")
                            .to_string();
                        failures.insert(
                            label.clone(),
                            format!(
                                "{why} [SLURM job {}_{task} on node {}; log {}]",
                                s.job_id,
                                r["node"].as_str().unwrap_or("?"),
                                log.display()
                            ),
                        );
                        reports.push(r);
                    }
                    None => {
                        failures.insert(
                            label.clone(),
                            format!(
                                "SLURM job {}_{task} ended without a result (killed for time or memory, or the node failed); log {}",
                                s.job_id,
                                log.display()
                            ),
                        );
                    }
                }
            }
        }
        wave += 1;
    }
    let last = load_plan(&file, Some(&store))?;
    let skipped = last
        .instances
        .iter()
        .filter(|i| i.will_run() && !failures.contains_key(&i.label))
        .count();
    let summary = json!({
        "workflow": workflow, "executor": "slurm", "waves": wave,
        "computed": computed, "cached": cached_at_start,
        "failed": failures.len(), "skipped": skipped,
        "wall_seconds": started.elapsed().as_secs_f64(),
        "failures": failures, "jobs": reports, "logs": run_dir,
    });
    if json_out {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{workflow}: computed {computed}, cached {cached_at_start}, failed {}, skipped {skipped} in {:.2}s via SLURM ({wave} waves; logs in {})",
            failures.len(),
            started.elapsed().as_secs_f64(),
            run_dir.display()
        );
        for (label, why) in &failures {
            eprintln!("failed: {label}: {why}");
        }
    }
    Ok(if failures.is_empty() && skipped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cancel_all(submitted: &[(Submitted, String)]) {
    for (s, _) in submitted {
        let _ = Command::new("scancel").arg(&s.job_id).status();
    }
}

fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn chrono_like_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}")
}

/// `ptft worker`: one array task. Runs its slice of the manifest
/// (`batch` instances from `task * batch`) through the engine against the
/// shared store, writes one result JSON per instance (with the node it ran
/// on), and exits 1 if any of them failed.
pub fn worker(
    file: &Path,
    store_root: &Path,
    manifest: &Path,
    task: usize,
    batch: usize,
    results: &Path,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading manifest {}", manifest.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let first = task * batch.max(1);
    if first >= lines.len() {
        bail!("manifest {} has no line {first}", manifest.display());
    }
    let store = Store::open(store_root)?;
    let plan = load_plan(file, Some(&store))?;
    let registry = ptft_stages::registry();
    let opts = RunOptions {
        jobs: 1,
        progress: false,
        tool: tool_info(),
        cancel: None,
    };
    std::fs::create_dir_all(results)?;
    let mut all_ok = true;
    for (index, label) in lines.iter().enumerate().skip(first).take(batch.max(1)) {
        let Some(i) = plan.instances.iter().position(|inst| inst.label == *label) else {
            bail!(
                "{}: no instance `{label}` (was the workflow edited while it ran?)",
                file.display()
            );
        };
        let outcome = ptft_engine::run_instance(&plan, &registry, &store, &opts, i)?;
        let mut r = serde_json::to_value(&outcome)?;
        r["instance"] = (*label).into();
        r["key"] = plan.instances[i].key.clone().into();
        r["node"] = ptft_engine::hostname().into();
        r["job"] = json!({
            "array_job_id": std::env::var("SLURM_ARRAY_JOB_ID").ok(),
            "array_task_id": std::env::var("SLURM_ARRAY_TASK_ID").ok(),
            "job_id": std::env::var("SLURM_JOB_ID").ok(),
        });
        let path: PathBuf = results.join(format!("{index}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&r)?)?;
        match outcome {
            Outcome::Computed { .. } | Outcome::Cached => {}
            Outcome::Failed { error } => {
                eprintln!("{label}: {error}");
                all_ok = false;
            }
            Outcome::Skipped { because } => {
                eprintln!("{label}: {because}");
                all_ok = false;
            }
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
