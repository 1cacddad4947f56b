//! `ptft verify` and `ptft gc`: the store's health check and its cleaner.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use ptft_engine::Status;
use ptft_store::Store;

use crate::{bad_input, load_plan};

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        b if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        _ => format!("{bytes} B"),
    }
}

pub fn verify(root: &Path, json: bool) -> Result<ExitCode> {
    let store = Store::open_existing(root).map_err(|e| bad_input(e.to_string()))?;
    let r = store.verify()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "checked {} artifacts ({}) in {}",
            r.checked,
            human(r.bytes),
            root.display()
        );
        for c in &r.corrupt {
            println!(
                "CORRUPT   {}  ({}): hashes to {}; used by {}",
                c.artifact,
                c.path.display(),
                &c.actual[..16],
                if c.instances.is_empty() {
                    "no key".to_string()
                } else {
                    c.instances.join(", ")
                }
            );
        }
        for e in &r.missing {
            println!(
                "MISSING   {}  ({}): its key entry remains; the next run recomputes it",
                e.artifact, e.instance
            );
        }
        for p in &r.bad_index {
            println!("BAD INDEX {}", p.display());
        }
        for h in &r.orphaned {
            println!("orphaned  {h}  (no key points at it; `ptft gc` removes it)");
        }
        for p in &r.stray_temp {
            println!(
                "temp file {}  (an interrupted write; `ptft gc` removes it)",
                p.display()
            );
        }
        println!(
            "{}: {} corrupt, {} missing, {} bad index entries, {} orphaned, {} temp files{}",
            if r.clean() { "clean" } else { "PROBLEMS" },
            r.corrupt.len(),
            r.missing.len(),
            r.bad_index.len(),
            r.orphaned.len(),
            r.stray_temp.len(),
            if r.corrupt.is_empty() {
                ""
            } else {
                "; `ptft run` quarantines corrupt artifacts and recomputes them"
            }
        );
    }
    Ok(if r.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn gc(
    root: &Path,
    workflows: &[PathBuf],
    older_than: Option<f64>,
    yes: bool,
    json: bool,
) -> Result<ExitCode> {
    if workflows.is_empty() && older_than.is_none() {
        return Err(bad_input(
            "gc needs the workflows whose artifacts to keep (e.g. `ptft gc workflows/paper.json`), --older-than DAYS, or both",
        ));
    }
    if let Some(d) = older_than {
        if !(d.is_finite() && d >= 0.0) {
            return Err(bad_input(format!(
                "--older-than must be a number of days >= 0 (got {d})"
            )));
        }
    }
    let store = Store::open_existing(root).map_err(|e| bad_input(e.to_string()))?;
    let Some(_lock) = store.try_lock_exclusive()? else {
        return Err(bad_input(format!(
            "a `ptft run` is using the store {}; run gc when it has finished (gc never deletes what a running process may use)",
            root.display()
        )));
    };
    let keep: Option<BTreeSet<String>> = if workflows.is_empty() {
        None
    } else {
        let mut keep = BTreeSet::new();
        for w in workflows {
            let plan = load_plan(w, Some(&store))?;
            let missing = plan.instances.iter().filter(|i| i.will_run()).count();
            if missing > 0 && !json {
                eprintln!(
                    "note: {}: {missing} instances are not computed yet (nothing to keep for them)",
                    w.display()
                );
            }
            keep.extend(
                plan.instances
                    .iter()
                    .filter(|i| matches!(i.status, Status::Cached { .. }))
                    .map(|i| i.key.clone()),
            );
        }
        Some(keep)
    };
    let since = older_than.map(|d| SystemTime::now() - Duration::from_secs_f64(d * 86_400.0));
    let removals = store.gc_plan(keep.as_ref(), since)?;
    let total: u64 = removals.iter().map(|r| r.bytes).sum();
    let freed = if yes { store.collect(&removals)? } else { 0 };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "deleted": yes, "artifacts": removals.len(), "bytes": total, "removals": removals,
            }))?
        );
    } else {
        for r in &removals {
            println!(
                "{} {}  {:>9}  {}",
                if yes { "removed" } else { "would remove" },
                &r.artifact[..16],
                human(r.bytes),
                if r.instances.is_empty() {
                    "(orphan)".to_string()
                } else {
                    r.instances.join(", ")
                }
            );
        }
        if yes {
            println!(
                "removed {} artifacts, freed {}",
                removals.len(),
                human(freed)
            );
        } else {
            println!(
                "{} artifacts ({}) would be removed; rerun with --yes to delete them",
                removals.len(),
                human(total)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
