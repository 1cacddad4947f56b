//! Workflow files: the JSON a user writes. This module only checks the
//! *shape* (and reports line/column for anything malformed); meaning — kinds,
//! params, inputs, cycles — is checked when the workflow is planned.
//!
//! ```json
//! { "name": "quickstart",
//!   "stages": [
//!     { "id": "omega", "kind": "replica_curve",
//!       "params": { "c": 1e-3 },
//!       "sweep": { "omega": [0, 0.5, 1] } },
//!     { "id": "table", "kind": "concat", "inputs": { "parts": "omega" } } ] }
//! ```
//!
//! A `sweep` is either an object of lists (the full grid over those params)
//! or a list of objects (explicit points). In a grid, a list of *objects*
//! is a bundle axis: `"init": [{"c": 1e-6}, {"lambda": -1e-3}]` sets those
//! params together, so "every task x each one-at-a-time variation" (the
//! paper's design) is one stage. Each grid point becomes one stage
//! instance, labelled `id[param=value,...]`; a downstream input that names
//! the stage receives every instance.
//!
//! Top-level `vars` name values used in several places: a param or sweep
//! value written `"$d"` is replaced by `vars.d` (so `d` is one edit away
//! from 5000 in every stage that uses it).
//!
//! An aggregating stage may say what it `gather`s: `"gather": ["seed",
//! "alpha"]` on an `empirical_curve` makes one curve per configuration of
//! its upstream (every other coordinate), each over all seeds and alphas.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::EngineError;

/// A parsed workflow file.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Name used to group history in the store (defaults to the file stem).
    pub name: String,
    pub description: Option<String>,
    pub path: PathBuf,
    pub stages: Vec<StageSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowFile {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    vars: Map<String, Value>,
    stages: Vec<StageSpec>,
}

/// One stage entry of a workflow file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub id: String,
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
    /// slot name → stage id, or list of stage ids.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputRef>,
    #[serde(default)]
    pub sweep: Option<Value>,
    /// For a stage with a many-arity input: the coordinates it aggregates
    /// over (e.g. `["seed", "alpha"]`). The stage then runs once per
    /// distinct value of the upstream's *other* coordinates — one
    /// empirical curve per configuration — instead of once for all inputs.
    #[serde(default)]
    pub gather: Option<Vec<String>>,
    /// Cluster resources for this stage's instances, overriding the kind's
    /// defaults (only used by `--executor slurm`).
    #[serde(default)]
    pub resources: crate::stage::ResourceOverride,
}

/// What an input slot refers to.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum InputRef {
    One(String),
    Many(Vec<String>),
}

impl InputRef {
    pub fn ids(&self) -> Vec<&str> {
        match self {
            InputRef::One(s) => vec![s.as_str()],
            InputRef::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl Workflow {
    /// Reads and shape-checks a workflow file.
    pub fn load(path: &Path) -> Result<Workflow, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::Input {
            file: path.to_path_buf(),
            location: String::new(),
            message: format!("cannot read the workflow file: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Shape-checks workflow text; `path` is used for messages and the
    /// default name.
    pub fn parse(text: &str, path: &Path) -> Result<Workflow, EngineError> {
        // JSON allows a key twice and serde keeps the last silently; a
        // workflow that says `"c": 1e-3, "c": 2e-3` is a mistake to report.
        serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| EngineError::Input {
            file: path.to_path_buf(),
            location: format!("line {}, column {}", e.line(), e.column()),
            message: explain_json_error(&e),
        })?;
        let mut file: WorkflowFile =
            serde_json::from_str(text).map_err(|e| EngineError::Input {
                file: path.to_path_buf(),
                location: format!("line {}, column {}", e.line(), e.column()),
                message: explain_json_error(&e),
            })?;
        let name = match file.name {
            Some(n) => n,
            None => path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("workflow")
                .to_string(),
        };
        if name.is_empty() {
            return Err(EngineError::Input {
                file: path.to_path_buf(),
                location: "field `name`".into(),
                message: "the workflow name must not be empty".into(),
            });
        }
        if file.stages.is_empty() {
            return Err(EngineError::Input {
                file: path.to_path_buf(),
                location: "field `stages`".into(),
                message: "a workflow needs at least one stage".into(),
            });
        }
        for stage in &mut file.stages {
            let at = |field: &str| EngineError::Input {
                file: path.to_path_buf(),
                location: format!("stage `{}`, field `{field}`", stage.id),
                message: String::new(),
            };
            for (k, v) in stage.params.iter_mut() {
                substitute(v, &file.vars)
                    .map_err(|m| with_message(at(&format!("params.{k}")), m))?;
            }
            if let Some(sweep) = &mut stage.sweep {
                substitute(sweep, &file.vars).map_err(|m| with_message(at("sweep"), m))?;
            }
        }
        Ok(Workflow {
            name,
            description: file.description,
            path: path.to_path_buf(),
            stages: file.stages,
        })
    }
}

fn explain_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "malformed JSON",
        Category::Eof => "the file ends too early (unclosed bracket or brace?)",
        Category::Data => "the workflow does not have the expected structure",
        Category::Io => "read error",
    };
    let detail = e.to_string();
    // serde_json appends " at line L column C"; we report the location separately.
    let detail = match detail.rfind(" at line ") {
        Some(i) => detail[..i].to_string(),
        None => detail,
    };
    let hint = if detail.contains("unknown field") {
        " (top-level fields: name, description, vars, stages; stage fields: id, kind, description, params, inputs, sweep, gather, resources)"
    } else if detail.contains("number out of range") {
        " (numbers must be finite; JSON has no NaN or Infinity)"
    } else {
        ""
    };
    format!("{what}: {detail}{hint}")
}

/// Any JSON value, refusing an object that names a key twice.
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicateKeys, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut a: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        while a.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut a: A,
    ) -> Result<NoDuplicateKeys, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(k) = a.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key `{k}` in one object (JSON keeps only the last; remove one)"
                )));
            }
            a.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

