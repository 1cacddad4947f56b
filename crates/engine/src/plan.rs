//! Planning: from a parsed workflow to a list of stage *instances* in
//! dependency order, each with its resolved parameters, its cache key, and
//! whether it must run (and why).
//!
//! The cache key of an instance is blake3 over the canonical JSON of
//! `{kind, version, params (resolved), inputs: {slot: [upstream keys]}}`.
//! Upstream *keys* (not artifact bytes) chain into downstream keys, so the
//! whole plan — including every downstream key — is known before anything
//! runs, and `ptft plan` is exact. The artifact hashes of the inputs are
//! recorded in provenance when the instance runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use ptft_store::{Lookup, Store};

use crate::error::EngineError;
use crate::stage::{Arity, PlannedInput, PlannedInputs, Registry, ResourceOverride, Resources};
use crate::workflow::{expand_sweep, point_label, SweepPoint, Workflow};

/// Why an instance will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum Reason {
    /// No earlier run of this instance is known.
    New,
    /// Resolved params differ from the last run (the diff, human readable).
    ParamsChanged(String),
    /// The stage's version constant changed.
    VersionChanged { from: u32, to: u32 },
    /// An upstream instance's key changed (slots listed).
    InputChanged(Vec<String>),
    /// The key was computed before but its artifact is gone.
    ArtifactMissing,
    /// The artifact's bytes no longer match its hash: it is quarantined
    /// (moved to `quarantine/`) when the run starts, then recomputed.
    ArtifactCorrupt { artifact: String },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::New => write!(f, "new"),
            Reason::ParamsChanged(d) => write!(f, "params changed ({d})"),
            Reason::VersionChanged { from, to } => {
                write!(f, "stage version changed ({from} -> {to})")
            }
            Reason::InputChanged(slots) => write!(f, "input changed ({})", slots.join(", ")),
            Reason::ArtifactMissing => write!(f, "artifact missing"),
            Reason::ArtifactCorrupt { artifact } => write!(
                f,
                "artifact {} is corrupt (its bytes no longer match its hash)",
                &artifact[..12.min(artifact.len())]
            ),
        }
    }
}

/// Whether an instance's output is already in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    Cached { artifact: String },
    WillRun { why: Reason },
}

/// One stage instance (a stage, or one grid point of a swept stage).
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    /// `id`, or `id[param=value,...]` for a sweep point.
    pub label: String,
    pub stage: String,
    pub kind: String,
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep_point: Option<SweepPoint>,
    /// Own sweep point plus coordinates inherited through mapped inputs;
    /// the label shows them.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub coords: SweepPoint,
    /// Resolved parameters (defaults filled in), canonical.
    pub params: Value,
    /// slot → indices (into [`Plan::instances`]) of the upstream instances.
    #[serde(skip)]
    pub inputs: BTreeMap<String, Vec<usize>>,
    pub key: String,
    #[serde(flatten)]
    pub status: Status,
    /// The kind's cluster resources (a cluster executor lays its own
    /// defaults and then [`Instance::resource_override`] over them).
    #[serde(skip)]
    pub resources: Resources,
    /// The workflow's per-stage `resources` override.
    #[serde(skip)]
    pub resource_override: ResourceOverride,
}

impl Instance {
    pub fn will_run(&self) -> bool {
        matches!(self.status, Status::WillRun { .. })
    }
}

/// A planned workflow: instances in an order where every input precedes its
/// consumers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workflow: Workflow,
    pub instances: Vec<Instance>,
}

impl Plan {
    pub fn to_run(&self) -> usize {
        self.instances.iter().filter(|i| i.will_run()).count()
    }

    pub fn cached(&self) -> usize {
        self.instances.len() - self.to_run()
    }

    /// Finds instances by label or stage id (a stage id matches all of its
    /// sweep points).
    pub fn find(&self, reference: &str) -> Vec<&Instance> {
        let exact: Vec<&Instance> = self
            .instances
            .iter()
            .filter(|i| i.label == reference)
            .collect();
        if !exact.is_empty() {
            return exact;
        }
        self.instances
            .iter()
            .filter(|i| i.stage == reference)
            .collect()
    }
}

