//! Execution: runs the will-run instances of a [`Plan`] on a pool of worker
//! threads, in dependency order, and publishes each output to the store with
//! its provenance.
//!
//! The main thread owns all scheduling state; workers only receive an
//! instance to run (with its inputs' artifact hashes) and send back the
//! outcome. A failed instance does not stop independent work: its dependents
//! are skipped, everything else still runs, and the report says which.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use arrow::array::{Array, Float32Array, Float64Array, RecordBatch};
use arrow::datatypes::DataType;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

use ptft_store::{data_hash, EntryLabels, Lookup, Store};

use crate::error::EngineError;
use crate::plan::{records_of, History, Plan, Reason, Status};
use crate::stage::{Context, InputTable, Inputs, Registry};

/// Facts about the running program recorded in every artifact's provenance.
#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub version: String,
    pub git_commit: Option<String>,
    /// Threads available to a stage's own parallelism.
    pub threads: usize,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Instances run at the same time.
    pub jobs: usize,
    /// Show a progress bar / per-stage lines on stderr.
    pub progress: bool,
    pub tool: ToolInfo,
    /// Set (e.g. by a Ctrl-C handler) to stop starting instances: running
    /// ones finish and publish, the rest are reported as interrupted.
    pub cancel: Option<&'static std::sync::atomic::AtomicBool>,
}

