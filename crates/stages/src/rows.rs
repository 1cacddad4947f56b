//! How the rendering stages (`figure`, `heatmap_figure`) read the rows they
//! draw: a row's *attribute* is its table's column, else its instance's
//! sweep coordinate, else its resolved param, else (for `stage`) the id of
//! the stage that produced it. One lookup, so a panel's `where` means the
//! same thing in every kind that takes one.

use arrow::array::{Array, BooleanArray, Float64Array, StringArray, UInt32Array, UInt64Array};
use ptft_engine::InputTable;
use serde_json::Value;

/// A row's attribute (see the module doc), or `None` when nothing has
/// that name.
pub fn attribute(t: &InputTable, row: usize, name: &str) -> Option<Value> {
    if let Some(col) = t.table.column_by_name(name) {
        let any = col.as_any();
        if let Some(a) = any.downcast_ref::<Float64Array>() {
            return Some(Value::from(a.value(row)));
        }
        if let Some(a) = any.downcast_ref::<StringArray>() {
            return Some(Value::from(a.value(row)));
        }
        if let Some(a) = any.downcast_ref::<UInt64Array>() {
            return Some(Value::from(a.value(row)));
        }
        if let Some(a) = any.downcast_ref::<UInt32Array>() {
            return Some(Value::from(a.value(row)));
        }
        if let Some(a) = any.downcast_ref::<BooleanArray>() {
            return Some(Value::from(a.value(row)));
        }
        return None;
    }
    if let Some(v) = t.coords.get(name).or_else(|| t.params.get(name)) {
        return Some(v.clone());
    }
    // The producing stage's id: lets a panel pick one of several sweeps
    // that share a configuration (e.g. the baseline in every sweep).
    (name == "stage").then(|| Value::from(t.stage.clone()))
}

/// Equal up to 1e-12 relative: grids built by `linspace` and values typed
/// in a workflow differ in the last bits.
pub fn close(x: f64, y: f64) -> bool {
    x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
}

/// Two attribute values are the same: numbers by [`close`], others exactly.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => close(x, y),
        _ => a == b,
    }
}

/// A `where` entry matches: `wanted` is a value, or a list of accepted values.
pub fn matches(a: &Value, wanted: &Value) -> bool {
    match wanted {
        Value::Array(any) => any.iter().any(|w| same(a, w)),
        w => same(a, w),
    }
}