fn with_message(e: EngineError, message: String) -> EngineError {
    match e {
        EngineError::Input { file, location, .. } => EngineError::Input {
            file,
            location,
            message,
        },
        other => other,
    }
}

/// Replaces every string `"$name"` inside `v` by the workflow variable
/// `name`. Done at parse time, so keys see only resolved values: writing
/// `"d": "$d"` or `"d": 1000` gives the same artifact.
fn substitute(v: &mut Value, vars: &Map<String, Value>) -> Result<(), String> {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix('$') {
                let Some(value) = vars.get(name) else {
                    let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                    return Err(format!(
                        "`{s}` refers to the workflow variable `{name}`, which is not defined in `vars` (defined: {})",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ));
                };
                *v = value.clone();
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|x| substitute(x, vars)),
        Value::Object(map) => map.values_mut().try_for_each(|x| substitute(x, vars)),
        _ => Ok(()),
    }
}

/// Most instances one stage's sweep may expand to. The paper's largest
/// figure has under 1,000 per stage; a million plans in about a second.
pub const MAX_SWEEP_POINTS: usize = 1_000_000;

/// One point of a sweep: param name → value, in a stable order.
pub type SweepPoint = Map<String, Value>;

/// Expands a stage's `sweep` into its points; `None` means a single
/// instance with no sweep values.
pub(crate) fn expand_sweep(
    spec: &StageSpec,
    file: &Path,
) -> Result<Option<Vec<SweepPoint>>, EngineError> {
    let Some(sweep) = &spec.sweep else {
        return Ok(None);
    };
    let bad = |message: String| EngineError::Input {
        file: file.to_path_buf(),
        location: format!("stage `{}`, field `sweep`", spec.id),
        message,
    };
    let points: Vec<SweepPoint> = match sweep {
        Value::Object(grid) => {
            if grid.is_empty() {
                return Err(bad("an empty sweep object sweeps nothing; remove it or name at least one parameter with a list of values".into()));
            }
            // Refuse a grid too large to plan before building any of it:
            // the points alone would exhaust memory long before the run.
            let size = grid
                .values()
                .map(|v| v.as_array().map_or(1.0, |a| a.len() as f64))
                .product::<f64>();
            if size > MAX_SWEEP_POINTS as f64 {
                return Err(bad(format!(
                    "the sweep grid has {size:.3e} points ({}); at most {MAX_SWEEP_POINTS} per stage (each point is a stage instance, ~1 kB to plan); split the sweep or reduce a list",
                    grid.iter()
                        .map(|(k, v)| format!("{} {k}", v.as_array().map_or(1, Vec::len)))
                        .collect::<Vec<_>>()
                        .join(" x ")
                )));
            }
            let mut points = vec![Map::new()];
            for (param, values) in grid {
                let Value::Array(values) = values else {
                    return Err(bad(format!(
                        "sweep values for `{param}` must be a list, e.g. \"{param}\": [0, 0.5, 1]"
                    )));
                };
                if values.is_empty() {
                    return Err(bad(format!(
                        "sweep list for `{param}` is empty; give at least one value"
                    )));
                }
                let mut next = Vec::with_capacity(points.len() * values.len());
                for p in &points {
                    for v in values {
                        let mut q = p.clone();
                        match v {
                            // A bundle: several params set together; the
                            // sweep key only names the bundle.
                            Value::Object(bundle) => {
                                for (k, x) in bundle {
                                    if q.insert(k.clone(), x.clone()).is_some() {
                                        return Err(bad(format!(
                                            "`{k}` is set by two sweep entries at once (in bundle `{param}`)"
                                        )));
                                    }
                                }
                            }
                            _ => {
                                q.insert(param.clone(), v.clone());
                            }
                        }
                        next.push(q);
                    }
                }
                points = next;
            }
            points
        }
        Value::Array(list) => {
            if list.is_empty() {
                return Err(bad("an empty list of sweep points sweeps nothing".into()));
            }
            let mut points = Vec::new();
            for (i, p) in list.iter().enumerate() {
                match p {
                    Value::Object(m) if !m.is_empty() => points.push(m.clone()),
                    _ => return Err(bad(format!(
                        "sweep point {i} must be a non-empty object of parameter values, e.g. {{\"c\": 1e-3, \"lambda\": 0}}"
                    ))),
                }
            }
            points
        }
        _ => {
            return Err(bad(
                "a sweep is either an object of lists (grid) or a list of objects (points)".into(),
            ))
        }
    };
    for p in &points {
        for k in p.keys() {
            if spec.params.contains_key(k) {
                return Err(bad(format!(
                    "`{k}` appears both in `params` and in `sweep`; keep it in one place"
                )));
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for p in &points {
        let label = point_label(p);
        if !seen.insert(label.clone()) {
            return Err(bad(format!("the sweep point [{label}] appears twice")));
        }
    }
    Ok(Some(points))
}

/// `omega=0.5,c=0.001` — compact, stable, readable.
pub(crate) fn point_label(p: &SweepPoint) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}