/// What happened to one instance.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Cached,
    Computed { seconds: f64 },
    Failed { error: String },
    Skipped { because: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    pub instance: String,
    pub kind: String,
    pub key: String,
    pub artifact: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Summary of a run (printed by `ptft run --json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub workflow: String,
    pub computed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The run was cancelled before everything started.
    pub interrupted: bool,
    pub wall_seconds: f64,
    pub instances: Vec<InstanceReport>,
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.skipped == 0
    }
}

struct Job {
    index: usize,
    inputs: BTreeMap<String, Vec<(usize, String)>>,
}

struct Done {
    index: usize,
    result: Result<Finished, String>,
}

/// How a job ended well: computed here, or found already published by
/// another process once this one got the key's lock.
enum Finished {
    Computed { artifact: String, seconds: f64 },
    ByAnotherProcess { artifact: String },
}

/// Runs every will-run instance of `plan`. Returns a report; instance
/// failures are in the report, not an `Err` (only store/environment
/// failures that prevent running at all are).
pub fn run(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
    opts: &RunOptions,
) -> Result<RunReport, EngineError> {
    let started = Instant::now();
    let n = plan.instances.len();
    // Held (shared) for the whole run: `ptft gc` takes it exclusively, so
    // it never deletes what a running process may read or publish.
    let _store_lock = store.lock_for_run()?;
    // Corrupt cache entries: move the bad bytes aside before anything can
    // read them or a recompute tries to publish over them.
    let mut quarantined = std::collections::HashSet::new();
    for inst in &plan.instances {
        if let Status::WillRun {
            why: Reason::ArtifactCorrupt { artifact },
        } = &inst.status
        {
            if quarantined.insert(artifact.clone()) {
                let to = store.quarantine(artifact)?;
                if opts.progress {
                    eprintln!(
                        "corrupt artifact {artifact} ({}): moved to {}; recomputing",
                        inst.label,
                        to.display()
                    );
                }
            }
        }
    }
    for inst in plan.instances.iter().filter(|i| !i.will_run()) {
        store.touch_key(&inst.key);
    }
    let mut artifact: Vec<Option<String>> = plan
        .instances
        .iter()
        .map(|i| match &i.status {
            Status::Cached { artifact } => Some(artifact.clone()),
            Status::WillRun { .. } => None,
        })
        .collect();
    let mut outcome: Vec<Option<Outcome>> = plan
        .instances
        .iter()
        .map(|i| (!i.will_run()).then_some(Outcome::Cached))
        .collect();
    // Dependents and the number of unfinished inputs of each instance.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut pending: Vec<usize> = vec![0; n];
    for (i, inst) in plan.instances.iter().enumerate() {
        for &u in inst.inputs.values().flatten() {
            dependents[u].push(i);
            if plan.instances[u].will_run() {
                pending[i] += 1;
            }
        }
    }

    // Two instances with the same key (the same computation reached from
    // two places in a workflow) run once: the later waits for the earlier.
    let mut alias: Vec<Option<usize>> = vec![None; n];
    let mut first_with_key: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::new();
    for (i, inst) in plan.instances.iter().enumerate() {
        if !inst.will_run() {
            continue;
        }
        if let Some(&j) = first_with_key.get(inst.key.as_str()) {
            alias[i] = Some(j);
            dependents[j].push(i);
            pending[i] += 1;
        } else {
            first_with_key.insert(&inst.key, i);
        }
    }

    let to_run = plan.to_run();
    let bar = progress_bar(opts.progress, to_run as u64);
    let jobs = opts.jobs.max(1).min(to_run.max(1));

    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<Done>();

    let mut interrupted = false;
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let bar = bar.clone();
            scope.spawn(move || loop {
                let job = match job_rx.lock().expect("job queue lock").recv() {
                    Ok(job) => job,
                    Err(_) => return,
                };
                // A stage that panics (a bug, or an allocation failure in a
                // library) fails its instance; it must not take the worker
                // down, or the scheduler would wait for it forever.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_one(plan, registry, store, opts, &job, &bar)
                }))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(format!(
                        "the stage panicked (a bug in ptft; please report it): {what}"
                    ))
                });
                if done_tx
                    .send(Done {
                        index: job.index,
                        result,
                    })
                    .is_err()
                {
                    return;
                }
            });
        }
        drop(done_tx);

        let mut running: BTreeMap<usize, Instant> = BTreeMap::new();
        let mut ready: std::collections::VecDeque<usize> = (0..n)
            .filter(|&i| plan.instances[i].will_run() && pending[i] == 0)
            .collect();
        let send =
            |i: usize, artifact: &[Option<String>], running: &mut BTreeMap<usize, Instant>| {
                let inst = &plan.instances[i];
                let inputs = inst
                    .inputs
                    .iter()
                    .map(|(slot, ups)| {
                        let ups = ups
                            .iter()
                            .map(|&u| (u, artifact[u].clone().expect("inputs finish first")))
                            .collect();
                        (slot.clone(), ups)
                    })
                    .collect();
                running.insert(i, Instant::now());
                job_tx
                    .send(Job { index: i, inputs })
                    .expect("workers alive while jobs remain");
            };
        loop {
            if !interrupted
                && opts
                    .cancel
                    .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
            {
                interrupted = true;
                say(
                    opts.progress,
                    &bar,
                    format!(
                        "interrupted: letting {} running instance(s) finish and publish; starting nothing new (Ctrl-C again to stop at once)",
                        running.len()
                    ),
                );
            }
            // Dispatch what is ready, at most `jobs` at a time (so the
            // progress bar's "running" list is what actually runs);
            // aliases complete at once.
            while let Some(&i) = ready.front().filter(|_| !interrupted) {
                if alias[i].is_none() && running.len() >= jobs {
                    break;
                }
                ready.pop_front();
                match alias[i] {
                    Some(j) => {
                        artifact[i] = artifact[j].clone();
                        outcome[i] = Some(Outcome::Cached);
                        bar.inc(1);
                        for &d in &dependents[i] {
                            pending[d] -= 1;
                            if pending[d] == 0 && outcome[d].is_none() {
                                ready.push_back(d);
                            }
                        }
                    }
                    None => send(i, &artifact, &mut running),
                }
            }
            set_running_message(&bar, plan, &running);
            if running.is_empty() {
                break;
            }
            let done = done_rx.recv().expect("a worker reports every job");
            running.remove(&done.index);
            let label = &plan.instances[done.index].label;
            match done.result {
                Ok(finished) => {
                    let hash = match finished {
                        Finished::Computed { artifact, seconds } => {
                            say(
                                opts.progress,
                                &bar,
                                format!("computed {label} in {seconds:.2}s"),
                            );
                            outcome[done.index] = Some(Outcome::Computed { seconds });
                            artifact
                        }
                        Finished::ByAnotherProcess { artifact } => {
                            say(
                                opts.progress,
                                &bar,
                                format!("cached {label} (published meanwhile by another process)"),
                            );
                            outcome[done.index] = Some(Outcome::Cached);
                            artifact
                        }
                    };
                    artifact[done.index] = Some(hash);
                    for &d in &dependents[done.index] {
                        pending[d] -= 1;
                        if pending[d] == 0 && outcome[d].is_none() {
                            ready.push_back(d);
                        }
                    }
                }
                Err(error) => {
                    say(opts.progress, &bar, format!("FAILED {label}: {error}"));
                    outcome[done.index] = Some(Outcome::Failed { error });
                    skip_dependents(done.index, &dependents, &mut outcome, plan);
                }
            }
            bar.inc(1);
        }
        drop(job_tx);
    });
    bar.finish_and_clear();

    // Remember what ran (for `plan` reasons), keeping the old record of any
    // instance that did not finish.
    let mut history = History::load(store, &plan.workflow.name)?;
    let fresh = records_of(plan);
    for (stage, records) in fresh.stages {
        let old = history.stages.remove(&stage).unwrap_or_default();
        let merged = records
            .into_iter()
            .map(|r| {
                let i = plan
                    .instances
                    .iter()
                    .position(|i| i.label == r.label && i.stage == stage)
                    .expect("record from this plan");
                match outcome[i] {
                    Some(Outcome::Cached) | Some(Outcome::Computed { .. }) => r,
                    _ => old
                        .iter()
                        .find(|o| o.label == r.label)
                        .cloned()
                        .unwrap_or(r),
                }
            })
            .collect();
        history.stages.insert(stage, merged);
    }
    store.write_history(
        &plan.workflow.name,
        &serde_json::to_value(&history).expect("history serialises"),
    )?;

    let instances: Vec<InstanceReport> = plan
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| InstanceReport {
            instance: inst.label.clone(),
            kind: inst.kind.clone(),
            key: inst.key.clone(),
            artifact: artifact[i].clone(),
            outcome: outcome[i].clone().unwrap_or(Outcome::Skipped {
                because: if interrupted {
                    "interrupted before it started".into()
                } else {
                    "not reached".into()
                },
            }),
        })
        .collect();
    let count = |f: fn(&Outcome) -> bool| instances.iter().filter(|r| f(&r.outcome)).count();
    Ok(RunReport {
        workflow: plan.workflow.name.clone(),
        computed: count(|o| matches!(o, Outcome::Computed { .. })),
        cached: count(|o| matches!(o, Outcome::Cached)),
        failed: count(|o| matches!(o, Outcome::Failed { .. })),
        skipped: count(|o| matches!(o, Outcome::Skipped { .. })),
        interrupted,
        wall_seconds: started.elapsed().as_secs_f64(),
        instances,
    })
}

/// Runs one instance whose inputs are all in the store — the unit of
/// work of a cluster job (`ptft worker`). It goes through the same code as
/// [`run`] (key lock, re-check, compute, finite check, publish), so the
/// same key gives the same data whichever executor ran it.
pub fn run_instance(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
    opts: &RunOptions,
    index: usize,
) -> Result<Outcome, EngineError> {
    let inst = &plan.instances[index];
    if let Status::Cached { .. } = inst.status {
        return Ok(Outcome::Cached);
    }
    let mut inputs = BTreeMap::new();
    for (slot, ups) in &inst.inputs {
        let mut v = Vec::new();
        for &u in ups {
            match &plan.instances[u].status {
                Status::Cached { artifact } => v.push((u, artifact.clone())),
                Status::WillRun { .. } => {
                    return Ok(Outcome::Skipped {
                        because: format!(
                            "input `{slot}` ({}) is not in the store yet",
                            plan.instances[u].label
                        ),
                    })
                }
            }
        }
        inputs.insert(slot.clone(), v);
    }
    let _store_lock = store.lock_for_run()?;
    let bar = ProgressBar::hidden();
    let job = Job { index, inputs };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_one(plan, registry, store, opts, &job, &bar)
    }))
    .unwrap_or_else(|_| Err("the stage panicked (a bug in ptft; please report it)".into()));
    Ok(match result {
        Ok(Finished::Computed { seconds, .. }) => Outcome::Computed { seconds },
        Ok(Finished::ByAnotherProcess { .. }) => Outcome::Cached,
        Err(error) => Outcome::Failed { error },
    })
}

fn skip_dependents(
    failed: usize,
    dependents: &[Vec<usize>],
    outcome: &mut [Option<Outcome>],
    plan: &Plan,
) {
    let mut stack = dependents[failed].clone();
    while let Some(d) = stack.pop() {
        if outcome[d].is_none() {
            outcome[d] = Some(Outcome::Skipped {
                because: format!("upstream `{}` failed", plan.instances[failed].label),
            });
            stack.extend(dependents[d].iter().copied());
        }
    }
}

fn progress_bar(enabled: bool, len: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} stages  {wide_msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn set_running_message(bar: &ProgressBar, plan: &Plan, running: &BTreeMap<usize, Instant>) {
    let names: Vec<&str> = running
        .keys()
        .map(|&i| plan.instances[i].label.as_str())
        .collect();
    bar.set_message(if names.is_empty() {
        String::new()
    } else {
        format!("running: {}", names.join(", "))
    });
}

/// Per-stage lines: through the bar on a terminal (so they do not tear it),
/// straight to stderr otherwise (logs, CI).
fn say(enabled: bool, bar: &ProgressBar, line: String) {
    if !enabled {
        return;
    }
    if bar.is_hidden() {
        eprintln!("  {line}");
    } else {
        bar.println(format!("  {line}"));
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// This machine's name, as recorded in provenance (and by cluster workers).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn run_one(
    plan: &Plan,
    registry: &Registry,
    store: &Store,
    opts: &RunOptions,
    job: &Job,
    bar: &ProgressBar,
) -> Result<Finished, String> {
    let inst = &plan.instances[job.index];
    let stage = registry
        .get(&inst.kind)
        .ok_or_else(|| format!("unknown kind `{}`", inst.kind))?;
    // One process computes a key at a time; a second one waits, then
    // finds the published result instead of computing it again.
    let (_key_lock, _) = store
        .lock_key(&inst.key, |holder| {
            say(
                opts.progress,
                bar,
                format!(
                    "waiting for {}: {holder} is computing it (key {})",
                    inst.label,
                    &inst.key[..12.min(inst.key.len())]
                ),
            )
        })
        .map_err(|e| e.to_string())?;
    if let Lookup::Present(e) = store
        .lookup_verified(&inst.key)
        .map_err(|e| e.to_string())?
    {
        return Ok(Finished::ByAnotherProcess {
            artifact: e.artifact,
        });
    }

    let mut slots = BTreeMap::new();
    let mut input_prov = Vec::new();
    for (slot, ups) in &job.inputs {
        let mut tables = Vec::new();
        for (u, hash) in ups {
            let up = &plan.instances[*u];
            let a = store.read(hash).map_err(|e| e.to_string())?;
            input_prov.push(json!({
                "slot": slot, "instance": up.label, "key": up.key, "artifact": hash,
            }));
            tables.push(InputTable {
                stage: up.stage.clone(),
                instance: up.label.clone(),
                params: up.params.clone(),
                coords: up.coords.clone(),
                table: a.batch,
            });
        }
        slots.insert(slot.clone(), tables);
    }
    let inputs = Inputs::new(slots);

    let mut ctx = Context::default();
    let t0 = SystemTime::now();
    let clock = Instant::now();
    let batch = stage
        .run(&inst.params, &inputs, &mut ctx)
        .map_err(|e| e.to_string())?;
    let seconds = clock.elapsed().as_secs_f64();
    let t1 = SystemTime::now();
    check_finite(&batch)?;

    let provenance = json!({
        "format": "ptft-provenance/1",
        "ptft": { "version": opts.tool.version, "git_commit": opts.tool.git_commit },
        "workflow": { "name": plan.workflow.name, "file": plan.workflow.path.display().to_string() },
        "stage": {
            "id": inst.stage, "instance": inst.label, "kind": inst.kind,
            "version": inst.version, "sweep_point": inst.sweep_point,
            "coords": inst.coords,
        },
        "key": inst.key,
        "params": inst.params,
        "inputs": input_prov,
        "seeds": ctx.seeds,
        "notes": ctx.notes,
        "data_hash": data_hash(&batch),
        "rows": batch.num_rows(),
        "columns": batch.schema().fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>(),
        "run": {
            "host": hostname(),
            "device": ctx.device.clone().unwrap_or_else(|| "cpu".into()),
            "threads": opts.tool.threads,
            "jobs": opts.jobs,
            "started": rfc3339(t0),
            "finished": rfc3339(t1),
            "wall_seconds": seconds,
        },
    });
    let created = rfc3339(t1);
    let entry = store
        .publish(
            &inst.key,
            &batch,
            &provenance,
            EntryLabels {
                workflow: &plan.workflow.name,
                instance: &inst.label,
                kind: &inst.kind,
                created: &created,
            },
        )
        .map_err(|e| e.to_string())?;
    Ok(Finished::Computed {
        artifact: entry.artifact,
        seconds,
    })
}

/// Refuses to publish NaN or infinity: a stage that produced one has failed,
/// and saying where is the first step of debugging it.
fn check_finite(batch: &RecordBatch) -> Result<(), String> {
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let bad = match field.data_type() {
            DataType::Float64 => {
                let a = col
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .expect("f64 column");
                (0..a.len())
                    .find(|&i| a.is_valid(i) && !a.value(i).is_finite())
                    .map(|i| (i, a.value(i)))
            }
            DataType::Float32 => {
                let a = col
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .expect("f32 column");
                (0..a.len())
                    .find(|&i| a.is_valid(i) && !a.value(i).is_finite())
                    .map(|i| (i, a.value(i) as f64))
            }
            _ => None,
        };
        if let Some((row, v)) = bad {
            return Err(format!(
                "output column `{}` has a non-finite value ({v}) at row {row}; nothing was published",
                field.name()
            ));
        }
    }
    Ok(())
}