/// What the store remembers about the last run of one instance, used to
/// explain why an instance will run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub label: String,
    pub sweep_index: Option<usize>,
    pub key: String,
    pub version: u32,
    pub params: Value,
    pub inputs: BTreeMap<String, Vec<String>>,
}

/// Per-workflow history: stage id → records of its instances.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    pub stages: BTreeMap<String, Vec<InstanceRecord>>,
}

impl History {
    pub(crate) fn load(store: &Store, workflow: &str) -> Result<History, EngineError> {
        Ok(match store.read_history(workflow)? {
            // A history we cannot parse (older format, hand-edited) only
            // costs us the *reason* text, never correctness: ignore it.
            Some(v) => serde_json::from_value(v).unwrap_or_default(),
            None => History::default(),
        })
    }
}

/// Recursively sorts object keys so the same value always hashes the same,
/// whatever map type the JSON library was compiled with.
pub fn canonical_json(v: &Value) -> String {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: BTreeMap<&String, Value> =
                    m.iter().map(|(k, v)| (k, canon(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&canon(v)).expect("JSON values serialise")
}

fn compute_key(
    kind: &str,
    version: u32,
    params: &Value,
    inputs: &BTreeMap<String, Vec<String>>,
) -> String {
    let doc = serde_json::json!({
        "kind": kind,
        "version": version,
        "params": params,
        "inputs": inputs,
    });
    blake3::hash(canonical_json(&doc).as_bytes())
        .to_hex()
        .to_string()
}

/// Plans `workflow`. With a store, each instance is marked cached or
/// will-run with a reason; without one (`None`) every instance is new.
/// Every validation error is raised here, before anything runs.
pub fn plan(
    workflow: &Workflow,
    registry: &Registry,
    store: Option<&Store>,
) -> Result<Plan, EngineError> {
    let file = &workflow.path;
    let input_err = |location: String, message: String| EngineError::Input {
        file: file.clone(),
        location,
        message,
    };

    // Stage-level checks: ids, kinds, input references.
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, s) in workflow.stages.iter().enumerate() {
        if s.id.is_empty() || s.id.contains(['[', ']', ',']) {
            return Err(input_err(
                format!("stage {i}, field `id`"),
                format!(
                    "stage id `{}` must be non-empty and free of '[', ']' and ','",
                    s.id
                ),
            ));
        }
        if let Some(prev) = by_id.insert(&s.id, i) {
            return Err(input_err(
                format!("stage {i}, field `id`"),
                format!(
                    "duplicate stage id `{}` (also used by stage {prev}); ids must be unique",
                    s.id
                ),
            ));
        }
        let Some(stage) = registry.get(&s.kind) else {
            return Err(input_err(
                format!("stage `{}`, field `kind`", s.id),
                format!(
                    "unknown stage kind `{}`; known kinds: {}",
                    s.kind,
                    registry.kind_names().join(", ")
                ),
            ));
        };
        for slot in stage.slots() {
            if !slot.optional && !s.inputs.contains_key(slot.name) {
                return Err(input_err(
                    format!("stage `{}`, field `inputs`", s.id),
                    format!(
                        "kind `{}` needs input `{}` ({})",
                        s.kind, slot.name, slot.doc
                    ),
                ));
            }
        }
        for name in s.inputs.keys() {
            if !stage.slots().iter().any(|slot| slot.name == name) {
                let valid: Vec<&str> = stage.slots().iter().map(|s| s.name).collect();
                return Err(input_err(
                    format!("stage `{}`, field `inputs.{name}`", s.id),
                    format!(
                        "kind `{}` has no input `{name}`; its inputs are: {}",
                        s.kind,
                        if valid.is_empty() {
                            "none".to_string()
                        } else {
                            valid.join(", ")
                        }
                    ),
                ));
            }
        }
    }
    for s in &workflow.stages {
        for (slot, r) in &s.inputs {
            let ids = r.ids();
            if ids.is_empty() {
                return Err(input_err(
                    format!("stage `{}`, field `inputs.{slot}`", s.id),
                    "an input must name at least one stage id".into(),
                ));
            }
            if let Some(dup) = ids
                .iter()
                .enumerate()
                .find(|(i, id)| ids[..*i].contains(id))
            {
                return Err(input_err(
                    format!("stage `{}`, field `inputs.{slot}`", s.id),
                    format!(
                        "stage `{}` is listed twice; each stage may appear once per input (it would be read twice)",
                        dup.1
                    ),
                ));
            }
            for id in ids {
                if !by_id.contains_key(id) {
                    return Err(input_err(
                        format!("stage `{}`, field `inputs.{slot}`", s.id),
                        format!(
                            "input refers to stage `{id}`, which is not defined in this workflow (dangling input); defined ids: {}",
                            workflow.stages.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
    }

    // Stage graph: cycles, then a topological order.
    let mut graph: DiGraph<usize, ()> = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..workflow.stages.len())
        .map(|i| graph.add_node(i))
        .collect();
    for (i, s) in workflow.stages.iter().enumerate() {
        for r in s.inputs.values() {
            for id in r.ids() {
                graph.add_edge(nodes[by_id[id]], nodes[i], ());
            }
        }
    }
    let order = match stable_toposort(&graph) {
        Some(order) => order,
        None => {
            let cycle = tarjan_scc(&graph)
                .into_iter()
                .find(|scc| scc.len() > 1 || graph.contains_edge(scc[0], scc[0]))
                .unwrap_or_default();
            let mut names: Vec<&str> = cycle
                .iter()
                .rev()
                .map(|n| workflow.stages[graph[*n]].id.as_str())
                .collect();
            if let Some(first) = names.first().copied() {
                names.push(first);
            }
            return Err(input_err(
                "field `stages`".into(),
                format!(
                    "the inputs form a cycle: {}; a workflow must be acyclic",
                    names.join(" -> ")
                ),
            ));
        }
    };

    let history = match store {
        Some(s) => History::load(s, &workflow.name)?,
        None => History::default(),
    };

    // Instances, in topological order of their stages. An instance's
    // coordinates are its own sweep point plus those it inherits from its
    // one-arity inputs: such an input *maps* over a swept upstream stage,
    // and several inputs are joined on the coordinates they share (the
    // dataset for seed 6 meets the pretrained weights for seed 6). A
    // many-arity input gathers every upstream instance that agrees with the
    // instance's coordinates.
    let mut instances: Vec<Instance> = Vec::new();
    let mut looked_up: HashMap<String, Lookup> = HashMap::new();
    let mut stage_instances: HashMap<&str, Vec<usize>> = HashMap::new();
    for node in order {
        let spec = &workflow.stages[graph[node]];
        let stage = registry.get(&spec.kind).expect("kind checked above");
        let points = expand_sweep(spec, file)?;
        let mut partials: Vec<Partial> = match points {
            None => vec![Partial::default()],
            Some(ps) => ps
                .into_iter()
                .map(|p| Partial {
                    own: Some(p.clone()),
                    coords: p,
                    inputs: BTreeMap::new(),
                })
                .collect(),
        };
        let upstream_of = |slot_name: &str| -> Vec<usize> {
            spec.inputs[slot_name]
                .ids()
                .iter()
                .flat_map(|id| stage_instances[id].iter().copied())
                .collect()
        };
        let bound = |s: &&crate::stage::InputSlot| spec.inputs.contains_key(s.name);
        // The upstream instances whose coordinates agree with a partial
        // instance's; none is an error (a sweep value with nothing to join).
        let matching = |ups: &[usize],
                        instances: &[Instance],
                        p: &Partial,
                        slot: &str|
         -> Result<Vec<usize>, EngineError> {
            let m: Vec<usize> = ups
                .iter()
                .copied()
                .filter(|&u| coords_agree(&instances[u].coords, &p.coords))
                .collect();
            if m.is_empty() {
                return Err(input_err(
                    format!("stage `{}`, field `inputs.{slot}`", spec.id),
                    format!(
                        "no upstream instance matches the coordinates [{}] (inputs are joined on the sweep parameters they share)",
                        point_label(&p.coords)
                    ),
                ));
            }
            Ok(m)
        };
        for slot in stage
            .slots()
            .iter()
            .filter(|s| s.arity == Arity::One)
            .filter(bound)
        {
            let ups = upstream_of(slot.name);
            let mut next = Vec::new();
            for p in &partials {
                let matches = matching(&ups, &instances, p, slot.name)?;
                let before = next.len();
                for u in matches {
                    let mut q = p.clone();
                    for (k, v) in &instances[u].coords {
                        q.coords.insert(k.clone(), v.clone());
                    }
                    q.inputs.insert(slot.name.to_string(), vec![u]);
                    next.push(q);
                }
                let added = &next[before..];
                for (i, a) in added.iter().enumerate() {
                    if added[..i].iter().any(|b| b.coords == a.coords) {
                        return Err(input_err(
                            format!("stage `{}`, field `inputs.{}`", spec.id, slot.name),
                            format!(
                                "input `{}` takes one upstream instance per coordinate, but several match [{}]; name one stage (a one-arity input maps over a sweep, it does not combine stages)",
                                slot.name,
                                point_label(&a.coords)
                            ),
                        ));
                    }
                }
            }
            partials = next;
        }
        let many_slots: Vec<&str> = stage
            .slots()
            .iter()
            .filter(|s| s.arity == Arity::Many)
            .filter(bound)
            .map(|s| s.name)
            .collect();
        if let Some(gather) = &spec.gather {
            if many_slots.is_empty() {
                return Err(input_err(
                    format!("stage `{}`, field `gather`", spec.id),
                    format!(
                        "`gather` needs a many-input (one that aggregates a sweep); kind `{}` has none bound",
                        spec.kind
                    ),
                ));
            }
            if gather.is_empty() || gather.iter().any(String::is_empty) {
                return Err(input_err(
                    format!("stage `{}`, field `gather`", spec.id),
                    "`gather` lists the coordinates to aggregate over, e.g. [\"seed\", \"alpha\"]; it must be non-empty".into(),
                ));
            }
        }
        for slot in &many_slots {
            let ups = upstream_of(slot);
            let mut next = Vec::new();
            for mut p in partials {
                let matches = matching(&ups, &instances, &p, slot)?;
                let Some(gather) = &spec.gather else {
                    p.inputs.insert(slot.to_string(), matches);
                    next.push(p);
                    continue;
                };
                // One group per distinct value of the upstream coordinates
                // that are not gathered (first-appearance order, so
                // instances follow the upstream's sweep order).
                let mut groups: Vec<(SweepPoint, Vec<usize>)> = Vec::new();
                for u in matches {
                    let rest: SweepPoint = instances[u]
                        .coords
                        .iter()
                        .filter(|(k, _)| !gather.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    match groups.iter_mut().find(|(g, _)| *g == rest) {
                        Some((_, v)) => v.push(u),
                        None => groups.push((rest, vec![u])),
                    }
                }
                for (rest, members) in groups {
                    let mut q = p.clone();
                    q.coords.extend(rest);
                    q.inputs.insert(slot.to_string(), members);
                    next.push(q);
                }
            }
            partials = next;
        }
        if let Some(gather) = &spec.gather {
            let seen: BTreeSet<&String> = partials
                .iter()
                .flat_map(|p| &p.inputs)
                .flat_map(|(_, us)| us)
                .flat_map(|&u| instances[u].coords.keys())
                .collect();
            if let Some(missing) = gather.iter().find(|g| !seen.contains(g)) {
                return Err(input_err(
                    format!("stage `{}`, field `gather`", spec.id),
                    format!(
                        "no input has a sweep coordinate `{missing}`; coordinates available: {}",
                        seen.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }

        let records: &[InstanceRecord] = history
            .stages
            .get(&spec.id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut mine = Vec::with_capacity(partials.len());
        for (index, p) in partials.into_iter().enumerate() {
            let mut raw = spec.params.clone();
            if let Some(own) = &p.own {
                for (k, v) in own {
                    raw.insert(k.clone(), v.clone());
                }
            }
            let label = if p.coords.is_empty() {
                spec.id.clone()
            } else {
                format!("{}[{}]", spec.id, point_label(&p.coords))
            };
            let sweep_index = (!p.coords.is_empty()).then_some(index);
            let input_keys: BTreeMap<String, Vec<String>> = p
                .inputs
                .iter()
                .map(|(slot, idx)| {
                    (
                        slot.clone(),
                        idx.iter().map(|&i| instances[i].key.clone()).collect(),
                    )
                })
                .collect();
            let params = stage.resolve(&Value::Object(raw)).map_err(|e| {
                let field = if e.field.starts_with("params") {
                    e.field.clone()
                } else {
                    format!("params.{}", e.field)
                };
                input_err(format!("stage `{label}`, field `{field}`"), e.message)
            })?;
            let planned = PlannedInputs {
                slots: p
                    .inputs
                    .iter()
                    .map(|(slot, ups)| {
                        let ups = ups
                            .iter()
                            .map(|&u| PlannedInput {
                                instance: instances[u].label.clone(),
                                params: instances[u].params.clone(),
                                coords: instances[u].coords.clone(),
                            })
                            .collect();
                        (slot.clone(), ups)
                    })
                    .collect(),
            };
            stage.check_inputs(&params, &planned).map_err(|e| {
                let field = if e.field.starts_with("params") || e.field.starts_with("inputs") {
                    e.field.clone()
                } else {
                    format!("params.{}", e.field)
                };
                input_err(format!("stage `{label}`, field `{field}`"), e.message)
            })?;
            let key = compute_key(stage.kind(), stage.version(), &params, &input_keys);
            let status = match store {
                None => Status::WillRun { why: Reason::New },
                // Every cache hit is re-hashed: a flipped bit on disk must
                // recompute, never be served (blake3 keeps this cheap).
                // (Once per key: the same computation reached from two
                // panels is hashed once.)
                Some(store) => match match looked_up.get(&key) {
                    Some(l) => l.clone(),
                    None => {
                        let l = store.lookup_verified(&key)?;
                        looked_up.insert(key.clone(), l.clone());
                        l
                    }
                } {
                    Lookup::Present(e) => Status::Cached {
                        artifact: e.artifact,
                    },
                    Lookup::ArtifactMissing(_) => Status::WillRun {
                        why: Reason::ArtifactMissing,
                    },
                    Lookup::Corrupt(e) => Status::WillRun {
                        why: Reason::ArtifactCorrupt {
                            artifact: e.artifact,
                        },
                    },
                    Lookup::Absent => Status::WillRun {
                        why: explain(
                            records,
                            &label,
                            sweep_index,
                            &key,
                            stage.version(),
                            &params,
                            &input_keys,
                        ),
                    },
                },
            };
            mine.push(instances.len());
            instances.push(Instance {
                label,
                stage: spec.id.clone(),
                kind: spec.kind.clone(),
                version: stage.version(),
                sweep_index,
                sweep_point: p.own,
                coords: p.coords,
                params,
                inputs: p.inputs,
                key,
                status,
                resources: stage.resources(),
                resource_override: spec.resources,
            });
        }
        stage_instances.insert(spec.id.as_str(), mine);
    }
    Ok(Plan {
        workflow: workflow.clone(),
        instances,
    })
}

/// An instance being assembled: its own sweep point, its coordinates so
/// far, and the inputs bound so far.
#[derive(Debug, Clone, Default)]
struct Partial {
    own: Option<SweepPoint>,
    coords: SweepPoint,
    inputs: BTreeMap<String, Vec<usize>>,
}

/// True when two coordinate sets agree on every key they share (numbers
/// compared as numbers, so `6` matches `6.0`).
fn coords_agree(up: &SweepPoint, down: &SweepPoint) -> bool {
    up.iter().all(|(k, v)| match down.get(k) {
        None => true,
        Some(w) => match (v.as_f64(), w.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => v == w,
        },
    })
}

/// Kahn's algorithm that, among ready stages, always takes the one written
/// first, so plans and reports follow the order of the workflow file.
/// `None` if the graph has a cycle.
fn stable_toposort(graph: &DiGraph<usize, ()>) -> Option<Vec<NodeIndex>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = graph
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(|n| Reverse(n.index()))
        .collect();
    let mut order = Vec::with_capacity(graph.node_count());
    while let Some(Reverse(i)) = ready.pop() {
        let n = NodeIndex::new(i);
        order.push(n);
        for m in graph.neighbors_directed(n, petgraph::Direction::Outgoing) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.push(Reverse(m.index()));
            }
        }
    }
    (order.len() == graph.node_count()).then_some(order)
}

fn explain(
    records: &[InstanceRecord],
    label: &str,
    sweep_index: Option<usize>,
    key: &str,
    version: u32,
    params: &Value,
    inputs: &BTreeMap<String, Vec<String>>,
) -> Reason {
    let prev = records
        .iter()
        .find(|r| r.label == label)
        .or_else(|| records.iter().find(|r| r.sweep_index == sweep_index));
    let Some(prev) = prev else {
        return Reason::New;
    };
    if prev.key == key {
        // Same key as last time but no index entry: the store lost it.
        return Reason::ArtifactMissing;
    }
    if prev.version != version {
        return Reason::VersionChanged {
            from: prev.version,
            to: version,
        };
    }
    if &prev.params != params {
        return Reason::ParamsChanged(param_diff(&prev.params, params));
    }
    if &prev.inputs != inputs {
        let slots = inputs
            .iter()
            .filter(|(slot, keys)| prev.inputs.get(*slot) != Some(*keys))
            .map(|(slot, _)| slot.clone())
            .collect();
        return Reason::InputChanged(slots);
    }
    Reason::New
}

/// `omega: 0.5 -> 0.7, solver.tol: 1e-10 -> 1e-8` (at most a few entries).
fn param_diff(old: &Value, new: &Value) -> String {
    fn walk(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
        match (old, new) {
            (Value::Object(a), Value::Object(b)) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    match (a.get(k), b.get(k)) {
                        (Some(x), Some(y)) => walk(&p, x, y, out),
                        (x, y) => out.push(format!(
                            "{p}: {} -> {}",
                            x.map(short).unwrap_or_else(|| "absent".into()),
                            y.map(short).unwrap_or_else(|| "absent".into())
                        )),
                    }
                }
            }
            (x, y) if x != y => out.push(format!("{prefix}: {} -> {}", short(x), short(y))),
            _ => {}
        }
    }
    fn short(v: &Value) -> String {
        let s = v.to_string();
        if s.chars().count() > 40 {
            // By characters: a byte cut could split a multi-byte one.
            format!("{}…", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    }
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    let more = out.len().saturating_sub(4);
    out.truncate(4);
    let mut s = out.join(", ");
    if more > 0 {
        s.push_str(&format!(", and {more} more"));
    }
    s
}

/// The history records a finished run leaves behind for its instances.
pub(crate) fn records_of(plan: &Plan) -> History {
    let mut h = History::default();
    for inst in &plan.instances {
        let inputs = inst
            .inputs
            .iter()
            .map(|(slot, idx)| {
                (
                    slot.clone(),
                    idx.iter().map(|&i| plan.instances[i].key.clone()).collect(),
                )
            })
            .collect();
        h.stages
            .entry(inst.stage.clone())
            .or_default()
            .push(InstanceRecord {
                label: inst.label.clone(),
                sweep_index: inst.sweep_index,
                key: inst.key.clone(),
                version: inst.version,
                params: inst.params.clone(),
                inputs,
            });
    }
    h
}
