//! `ptft explain`: the full chain behind one plotted number.
//!
//! A figure artifact lists every point it drew (panel, series, source
//! instance, source row, x, y). Explaining a point means: find that row,
//! open the curve artifact it names (re-hashed on read, like every store
//! read), check that the plotted value *is* the value in that row, then
//! walk the provenance inputs upstream to the roots, collecting each
//! artifact's stage, version, key, hash, resolved params, coordinates and
//! seeds. Nothing is recomputed and nothing is taken from the workflow
//! file: the chain is what the artifacts themselves record.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::util::display::array_value_to_string;
use ptft_store::{Artifact, Store};
use serde_json::{json, Map, Value};

use crate::bad_input;

/// What the user asked for.
pub struct Query<'a> {
    pub series: &'a str,
    pub x: f64,
    pub panel: Option<&'a str>,
}

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .with_context(|| format!("figure table has no string column `{name}`"))
}

fn f64_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .with_context(|| format!("figure table has no f64 column `{name}`"))
}

/// One row of a table as `{column: value}` (numbers stay numbers, so the
/// JSON output carries the exact f64).
fn row_json(b: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut m = Map::new();
    for (field, col) in b.schema().fields().iter().zip(b.columns()) {
        let any = col.as_any();
        let v = if col.is_null(row) {
            Value::Null
        } else if let Some(a) = any.downcast_ref::<Float64Array>() {
            json!(a.value(row))
        } else if let Some(a) = any.downcast_ref::<UInt64Array>() {
            json!(a.value(row))
        } else {
            Value::from(array_value_to_string(col, row).unwrap_or_default())
        };
        m.insert(field.name().clone(), v);
    }
    m
}

