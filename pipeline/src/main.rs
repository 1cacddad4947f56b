//! `ptft`: the command line over the engine, the store and the stages.
//!
//! This file only parses arguments, wires the stage registry to the engine,
//! prints results, and maps errors to exit codes: 0 success, 2 bad input
//! (workflow, parameters, unknown reference), 1 a failed stage or an
//! environment error.

mod bench;
mod explain;
mod interrupt;
mod maintain;
mod show;
mod slurm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ptft_engine::{EngineError, Plan, RunOptions, Status, ToolInfo, Workflow};
use ptft_store::Store;

#[derive(Parser)]
#[command(
    name = "ptft",
    version,
    about = "Reproducible, incremental workflows for the theory of how pretraining shapes fine-tuning"
)]
struct Cli {
    /// Artifact store directory.
    #[arg(long, global = true, env = "PTFT_STORE", default_value = "artifacts")]
    store: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a workflow: compute every stage instance whose key is not in the store.
    Run {
        file: PathBuf,
        /// Stage instances to run at the same time (default: number of cores).
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Print a machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
        /// No progress output.
        #[arg(long, short)]
        quiet: bool,
        /// Where instances run: this machine, or a SLURM cluster (the store
        /// must be on a filesystem every node sees).
        #[arg(long, value_enum, default_value = "local")]
        executor: Executor,
        /// SLURM partition (default: the cluster's default).
        #[arg(long)]
        partition: Option<String>,
        /// SLURM time limit per instance, in minutes (default: per stage kind).
        #[arg(long)]
        time: Option<u64>,
        /// SLURM CPUs per instance (default: per stage kind).
        #[arg(long)]
        cpus_per_task: Option<u32>,
        /// SLURM memory per instance in MB (default: per stage kind).
        #[arg(long)]
        mem: Option<u64>,
        /// At most this many array tasks of one submission at once.
        #[arg(long)]
        max_jobs: Option<u32>,
        /// Instances per SLURM array task (default: at most 16 tasks per submission).
        #[arg(long)]
        batch: Option<usize>,
    },
    /// Runs one instance of a workflow (what a SLURM array task executes).
    #[command(hide = true)]
    Worker {
        file: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        task: usize,
        #[arg(long)]
        batch: usize,
        #[arg(long)]
        results: PathBuf,
    },
    /// Dry run: what would be computed, and why.
    Plan {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Provenance of an artifact: by instance label, stage id, key or artifact hash (prefix).
    Show {
        reference: String,
        /// Resolve the label within this workflow (otherwise the newest matching entry in the store).
        #[arg(long)]
        workflow: Option<PathBuf>,
        /// Print the raw provenance JSON.
        #[arg(long)]
        json: bool,
    },
    /// The full chain behind one plotted number: the curve row it came from
    /// and every upstream artifact with params, seeds, versions and hashes.
    Explain {
        /// A figure instance (e.g. `fig3`), key or artifact hash (prefix).
        figure: String,
        /// The series as its legend names it, e.g. "c=0.001, omega=1 (empirical)".
        #[arg(long)]
        series: String,
        /// The x value (the nearest plotted point is explained).
        #[arg(long)]
        x: f64,
        /// Only this panel (letter), when the series appears in several.
        #[arg(long)]
        panel: Option<String>,
        /// Resolve the figure within this workflow (otherwise the newest matching entry).
        #[arg(long)]
        workflow: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print an artifact's table to stdout.
    Export {
        reference: String,
        #[arg(long)]
        workflow: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
    /// Re-hash every artifact and cross-check the index: corrupt, orphaned
    /// and missing entries (exit 1 if anything is corrupt or missing).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Remove artifacts not reachable from the named workflows (and/or not
    /// used for N days). Dry run unless --yes.
    Gc {
        /// Workflows whose artifacts are kept.
        workflows: Vec<PathBuf>,
        /// Also remove entries not used (run or read) for this many days.
        #[arg(long)]
        older_than: Option<f64>,
        /// Delete (otherwise only list what would go, with sizes).
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the store's entries.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Write the rendered figures of a workflow (PNG + SVG) and list where they are.
    Figures {
        workflow: PathBuf,
        /// Directory to write into (`<out>/<workflow name>/<instance>.png|svg`).
        #[arg(long, default_value = "figures")]
        out: PathBuf,
    },
    /// List the stage kinds this binary knows, with their versions.
    Kinds,
    /// Time the solver and the planner (see BENCHMARKS.md).
    Bench {
        /// Fewer repetitions.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Executor {
    Local,
    Slurm,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
}

/// An error that is the user's to fix (exit 2).
#[derive(Debug)]
struct BadInput(String);
impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for BadInput {}

fn bad(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        // `ptft export ... | head` closing the pipe early is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let user = e.downcast_ref::<BadInput>().is_some()
                || e.downcast_ref::<EngineError>()
                    .is_some_and(EngineError::is_bad_input);
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.to_string().contains("Broken pipe")
    })
}

pub fn tool_info() -> ToolInfo {
    let commit = env!("PTFT_GIT_COMMIT");
    ToolInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: (!commit.is_empty()).then(|| commit.to_string()),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

fn load_plan(file: &Path, store: Option<&Store>) -> Result<Plan> {
    let registry = ptft_stages::registry();
    let wf = Workflow::load(file)?;
    Ok(ptft_engine::plan(&wf, &registry, store)?)
}

/// The store if it already exists (planning must not create one).
fn existing_store(root: &Path) -> Option<Store> {
    Store::open_existing(root).ok()
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            file,
            jobs,
            json,
            quiet,
            executor,
            partition,
            time,
            cpus_per_task,
            mem,
            max_jobs,
            batch,
        } => {
            if executor == Executor::Slurm {
                let wf = Workflow::load(&file)?;
                ptft_engine::plan(&wf, &ptft_stages::registry(), None)?;
                let o = slurm::SlurmOptions {
                    partition,
                    time_min: time,
                    cpus: cpus_per_task,
                    mem_mb: mem,
                    max_jobs,
                    batch,
                };
                return slurm::run(&file, &cli.store, &o, json);
            }
            let registry = ptft_stages::registry();
            let wf = Workflow::load(&file)?;
            // Validate everything before the store is even created.
            ptft_engine::plan(&wf, &registry, None)?;
            let store = Store::open(&cli.store)
                .with_context(|| format!("opening store {}", cli.store.display()))?;
            let plan = ptft_engine::plan(&wf, &registry, Some(&store))?;
            let tool = tool_info();
            let opts = RunOptions {
                jobs: jobs.unwrap_or(tool.threads).max(1),
                progress: !quiet && !json,
                tool,
                cancel: Some(interrupt::flag()),
            };
            if !quiet && !json {
                eprintln!(
                    "{}: {} instances, {} to compute, {} cached (store {})",
                    wf.name,
                    plan.instances.len(),
                    plan.to_run(),
                    plan.cached(),
                    cli.store.display()
                );
            }
            let report = ptft_engine::run(&plan, &registry, &store, &opts)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if !quiet {
                println!(
                    "{}: computed {}, cached {}, failed {}, skipped {} in {:.2}s",
                    report.workflow,
                    report.computed,
                    report.cached,
                    report.failed,
                    report.skipped,
                    report.wall_seconds
                );
                for r in &report.instances {
                    if let ptft_engine::Outcome::Failed { error } = &r.outcome {
                        eprintln!("failed: {}: {error}", r.instance);
                    }
                }
            }
            if report.interrupted {
                let not_started = report
                    .instances
                    .iter()
                    .filter(|r| matches!(r.outcome, ptft_engine::Outcome::Skipped { .. }))
                    .count();
                eprintln!(
                    "interrupted: {} computed and published, {not_started} not started; `ptft run {}` continues from here",
                    report.computed,
                    file.display()
                );
                return Ok(ExitCode::from(130));
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Plan { file, json } => {
            let store = existing_store(&cli.store);
            let plan = load_plan(&file, store.as_ref())?;
            if json {
                let doc = serde_json::json!({
                    "workflow": plan.workflow.name,
                    "instances": plan.instances.len(),
                    "to_run": plan.to_run(),
                    "cached": plan.cached(),
                    "stages": plan.instances,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!(
                    "{} ({}): {} instances, {} will run, {} cached",
                    plan.workflow.name,
                    file.display(),
                    plan.instances.len(),
                    plan.to_run(),
                    plan.cached()
                );
                let width = plan
                    .instances
                    .iter()
                    .map(|i| i.label.len())
                    .max()
                    .unwrap_or(0)
                    .min(60);
                for i in &plan.instances {
                    match &i.status {
                        Status::Cached { artifact } => {
                            println!("  cached    {:width$}  {}", i.label, &artifact[..16])
                        }
                        Status::WillRun { why } => {
                            println!("  will run  {:width$}  {why}", i.label)
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            reference,
            workflow,
            json,
        } => {
            let store = Store::open_existing(&cli.store).map_err(|e| bad(e.to_string()))?;
            let hash = show::resolve(&store, &reference, workflow.as_deref())?;
            let artifact = store.read(&hash)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&artifact.provenance)?);
            } else {
                print!("{}", show::render(&artifact));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            figure,
            series,
            x,
            panel,
            workflow,
            json,
        } => {
            if !x.is_finite() {
                return Err(bad(format!("--x must be a finite number (got {x})")));
            }
            let store = Store::open_existing(&cli.store).map_err(|e| bad(e.to_string()))?;
            let hash = show::resolve(&store, &figure, workflow.as_deref())?;
            let artifact = store.read(&hash)?;
            let query = explain::Query {
                series: &series,
                x,
                panel: panel.as_deref(),
            };
            let e = explain::explain(&store, &artifact, &query)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", explain::render(&e));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            reference,
            workflow,
            format,
        } => {
            let store = Store::open_existing(&cli.store).map_err(|e| bad(e.to_string()))?;
            let hash = show::resolve(&store, &reference, Some(&workflow))?;
            let artifact = store.read(&hash)?;
            let stdout = std::io::stdout();
            let lock = stdout.lock();
            match format {
                Format::Csv => {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(lock);
                    w.write(&artifact.batch)?;
                }
                Format::Json => {
                    let mut w = arrow::json::ArrayWriter::new(lock);
                    w.write(&artifact.batch)?;
                    w.finish()?;
                    println!();
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker {
            file,
            manifest,
            task,
            batch,
            results,
        } => slurm::worker(&file, &cli.store, &manifest, task, batch, &results),
        Command::Verify { json } => maintain::verify(&cli.store, json),
        Command::Gc {
            workflows,
            older_than,
            yes,
            json,
        } => maintain::gc(&cli.store, &workflows, older_than, yes, json),
        Command::Ls { json } => {
            let store = Store::open_existing(&cli.store).map_err(|e| bad(e.to_string()))?;
            let entries = store.entries()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::to_value(&entries)?)?
                );
            } else {
                println!(
                    "{:24}  {:14}  {:26}  {:>6}  {:12}  instance",
                    "created", "workflow", "kind", "rows", "artifact"
                );
                for e in &entries {
                    println!(
                        "{:24}  {:14}  {:26}  {:>6}  {:12}  {}",
                        e.created,
                        e.workflow,
                        e.kind,
                        e.rows,
                        &e.artifact[..12],
                        e.instance
                    );
                }
                println!("{} entries in {}", entries.len(), store.root().display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Figures { workflow, out } => {
            let store = Store::open_existing(&cli.store).map_err(|e| bad(e.to_string()))?;
            let plan = load_plan(&workflow, Some(&store))?;
            let dir = out.join(&plan.workflow.name);
            let mut written = 0;
            // Every kind that renders an image (its PNG and SVG live in the
            // artifact's provenance notes).
            const RENDERING: [&str; 2] = ["figure", "heatmap_figure"];
            for inst in plan
                .instances
                .iter()
                .filter(|i| RENDERING.contains(&i.kind.as_str()))
            {
                let Status::Cached { artifact } = &inst.status else {
                    eprintln!(
                        "{}: not computed yet; run `ptft run {}`",
                        inst.label,
                        workflow.display()
                    );
                    continue;
                };
                let prov = store.read(artifact)?.provenance;
                let png = prov["notes"]["png_base64"].as_str().and_then(|b| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                });
                let (Some(png), Some(svg)) = (png, prov["notes"]["svg"].as_str()) else {
                    anyhow::bail!(
                        "figure artifact {artifact} has no rendered image in its provenance"
                    );
                };
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let stem: String = inst
                    .label
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "-_=.".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                for (ext, bytes) in [("png", png.as_slice()), ("svg", svg.as_bytes())] {
                    let path = dir.join(format!("{stem}.{ext}"));
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("{}", path.display());
                }
                written += 1;
            }
            if written == 0 {
                eprintln!(
                    "no rendered figures in {} (figure stages: `kind: \"figure\"`)",
                    workflow.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Kinds => {
            for (kind, version, doc) in ptft_stages::registry().kinds() {
                println!("{kind:28} v{version:<3} {doc}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick } => {
            bench::run(quick)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) use bad as bad_input;
