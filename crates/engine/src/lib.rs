//! The incremental engine behind `ptft`: it turns a JSON workflow into a DAG
//! of content-hashed stage instances, runs only those whose key is not yet in
//! the store, and records where every artifact came from.
//!
//! Data flows through three steps, one module each:
//! 1. [`workflow`] parses and shape-checks the file (line/column errors);
//! 2. [`plan`] expands sweeps into instances, resolves and validates every
//!    instance's parameters through the [`Registry`], orders them with
//!    petgraph, and computes each cache key (blake3 over kind, version,
//!    canonical params and upstream keys) — so `ptft plan` knows exactly
//!    what will run, and why, before anything runs;
//! 3. [`exec`] runs the will-run instances on a worker pool, hands each
//!    stage its input tables, and publishes its output to the
//!    [`ptft_store::Store`] with a provenance document.
//!
//! The engine knows nothing about the science: stages implement [`Stage`]
//! (typed params, a version constant, a pure compute function) and never
//! see keys, hashes or files.

pub mod error;
pub mod exec;
pub mod plan;
pub mod stage;
pub mod workflow;

pub use error::EngineError;
pub use exec::{
    hostname, run, run_instance, InstanceReport, Outcome, RunOptions, RunReport, ToolInfo,
};
pub use plan::{canonical_json, plan, Instance, Plan, Reason, Status};
pub use stage::{
    check_finite, Arity, Context, InputSlot, InputTable, Inputs, ParamError, PlannedInput,
    PlannedInputs, Registry, ResourceOverride, Resources, Stage, StageError, Validate,
};
pub use workflow::Workflow;