fn node(a: &Artifact) -> Value {
    let p = &a.provenance;
    json!({
        "instance": p["stage"]["instance"],
        "stage": p["stage"]["id"],
        "kind": p["stage"]["kind"],
        "version": p["stage"]["version"],
        "key": p["key"],
        "artifact": a.hash,
        "params": p["params"],
        "coords": p["stage"]["coords"],
        "seeds": p["seeds"],
        "inputs": p["inputs"].as_array().map(|v| v.iter().map(|i| json!({
            "slot": i["slot"], "instance": i["instance"], "artifact": i["artifact"]
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "ptft": p["ptft"],
    })
}

/// Explains the points of `figure` matching `q`; the JSON is the
/// machine-readable answer (`--json`), [`render`] the human one.
pub fn explain(store: &Store, figure: &Artifact, q: &Query) -> Result<Value> {
    let p = &figure.provenance;
    let label = p["stage"]["instance"].as_str().unwrap_or("?").to_string();
    if p["stage"]["kind"] != "figure" {
        return Err(bad_input(format!(
            "`{label}` is a `{}` artifact, not a figure; explain takes a figure instance (e.g. fig3)",
            p["stage"]["kind"].as_str().unwrap_or("?")
        )));
    }
    let t = &figure.batch;
    let (panel, series, role, source) = (
        str_col(t, "panel")?,
        str_col(t, "series")?,
        str_col(t, "role")?,
        str_col(t, "source")?,
    );
    let source_row = t
        .column_by_name("source_row")
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .context("figure table has no `source_row` column")?;
    let (xs, ys) = (f64_col(t, "x")?, f64_col(t, "y")?);

    let in_panel = |r: usize| q.panel.is_none_or(|want| panel.value(r) == want);
    let of_series: Vec<usize> = (0..t.num_rows())
        .filter(|&r| in_panel(r) && series.value(r) == q.series)
        .collect();
    if of_series.is_empty() {
        let mut names: Vec<String> = (0..t.num_rows())
            .filter(|&r| in_panel(r))
            .map(|r| format!("{} (panel {})", series.value(r), panel.value(r)))
            .collect();
        names.dedup();
        let names: Vec<String> = names
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        return Err(bad_input(format!(
            "figure `{label}` has no series `{}`{}; its series: {}",
            q.series,
            q.panel
                .map(|p| format!(" in panel {p}"))
                .unwrap_or_default(),
            names.join("; ")
        )));
    }
    // The nearest plotted x, per panel (a series may appear in several).
    let mut best: BTreeMap<&str, usize> = BTreeMap::new();
    for &r in &of_series {
        let e = best.entry(panel.value(r)).or_insert(r);
        if (xs.value(r) - q.x).abs() < (xs.value(*e) - q.x).abs() {
            *e = r;
        }
    }

    let figure_inputs: Vec<Value> = p["inputs"].as_array().cloned().unwrap_or_default();
    let figure_params = &p["params"];
    let mut points = Vec::new();
    let mut roots = Vec::new();
    for (&pan, &r) in &best {
        let src = source.value(r);
        let input = figure_inputs
            .iter()
            .find(|i| i["instance"] == src)
            .with_context(|| format!("figure provenance does not list its input `{src}`"))?;
        let hash = input["artifact"].as_str().unwrap_or_default();
        let curve = store
            .read(hash)
            .with_context(|| format!("reading curve artifact {hash} (`{src}`)"))?;
        let row = source_row.value(r) as usize;
        if row >= curve.batch.num_rows() {
            anyhow::bail!(
                "figure `{label}` names row {row} of `{src}`, which has {} rows",
                curve.batch.num_rows()
            );
        }
        let columns = if role.value(r) == "points" {
            &figure_params["points"]
        } else {
            &figure_params["lines"]
        };
        let y_col = columns["y"].as_str().unwrap_or("y").to_string();
        let values = row_json(&curve.batch, row);
        let stored = values.get(&y_col).and_then(Value::as_f64);
        let y = ys.value(r);
        let y_err = t
            .column_by_name("y_err")
            .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
            .and_then(|c| (!c.is_null(r)).then(|| c.value(r)));
        points.push(json!({
            "panel": pan,
            "series": q.series,
            "role": role.value(r),
            "x_asked": q.x,
            "x": xs.value(r),
            "y": y,
            "y_err": y_err,
            "y_column": y_col,
            "err_column": columns["err"],
            "source": {
                "instance": src,
                "key": input["key"],
                "artifact": hash,
                "row": row,
                "values": values,
            },
            "reproduced": stored.is_some_and(|s| s.to_bits() == y.to_bits()),
        }));
        roots.push(curve);
    }

    // Upstream, breadth first, each artifact once. At the first hop only
    // the inputs that fed the explained row are followed: an input whose
    // sweep coordinates contradict the row's values (an evaluation at
    // alpha = 0.5 for a row with alpha = 0.304) did not contribute to it.
    let mut chain = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<(Artifact, Option<Map<String, Value>>)> = roots
        .into_iter()
        .zip(
            points
                .iter()
                .map(|p| p["source"]["values"].as_object().cloned()),
        )
        .collect();
    while let Some((a, row)) = queue.pop_front() {
        if !seen.insert(a.hash.clone()) {
            continue;
        }
        let mut node = node(&a);
        let mut kept = Vec::new();
        for i in a.provenance["inputs"].as_array().into_iter().flatten() {
            let h = i["artifact"].as_str().unwrap_or_default();
            let up = store.read(h).with_context(|| {
                format!(
                    "reading upstream artifact {h} (`{}`)",
                    i["instance"].as_str().unwrap_or("?")
                )
            })?;
            if let Some(row) = &row {
                let coords = up.provenance["stage"]["coords"].as_object();
                let contradicts = coords.into_iter().flatten().any(|(k, v)| {
                    row.get(k).is_some_and(|r| match (r.as_f64(), v.as_f64()) {
                        (Some(a), Some(b)) => (a - b).abs() > 1e-12 * a.abs().max(b.abs()),
                        _ => r != v,
                    })
                });
                if contradicts {
                    continue;
                }
            }
            kept.push(json!({"slot": i["slot"], "instance": i["instance"], "artifact": h}));
            if !seen.contains(h) {
                queue.push_back((up, None));
            }
        }
        node["inputs"] = Value::Array(kept);
        chain.push(node);
    }

    let workflow_file = p["workflow"]["file"].as_str().unwrap_or("WORKFLOW.json");
    let commit = p["ptft"]["git_commit"].as_str().unwrap_or("unknown");
    let sh = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut reproduce = Vec::new();
    if commit != "unknown" {
        reproduce.push(format!(
            "git checkout {}",
            commit.trim_end_matches("-dirty")
        ));
    }
    reproduce.push(format!("ptft run {workflow_file}"));
    for pt in &points {
        reproduce.push(format!(
            "ptft export {} --workflow {workflow_file}   # row {}",
            sh(pt["source"]["instance"].as_str().unwrap_or_default()),
            pt["source"]["row"]
        ));
    }
    reproduce.push(format!(
        "ptft explain {label} --series {} --x {} --workflow {workflow_file}",
        sh(q.series),
        q.x
    ));
    Ok(json!({
        "figure": { "instance": label, "key": p["key"], "artifact": figure.hash,
                    "workflow": p["workflow"], "ptft": p["ptft"] },
        "points": points,
        "chain": chain,
        "reproduce": reproduce,
    }))
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The human-readable explanation: the point, the row it came from, then
/// the upstream stages grouped by stage id (params shared by every
/// instance of a stage printed once, the rest per instance).
pub fn render(e: &Value) -> String {
    let mut out = String::new();
    let fig = &e["figure"];
    for pt in e["points"].as_array().into_iter().flatten() {
        let src = &pt["source"];
        let _ = writeln!(
            out,
            "{} panel {}, series \"{}\", x = {}{}",
            short(&fig["instance"]),
            short(&pt["panel"]),
            short(&pt["series"]),
            short(&pt["x"]),
            if pt["x"] == pt["x_asked"] {
                String::new()
            } else {
                format!("   (nearest plotted x to {})", short(&pt["x_asked"]))
            }
        );
        let err = match pt["y_err"].as_f64() {
            Some(se) => format!(" ± {se:e} (SE, column {})", short(&pt["err_column"])),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  value      {:e}{err}   [{} of {}]",
            pt["y"].as_f64().unwrap_or(f64::NAN),
            short(&pt["y_column"]),
            short(&pt["role"])
        );
        let _ = writeln!(
            out,
            "  from       {} row {}   artifact {}   key {}",
            short(&src["instance"]),
            short(&src["row"]),
            short(&src["artifact"]),
            short(&src["key"])
        );
        let row: Vec<String> = src["values"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", short(v)))
            .collect();
        let _ = writeln!(out, "  row        {}", row.join("  "));
        let _ = writeln!(
            out,
            "  check      {}",
            if pt["reproduced"] == true {
                "the plotted value is bit-identical to that row"
            } else {
                "MISMATCH: the plotted value differs from the row it names"
            }
        );
    }
    let chain = e["chain"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(
        out,
        "\nupstream: {} artifacts, each re-hashed against its content address on read",
        chain.len()
    );
    let mut by_stage: Vec<(String, Vec<&Value>)> = Vec::new();
    for n in &chain {
        let id = short(&n["stage"]);
        match by_stage.iter_mut().find(|(s, _)| *s == id) {
            Some((_, v)) => v.push(n),
            None => by_stage.push((id, vec![n])),
        }
    }
    for (id, nodes) in &by_stage {
        let first = nodes[0];
        let params = first["params"].as_object().cloned().unwrap_or_default();
        let common: Map<String, Value> = params
            .into_iter()
            .filter(|(k, v)| nodes.iter().all(|n| n["params"].get(k) == Some(v)))
            .collect();
        let _ = writeln!(
            out,
            "  {id}  ({} v{}, {} instance{})  params {}",
            short(&first["kind"]),
            short(&first["version"]),
            nodes.len(),
            if nodes.len() == 1 { "" } else { "s" },
            Value::Object(common.clone())
        );
        for n in nodes {
            let own: Vec<String> = n["params"]
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !common.contains_key(*k))
                .map(|(k, v)| format!("{k}={}", short(v)))
                .collect();
            let seeds = match &n["seeds"] {
                Value::Object(m) if !m.is_empty() => format!("  seeds {}", n["seeds"]),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    {}  artifact {}  key {}{}{}",
                short(&n["instance"]),
                &short(&n["artifact"])[..12.min(short(&n["artifact"]).len())],
                &short(&n["key"])[..12.min(short(&n["key"]).len())],
                if own.is_empty() {
                    String::new()
                } else {
                    format!("  {}", own.join(" "))
                },
                seeds
            );
        }
    }
    let _ = writeln!(
        out,
        "\nproduced by ptft {} (commit {})",
        short(&fig["ptft"]["version"]),
        short(&fig["ptft"]["git_commit"])
    );
    let _ = writeln!(out, "reproduce:");
    for line in e["reproduce"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  {}", short(line));
    }
    out
}
