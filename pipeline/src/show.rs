//! Resolving what a user typed (`omega[omega=0.5]`, `baseline`, a hash
//! prefix) to one artifact, and printing provenance for people.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use ptft_engine::Status;
use ptft_store::{Artifact, Store};
use serde_json::Value;

use crate::{bad_input, load_plan};

/// The artifact hash a reference names.
pub fn resolve(store: &Store, reference: &str, workflow: Option<&Path>) -> Result<String> {
    if let Some(file) = workflow {
        let plan = load_plan(file, Some(store))?;
        let found = plan.find(reference);
        return match found.as_slice() {
            // An artifact hash (prefix) needs no workflow, so accept it too.
            [] if store.resolve_hash_prefix(reference).is_ok() => {
                Ok(store.resolve_hash_prefix(reference)?)
            }
            [] => Err(bad_input(format!(
                "{}: no stage, instance or artifact `{reference}`; instances: {}",
                file.display(),
                abbreviated(plan.instances.iter().map(|i| i.label.as_str()))
            ))),
            [one] => match &one.status {
                Status::Cached { artifact } => Ok(artifact.clone()),
                Status::WillRun { why } => Err(bad_input(format!(
                    "{}: `{}` is not in the store ({why}); run `ptft run {}` first",
                    file.display(),
                    one.label,
                    file.display()
                ))),
            },
            many => Err(bad_input(format!(
                "{}: `{reference}` is a sweep with {} instances; name one of: {}",
                file.display(),
                many.len(),
                abbreviated(many.iter().map(|i| i.label.as_str()))
            ))),
        };
    }
    if let Ok(hash) = store.resolve_hash_prefix(reference) {
        return Ok(hash);
    }
    let entries = store.entries()?;
    let newest = entries.iter().rev().find(|e| e.instance == reference);
    match newest {
        Some(e) => Ok(e.artifact.clone()),
        None => Err(bad_input(format!(
            "no artifact, key or instance `{reference}` in store {} (try `ptft ls`, or pass --workflow FILE)",
            store.root().display()
        ))),
    }
}

/// The first few names and how many more: a paper-sized workflow has
/// thousands of instances, too many for one error message.
fn abbreviated<'a>(names: impl Iterator<Item = &'a str>) -> String {
    const SHOWN: usize = 12;
    let names: Vec<&str> = names.collect();
    let mut out = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(
            ", ... ({} more; `ptft plan FILE` lists them all)",
            names.len() - SHOWN
        ));
    }
    out
}

/// Multi-line, human-readable provenance.
pub fn render(a: &Artifact) -> String {
    let p = &a.provenance;
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "artifact   {}", a.hash);
    let _ = writeln!(out, "file       {}", a.path.display());
    let _ = writeln!(
        out,
        "instance   {}   (stage {}, kind {} v{})",
        s(&p["stage"]["instance"]),
        s(&p["stage"]["id"]),
        s(&p["stage"]["kind"]),
        s(&p["stage"]["version"])
    );
    let _ = writeln!(
        out,
        "workflow   {}   ({})",
        s(&p["workflow"]["name"]),
        s(&p["workflow"]["file"])
    );
    let _ = writeln!(out, "key        {}", s(&p["key"]));
    let _ = writeln!(
        out,
        "data       {} rows; columns {}",
        s(&p["rows"]),
        s(&p["columns"])
    );
    let _ = writeln!(out, "data hash  {}", s(&p["data_hash"]));
    let _ = writeln!(out, "params");
    for line in serde_json::to_string_pretty(&p["params"])
        .unwrap_or_default()
        .lines()
    {
        let _ = writeln!(out, "  {line}");
    }
    match p["inputs"].as_array() {
        Some(inputs) if !inputs.is_empty() => {
            let _ = writeln!(out, "inputs");
            for i in inputs {
                let _ = writeln!(
                    out,
                    "  {}: {}  key {}  artifact {}",
                    s(&i["slot"]),
                    s(&i["instance"]),
                    &s(&i["key"])[..16.min(s(&i["key"]).len())],
                    s(&i["artifact"])
                );
            }
        }
        _ => {
            let _ = writeln!(out, "inputs     none");
        }
    }
    let _ = writeln!(out, "seeds      {}", s(&p["seeds"]));
    if p["notes"].as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "notes      {}", s(&p["notes"]));
    }
    let r = &p["run"];
    let _ = writeln!(
        out,
        "run        {} -> {} ({:.3} s) on {} [{}; {} threads, {} jobs]",
        s(&r["started"]),
        s(&r["finished"]),
        r["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        s(&r["host"]),
        s(&r["device"]),
        s(&r["threads"]),
        s(&r["jobs"])
    );
    let _ = writeln!(
        out,
        "ptft       {} (commit {})",
        s(&p["ptft"]["version"]),
        s(&p["ptft"]["git_commit"])
    );
    out
}
