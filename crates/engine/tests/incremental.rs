//! Engine behaviour with toy stages: caching, exact invalidation on param,
//! version and input changes, failure isolation, and validation before any
//! write. The science stages are exercised end to end in `tests/` at the
//! workspace root; here the stages are trivial so every expectation is exact.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use ptft_engine::*;
use ptft_store::Store;
use serde::{Deserialize, Serialize};

fn column(values: Vec<f64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Float64Array::from(values))]).unwrap()
}

fn values(b: &RecordBatch) -> Vec<f64> {
    b.column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct SourceParams {
    value: f64,
    n: usize,
}
impl Validate for SourceParams {
    fn validate(&self) -> Result<(), ParamError> {
        check_finite("value", self.value)?;
        if self.n == 0 || self.n > 1000 {
            return Err(ParamError::range("n", self.n, "[1, 1000]"));
        }
        Ok(())
    }
}
struct Source;
impl Stage for Source {
    const KIND: &'static str = "source";
    const VERSION: u32 = 1;
    type Params = SourceParams;
    fn compute(p: &SourceParams, _: &Inputs, ctx: &mut Context) -> Result<RecordBatch, StageError> {
        ctx.record_seed("dummy", 7);
        if p.value < 0.0 {
            return Err(StageError::new(
                "negative values are refused by this toy stage",
            ));
        }
        if p.value == 13.0 {
            return Ok(column(vec![f64::NAN]));
        }
        if p.value == 666.0 {
            panic!("toy stage panics on 666");
        }
        Ok(column((0..p.n).map(|i| p.value * i as f64).collect()))
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct NoParams {}
impl Validate for NoParams {
    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

/// Doubles its input; generic over the version so a test can "bump" it.
struct Double<const V: u32>;
impl<const V: u32> Stage for Double<V> {
    const KIND: &'static str = "double";
    const VERSION: u32 = V;
    type Params = NoParams;
    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new("x", Arity::One, "table to double")];
        SLOTS
    }
    fn compute(_: &NoParams, inputs: &Inputs, _: &mut Context) -> Result<RecordBatch, StageError> {
        let x = values(&inputs.one("x")?.table);
        Ok(column(x.iter().map(|v| 2.0 * v).collect()))
    }
}

/// Sums every row of every input (consumes a whole sweep).
struct Sum;
impl Stage for Sum {
    const KIND: &'static str = "sum";
    const VERSION: u32 = 1;
    type Params = NoParams;
    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new("parts", Arity::Many, "tables to sum")];
        SLOTS
    }
    fn compute(_: &NoParams, inputs: &Inputs, _: &mut Context) -> Result<RecordBatch, StageError> {
        let total: f64 = inputs
            .many("parts")
            .iter()
            .flat_map(|t| values(&t.table))
            .sum();
        Ok(column(vec![total]))
    }
}

fn registry(double_version: u32) -> Registry {
    let mut r = Registry::new();
    r.register::<Source>().register::<Sum>();
    match double_version {
        1 => r.register::<Double<1>>(),
        _ => r.register::<Double<2>>(),
    };
    r
}

fn opts() -> RunOptions {
    RunOptions {
        jobs: 2,
        progress: false,
        tool: ToolInfo {
            version: "test".into(),
            git_commit: None,
            threads: 1,
        },
        cancel: None,
    }
}

const WF: &str = r#"{
  "name": "toy",
  "stages": [
    {"id": "src", "kind": "source", "params": {"n": 3}, "sweep": {"value": [1, 2, 3]}},
    {"id": "one", "kind": "source", "params": {"n": 2, "value": 10}},
    {"id": "dbl", "kind": "double", "inputs": {"x": "one"}},
    {"id": "total", "kind": "sum", "inputs": {"parts": ["src", "dbl"]}}
  ]
}"#;

fn plan_text(text: &str, reg: &Registry, store: &Store) -> Plan {
    let wf = Workflow::parse(text, Path::new("toy.json")).unwrap();
    plan(&wf, reg, Some(store)).unwrap()
}

