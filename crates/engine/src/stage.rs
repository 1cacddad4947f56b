//! What a stage is, as far as the engine is concerned: a kind name, a version
//! constant, a parameter type that validates itself, declared input slots,
//! and a pure function from (params, input tables) to one output table.
//!
//! Stages never see keys, hashes or the store: the engine resolves their
//! inputs to in-memory tables and publishes what they return.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use arrow::array::RecordBatch;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// A parameter that failed validation: which field, and why (with the valid
/// range, so the user can fix it without reading the source).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct ParamError {
    pub field: String,
    pub message: String,
}

impl ParamError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `field = value` is outside `range` (written the way a user reads it,
    /// e.g. "(0, 1)" or "[-c, c] = [-0.001, 0.001]").
    pub fn range(field: impl Into<String>, value: impl std::fmt::Display, range: &str) -> Self {
        let field = field.into();
        let message = format!("{field} = {value} is outside the valid range {range}");
        ParamError { field, message }
    }
}

/// Parameter structs check their own invariants, so that a bad value is
/// rejected when the workflow is planned — before anything runs or is
/// written — rather than deep inside a computation.
pub trait Validate {
    fn validate(&self) -> Result<(), ParamError>;
}

/// Helper for the common check "finite and inside an interval".
pub fn check_finite(field: &str, value: f64) -> Result<(), ParamError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ParamError::new(
            field,
            format!("{field} = {value} is not a finite number"),
        ))
    }
}

/// How many upstream instances an input slot takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly one upstream instance.
    One,
    /// One or more (typically every instance of a sweep).
    Many,
}

/// A named input a stage kind accepts.
#[derive(Debug, Clone, Copy)]
pub struct InputSlot {
    pub name: &'static str,
    pub arity: Arity,
    pub doc: &'static str,
    /// An optional slot may be left out of the workflow.
    pub optional: bool,
}

impl InputSlot {
    /// A required slot.
    pub const fn new(name: &'static str, arity: Arity, doc: &'static str) -> Self {
        InputSlot {
            name,
            arity,
            doc,
            optional: false,
        }
    }

    /// A slot the workflow may leave unbound.
    pub const fn optional(name: &'static str, arity: Arity, doc: &'static str) -> Self {
        InputSlot {
            name,
            arity,
            doc,
            optional: true,
        }
    }
}

/// One upstream artifact as a stage sees it: its table and the resolved
/// parameters of the instance that made it (so a consumer of a sweep knows
/// which grid point each table belongs to).
#[derive(Debug, Clone)]
pub struct InputTable {
    pub stage: String,
    pub instance: String,
    pub params: Value,
    /// The upstream instance's sweep coordinates (own and inherited), e.g.
    /// `{"alpha": 0.1, "seed": 6}`: what an aggregating stage groups by.
    pub coords: serde_json::Map<String, Value>,
    pub table: RecordBatch,
}

/// The inputs of one stage instance, by slot.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub(crate) slots: BTreeMap<String, Vec<InputTable>>,
}

impl Inputs {
    pub fn new(slots: BTreeMap<String, Vec<InputTable>>) -> Self {
        Inputs { slots }
    }

    /// Whether an (optional) slot was bound.
    pub fn has(&self, slot: &str) -> bool {
        self.slots.get(slot).is_some_and(|v| !v.is_empty())
    }

    /// All tables bound to `slot` (empty if the slot is unbound).
    pub fn many(&self, slot: &str) -> &[InputTable] {
        self.slots.get(slot).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The single table bound to `slot`.
    pub fn one(&self, slot: &str) -> Result<&InputTable, StageError> {
        match self.many(slot) {
            [one] => Ok(one),
            other => Err(StageError::new(format!(
                "input `{slot}` needs exactly one upstream instance, got {}",
                other.len()
            ))),
        }
    }
}

/// Side information a stage reports about its run, recorded in provenance.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub(crate) seeds: BTreeMap<String, u64>,
    pub(crate) notes: BTreeMap<String, Value>,
    pub(crate) device: Option<String>,
}