fn reasons(p: &Plan) -> Vec<(String, String)> {
    p.instances
        .iter()
        .filter_map(|i| match &i.status {
            Status::WillRun { why } => Some((i.label.clone(), why.to_string())),
            Status::Cached { .. } => None,
        })
        .collect()
}

#[test]
fn second_run_computes_nothing_and_results_are_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let p = plan_text(WF, &reg, &store);
    assert_eq!(p.instances.len(), 6);
    assert!(reasons(&p).iter().all(|(_, r)| r == "new"));
    let r1 = run(&p, &reg, &store, &opts()).unwrap();
    assert_eq!((r1.computed, r1.cached, r1.failed), (6, 0, 0));

    // 0+1+2 times (1+2+3) from the sweep, plus 2*(0+10) from dbl.
    let total = r1.instances.iter().find(|i| i.instance == "total").unwrap();
    let a = store.read(total.artifact.as_ref().unwrap()).unwrap();
    assert_eq!(values(&a.batch), vec![3.0 * 6.0 + 20.0]);
    assert_eq!(a.provenance["inputs"].as_array().unwrap().len(), 4);
    assert_eq!(a.provenance["stage"]["kind"], "sum");

    let p2 = plan_text(WF, &reg, &store);
    assert_eq!(p2.to_run(), 0);
    let r2 = run(&p2, &reg, &store, &opts()).unwrap();
    assert_eq!((r2.computed, r2.cached), (0, 6));
}

#[test]
fn changing_one_sweep_value_reruns_exactly_that_point_and_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    run(&plan_text(WF, &reg, &store), &reg, &store, &opts()).unwrap();

    let changed = WF.replace("[1, 2, 3]", "[1, 5, 3]");
    let p = plan_text(&changed, &reg, &store);
    assert_eq!(
        reasons(&p),
        vec![
            (
                "src[value=5]".to_string(),
                "params changed (value: 2.0 -> 5.0)".to_string()
            ),
            ("total".to_string(), "input changed (parts)".to_string()),
        ]
    );
    let r = run(&p, &reg, &store, &opts()).unwrap();
    assert_eq!((r.computed, r.cached), (2, 4));
}

#[test]
fn bumping_a_version_invalidates_that_stage_and_its_dependents_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg1 = registry(1);
    run(&plan_text(WF, &reg1, &store), &reg1, &store, &opts()).unwrap();

    let reg2 = registry(2);
    let p = plan_text(WF, &reg2, &store);
    assert_eq!(
        reasons(&p),
        vec![
            (
                "dbl".to_string(),
                "stage version changed (1 -> 2)".to_string()
            ),
            ("total".to_string(), "input changed (parts)".to_string()),
        ]
    );
}

#[test]
fn missing_artifact_is_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let r = run(&plan_text(WF, &reg, &store), &reg, &store, &opts()).unwrap();
    let one = r.instances.iter().find(|i| i.instance == "one").unwrap();
    std::fs::remove_file(store.artifact_path(one.artifact.as_ref().unwrap())).unwrap();
    let p = plan_text(WF, &reg, &store);
    assert_eq!(
        reasons(&p),
        vec![("one".to_string(), "artifact missing".to_string())]
    );
}

#[test]
fn a_failure_skips_dependents_but_not_independent_work_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let wf = WF.replace("\"value\": 10", "\"value\": -1");
    let r = run(&plan_text(&wf, &reg, &store), &reg, &store, &opts()).unwrap();
    assert_eq!((r.computed, r.failed, r.skipped), (3, 1, 2));
    assert!(!r.ok());
    assert_eq!(store.entries().unwrap().len(), 3);

    // A NaN output is a failure too, never an artifact.
    let wf = WF.replace("\"value\": 10", "\"value\": 13");
    let r = run(&plan_text(&wf, &reg, &store), &reg, &store, &opts()).unwrap();
    let bad = r.instances.iter().find(|i| i.instance == "one").unwrap();
    match &bad.outcome {
        Outcome::Failed { error } => assert!(
            error.contains("column `x`") && error.contains("row 0"),
            "{error}"
        ),
        other => panic!("expected failure, got {other:?}"),
    }
    assert_eq!(store.entries().unwrap().len(), 3);
}