impl Context {
    /// Records an RNG seed the computation used (also visible in params, but
    /// recorded here under a name that says what it seeded).
    pub fn record_seed(&mut self, name: &str, seed: u64) {
        self.seeds.insert(name.to_string(), seed);
    }

    /// Records a diagnostic worth keeping with the artifact.
    pub fn note(&mut self, name: &str, value: impl Serialize) {
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        self.notes.insert(name.to_string(), v);
    }

    /// The device the computation ran on (default "cpu").
    pub fn set_device(&mut self, device: &str) {
        self.device = Some(device.to_string());
    }
}

/// A stage's computation failed (as opposed to its parameters being invalid).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct StageError {
    pub message: String,
}

impl StageError {
    pub fn new(message: impl Into<String>) -> Self {
        StageError {
            message: message.into(),
        }
    }
}

/// What one instance of a stage needs from a cluster scheduler (SLURM).
/// A kind states its typical needs; a workflow can override them per stage
/// (`"resources": {"cpus": 4, "mem_mb": 8000}`). Not part of the cache key:
/// resources change where and how fast, never what is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resources {
    pub cpus: u32,
    pub mem_mb: u64,
    pub time_min: u64,
    pub gpus: u32,
}

impl Resources {
    /// Seconds-scale work on one core (most stages).
    pub const SMALL: Resources = Resources {
        cpus: 1,
        mem_mb: 1000,
        time_min: 10,
        gpus: 0,
    };
}

/// Per-stage overrides of [`Resources`] written in a workflow file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceOverride {
    pub cpus: Option<u32>,
    pub mem_mb: Option<u64>,
    pub time_min: Option<u64>,
    pub gpus: Option<u32>,
}

impl ResourceOverride {
    /// `self`'s fields where set, `base`'s elsewhere.
    pub fn over(&self, base: Resources) -> Resources {
        Resources {
            cpus: self.cpus.unwrap_or(base.cpus),
            mem_mb: self.mem_mb.unwrap_or(base.mem_mb),
            time_min: self.time_min.unwrap_or(base.time_min),
            gpus: self.gpus.unwrap_or(base.gpus),
        }
    }
}

/// One kind of computation. Implement this, then register it with one line:
/// `registry.register::<MyStage>()`.
pub trait Stage: Send + Sync + 'static {
    /// The `kind` string used in workflow files.
    const KIND: &'static str;
    /// Bump whenever the stage's output for the same parameters changes:
    /// every artifact it made before is then recomputed, and so are their
    /// dependents.
    const VERSION: u32;
    /// One-line description for `ptft kinds`.
    const DOC: &'static str = "";
    /// Parameters. Use `#[serde(default, deny_unknown_fields)]` so defaults
    /// live here and typos are errors; the *resolved* value (defaults filled
    /// in) is what gets hashed and recorded.
    type Params: Serialize + DeserializeOwned + Validate + Send + Sync;

    /// Typical needs of one instance on a cluster (see [`Resources`]).
    const RESOURCES: Resources = Resources::SMALL;

    /// Input slots this stage accepts; none by default.
    fn inputs() -> &'static [InputSlot] {
        &[]
    }

    /// Checks, at planning time, that the params fit what is wired in:
    /// each bound slot's upstream instances with their resolved params and
    /// sweep coordinates (no data yet). Catches what no single stage's
    /// params can show — a dataset of 0 samples because its task's `d` is
    /// small, a mode that needs an input nobody wired — before anything
    /// upstream is computed or stored. Default: nothing to check.
    fn check_inputs(_params: &Self::Params, _inputs: &PlannedInputs) -> Result<(), ParamError> {
        Ok(())
    }

    /// The computation: typed parameters and input tables in, one table out.
    fn compute(
        params: &Self::Params,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError>;
}