fn input_error(text: &str) -> String {
    let reg = registry(1);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let err = Workflow::parse(text, Path::new("bad.json"))
        .and_then(|wf| plan(&wf, &reg, Some(&store)).map(|_| ()))
        .expect_err("bad input must be rejected");
    assert!(err.is_bad_input(), "{err}");
    assert_eq!(store.entries().unwrap().len(), 0);
    let msg = err.to_string();
    assert!(
        msg.starts_with("bad.json"),
        "error must name the file: {msg}"
    );
    msg
}

#[test]
fn structural_errors_name_file_location_and_fix() {
    let m = input_error(r#"{"stages": [ {"id": "a", "kind": "source",} ]}"#);
    assert!(
        m.contains("line 1, column") && m.contains("malformed JSON"),
        "{m}"
    );
    let m = input_error(r#"{"stages": [{"id": "a", "kind": "source", "parms": {}}]}"#);
    assert!(m.contains("unknown field `parms`"), "{m}");
    let m = input_error(r#"{"stages": [{"id": "a", "kind": "nope"}]}"#);
    assert!(
        m.contains("unknown stage kind `nope`") && m.contains("source"),
        "{m}"
    );
    let m = input_error(
        r#"{"stages": [{"id": "a", "kind": "source", "params": {"n": 1}}, {"id": "a", "kind": "source", "params": {"n": 1}}]}"#,
    );
    assert!(m.contains("duplicate stage id `a`"), "{m}");
    let m = input_error(r#"{"stages": [{"id": "d", "kind": "double", "inputs": {"x": "ghost"}}]}"#);
    assert!(
        m.contains("dangling") && m.contains("`ghost`") && m.contains("inputs.x"),
        "{m}"
    );
    let m = input_error(
        r#"{"stages": [{"id": "a", "kind": "double", "inputs": {"x": "b"}}, {"id": "b", "kind": "double", "inputs": {"x": "a"}}]}"#,
    );
    assert!(
        m.contains("cycle") && m.contains("a -> b -> a") || m.contains("b -> a -> b"),
        "{m}"
    );
    let m = input_error(
        r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 1}}, {"id": "t", "kind": "source", "params": {"n": 1}}, {"id": "d", "kind": "double", "inputs": {"x": ["s", "t"]}}]}"#,
    );
    assert!(m.contains("one upstream instance per coordinate"), "{m}");
    let m = input_error(r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 0}}]}"#);
    assert!(
        m.contains("field `params.n`") && m.contains("[1, 1000]"),
        "{m}"
    );
    let m = input_error(
        r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 1, "valu": 2}}]}"#,
    );
    assert!(m.contains("unknown field `valu`"), "{m}");
    let m = input_error(
        r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 1, "value": 1e999}}]}"#,
    );
    assert!(m.contains("line 1") && m.contains("finite"), "{m}");
    let m = input_error(
        r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 1, "value": 1}, "sweep": {"value": [1]}}]}"#,
    );
    assert!(m.contains("both in `params` and in `sweep`"), "{m}");
    let m = input_error(
        r#"{"stages": [{"id": "s", "kind": "source", "params": {"n": 1}, "sweep": {"value": []}}]}"#,
    );
    assert!(m.contains("empty"), "{m}");
}

#[test]
fn keys_are_stable_and_param_spelling_does_not_matter() {
    let reg = registry(1);
    let a = Workflow::parse(
        r#"{"stages":[{"id":"s","kind":"source","params":{"n":2,"value":1}}]}"#,
        Path::new("a.json"),
    )
    .unwrap();
    let b = Workflow::parse(
        r#"{"stages":[{"id":"s","kind":"source","params":{"value":1.0,"n":2}}]}"#,
        Path::new("b.json"),
    )
    .unwrap();
    let ka = plan(&a, &reg, None).unwrap().instances[0].key.clone();
    let kb = plan(&b, &reg, None).unwrap().instances[0].key.clone();
    assert_eq!(ka, kb);
    assert_eq!(ka.len(), 64);
}

#[test]
fn bundle_sweeps_and_duplicate_keys_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let wf = r#"{"stages": [
      {"id": "a", "kind": "source", "sweep": {"value": [1, 2], "set": [{"n": 1}, {"n": 2}]}},
      {"id": "b", "kind": "source", "params": {"n": 2, "value": 2}},
      {"id": "t", "kind": "sum", "inputs": {"parts": ["a", "b"]}}
    ]}"#;
    let p = plan_text(wf, &reg, &store);
    let labels: Vec<&str> = p.instances.iter().map(|i| i.label.as_str()).collect();
    assert!(
        labels.contains(&"a[n=1,value=1]") && labels.contains(&"a[n=2,value=2]"),
        "{labels:?}"
    );
    assert_eq!(p.instances.len(), 6);
    // b is the same computation as a[n=2,value=2]: one run, two instances.
    let r = run(&p, &reg, &store, &opts()).unwrap();
    assert_eq!((r.computed, r.cached, r.failed), (5, 1, 0));
    let total = r.instances.iter().find(|i| i.instance == "t").unwrap();
    let a = store.read(total.artifact.as_ref().unwrap()).unwrap();
    // a: n=1 -> [0]; n=2,v=1 -> [0,1]; n=1 -> [0]; n=2,v=2 -> [0,2]; b -> [0,2]
    assert_eq!(values(&a.batch), vec![5.0]);
}

/// A one-arity input maps over a swept upstream stage and inherits its
/// coordinates; a gathering input collects the matching instances.
#[test]
fn mapped_inputs_join_on_shared_coordinates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let wf = r#"{"stages": [
      {"id": "a", "kind": "source", "params": {"n": 2}, "sweep": {"value": [1, 2, 3]}},
      {"id": "d", "kind": "double", "inputs": {"x": "a"}},
      {"id": "dd", "kind": "double", "inputs": {"x": "d"}},
      {"id": "t", "kind": "sum", "inputs": {"parts": "dd"}}
    ]}"#;
    let p = plan_text(wf, &reg, &store);
    let labels: Vec<&str> = p.instances.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        labels,
        vec![
            "a[value=1]",
            "a[value=2]",
            "a[value=3]",
            "d[value=1]",
            "d[value=2]",
            "d[value=3]",
            "dd[value=1]",
            "dd[value=2]",
            "dd[value=3]",
            "t"
        ]
    );
    let dd2 = p
        .instances
        .iter()
        .find(|i| i.label == "dd[value=2]")
        .unwrap();
    let d2 = p
        .instances
        .iter()
        .position(|i| i.label == "d[value=2]")
        .unwrap();
    assert_eq!(dd2.inputs["x"], vec![d2]);
    let r = run(&p, &reg, &store, &opts()).unwrap();
    let t = r.instances.iter().find(|i| i.instance == "t").unwrap();
    // 4 * (0 + v) summed over v = 1, 2, 3.
    assert_eq!(
        values(&store.read(t.artifact.as_ref().unwrap()).unwrap().batch),
        vec![24.0]
    );
}