/// One upstream instance as the planner knows it: no table yet.
#[derive(Debug, Clone)]
pub struct PlannedInput {
    pub instance: String,
    pub params: Value,
    pub coords: serde_json::Map<String, Value>,
}

/// The upstream instances bound to each slot, at planning time.
#[derive(Debug, Clone, Default)]
pub struct PlannedInputs {
    pub slots: BTreeMap<String, Vec<PlannedInput>>,
}

impl PlannedInputs {
    /// Whether the workflow wires this slot.
    pub fn has(&self, slot: &str) -> bool {
        self.slots.contains_key(slot)
    }

    /// The instances bound to `slot` (empty if unbound).
    pub fn get(&self, slot: &str) -> &[PlannedInput] {
        self.slots.get(slot).map_or(&[], Vec::as_slice)
    }
}

/// Object-safe view of a [`Stage`], so the registry can hold many kinds.
pub(crate) trait DynStage: Send + Sync {
    fn kind(&self) -> &'static str;
    fn version(&self) -> u32;
    fn doc(&self) -> &'static str;
    fn slots(&self) -> &'static [InputSlot];
    fn resources(&self) -> Resources;
    /// Parses and validates raw params; returns the canonical resolved form.
    fn resolve(&self, raw: &Value) -> Result<Value, ParamError>;
    fn check_inputs(&self, resolved: &Value, inputs: &PlannedInputs) -> Result<(), ParamError>;
    fn run(
        &self,
        resolved: &Value,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError>;
}

struct Erased<S: Stage>(PhantomData<fn() -> S>);

fn parse<S: Stage>(raw: &Value) -> Result<S::Params, ParamError> {
    serde_path_to_error::deserialize::<_, S::Params>(raw).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "params".to_string()
        } else {
            path
        };
        ParamError::new(field, e.into_inner().to_string())
    })
}

impl<S: Stage> DynStage for Erased<S> {
    fn kind(&self) -> &'static str {
        S::KIND
    }
    fn version(&self) -> u32 {
        S::VERSION
    }
    fn doc(&self) -> &'static str {
        S::DOC
    }
    fn slots(&self) -> &'static [InputSlot] {
        S::inputs()
    }
    fn resources(&self) -> Resources {
        S::RESOURCES
    }
    fn resolve(&self, raw: &Value) -> Result<Value, ParamError> {
        let params = parse::<S>(raw)?;
        params.validate()?;
        serde_json::to_value(&params).map_err(|e| ParamError::new("params", e.to_string()))
    }
    fn check_inputs(&self, resolved: &Value, inputs: &PlannedInputs) -> Result<(), ParamError> {
        S::check_inputs(&parse::<S>(resolved)?, inputs)
    }
    fn run(
        &self,
        resolved: &Value,
        inputs: &Inputs,
        ctx: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let params = parse::<S>(resolved).map_err(|e| StageError::new(e.to_string()))?;
        S::compute(&params, inputs, ctx)
    }
}

/// The set of stage kinds a binary knows.
#[derive(Default)]
pub struct Registry {
    kinds: BTreeMap<&'static str, Box<dyn DynStage>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a stage kind. Panics on a duplicate kind: that is a
    /// programming error in the binary, caught by any test that builds the
    /// registry.
    pub fn register<S: Stage>(&mut self) -> &mut Self {
        let prev = self
            .kinds
            .insert(S::KIND, Box::new(Erased::<S>(PhantomData)));
        assert!(prev.is_none(), "stage kind `{}` registered twice", S::KIND);
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&dyn DynStage> {
        self.kinds.get(kind).map(|b| b.as_ref())
    }

    /// Known kinds with their versions and one-line docs.
    pub fn kinds(&self) -> Vec<(&'static str, u32, &'static str)> {
        self.kinds
            .values()
            .map(|s| (s.kind(), s.version(), s.doc()))
            .collect()
    }

    pub fn kind_names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}