/// `gather` makes one aggregate per configuration: the gathered coordinate
/// is summed over, every other coordinate splits the instances.
#[test]
fn gather_aggregates_over_named_coordinates_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let wf = r#"{"stages": [
      {"id": "a", "kind": "source", "sweep": {"value": [1, 2, 3], "n": [2, 3]}},
      {"id": "t", "kind": "sum", "inputs": {"parts": "a"}, "gather": ["value"]}
    ]}"#;
    let p = plan_text(wf, &reg, &store);
    let labels: Vec<&str> = p
        .instances
        .iter()
        .filter(|i| i.stage == "t")
        .map(|i| i.label.as_str())
        .collect();
    assert_eq!(labels, vec!["t[n=2]", "t[n=3]"]);
    let r = run(&p, &reg, &store, &opts()).unwrap();
    let total = |label: &str| {
        let i = r.instances.iter().find(|i| i.instance == label).unwrap();
        values(&store.read(i.artifact.as_ref().unwrap()).unwrap().batch)
    };
    // sum over v of v * (0 + 1 + ... + n-1)
    assert_eq!(total("t[n=2]"), vec![6.0]);
    assert_eq!(total("t[n=3]"), vec![18.0]);

    for (bad, needle) in [
        (
            r#"{"stages": [{"id": "a", "kind": "source", "params": {"n": 1}, "sweep": {"value": [1, 2]}},
                {"id": "t", "kind": "sum", "inputs": {"parts": "a"}, "gather": ["seed"]}]}"#,
            "no input has a sweep coordinate `seed`",
        ),
        (
            r#"{"stages": [{"id": "a", "kind": "source", "params": {"n": 1}, "sweep": {"value": [1, 2]}},
                {"id": "t", "kind": "double", "inputs": {"x": "a"}, "gather": ["value"]}]}"#,
            "`gather` needs a many-input",
        ),
    ] {
        let msg = input_error_with(bad, &reg);
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains("field `gather`"), "{msg}");
    }
}

fn input_error_with(text: &str, reg: &Registry) -> String {
    let wf = Workflow::parse(text, Path::new("toy.json")).unwrap();
    match plan(&wf, reg, None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("expected an input error for {text}"),
    }
}

/// `vars` are substituted before planning: the key does not depend on the
/// spelling, and an undefined variable is an input error naming the field.
#[test]
fn workflow_vars_resolve_to_the_same_keys_as_literals() {
    let reg = registry(1);
    let keys = |text: &str| -> Vec<String> {
        let wf = Workflow::parse(text, Path::new("toy.json")).unwrap();
        plan(&wf, &reg, None)
            .unwrap()
            .instances
            .iter()
            .map(|i| i.key.clone())
            .collect()
    };
    let with_vars = keys(
        r#"{"vars": {"n": 3, "values": [1, 2]}, "stages": [
          {"id": "a", "kind": "source", "params": {"n": "$n"}, "sweep": {"value": "$values"}}]}"#,
    );
    let literal = keys(
        r#"{"stages": [{"id": "a", "kind": "source", "params": {"n": 3}, "sweep": {"value": [1, 2]}}]}"#,
    );
    assert_eq!(with_vars, literal);
    assert_eq!(with_vars.len(), 2);
    let err = Workflow::parse(
        r#"{"vars": {"n": 3}, "stages": [{"id": "a", "kind": "source", "params": {"n": "$m"}}]}"#,
        Path::new("toy.json"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("params.n") && err.contains("`m`") && err.contains("defined: n"),
        "{err}"
    );
}

/// A panicking stage fails its instance (naming the panic) instead of
/// killing a worker and hanging the run; other instances still finish.
#[test]
fn a_panicking_stage_fails_its_instance_and_the_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let reg = registry(1);
    let wf = r#"{"stages": [
      {"id": "a", "kind": "source", "params": {"n": 2}, "sweep": {"value": [1, 666, 2, 3]}}
    ]}"#;
    let p = plan_text(wf, &reg, &store);
    let r = run(&p, &reg, &store, &opts()).unwrap();
    assert_eq!((r.computed, r.failed), (3, 1));
    let failed = r
        .instances
        .iter()
        .find(|i| i.instance == "a[value=666]")
        .unwrap();
    match &failed.outcome {
        Outcome::Failed { error } => assert!(
            error.contains("panicked") && error.contains("666"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
}

/// A sweep grid too large to plan is refused with its size, before any of
/// it is built.
#[test]
fn a_huge_sweep_grid_is_refused_with_its_size() {
    let many: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let list = many.join(", ");
    let text = format!(
        r#"{{"stages": [{{"id": "a", "kind": "source", "sweep": {{"value": [{list}], "n": [{list}], "x": [{list}]}}}}]}}"#
    );
    let msg = input_error_with(&text, &registry(1));
    assert!(
        msg.contains("1.000e9 points") && msg.contains("1000 n x 1000 value x 1000 x"),
        "{msg}"
    );
}
