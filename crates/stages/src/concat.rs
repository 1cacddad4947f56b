//! `concat`: stacks the tables of many upstream instances (typically every
//! point of a sweep) into one long table, adding a column for each parameter
//! that differs between them and a `source` column with the instance label.
//! This is how a sweep becomes one tidy table for plotting or export.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use ptft_engine::{Arity, Context, InputSlot, Inputs, ParamError, Stage, StageError, Validate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub struct Concat;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConcatParams {}

impl Validate for ConcatParams {
    fn validate(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

impl Stage for Concat {
    const KIND: &'static str = "concat";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "stack many tables (a sweep) into one, with the varying params as columns";
    type Params = ConcatParams;

    fn inputs() -> &'static [InputSlot] {
        const SLOTS: &[InputSlot] = &[InputSlot::new(
            "parts",
            Arity::Many,
            "the tables to stack; all must have the same columns",
        )];
        SLOTS
    }

    fn compute(
        _: &ConcatParams,
        inputs: &Inputs,
        _: &mut Context,
    ) -> Result<RecordBatch, StageError> {
        let parts = inputs.many("parts");
        let first = parts
            .first()
            .ok_or_else(|| StageError::new("concat needs at least one input table"))?;
        let schema = first.table.schema();
        for p in parts {
            if p.table.schema().fields() != schema.fields() {
                return Err(StageError::new(format!(
                    "input `{}` has different columns from `{}`; concat only stacks tables of the same shape",
                    p.instance, first.instance
                )));
            }
        }
        // Coordinates (sweep values, own or inherited) first, then any other
        // top-level parameter whose value differs between parts.
        let mut varying: Vec<String> = Vec::new();
        for p in parts {
            for k in p.coords.keys() {
                if !varying.contains(k) {
                    varying.push(k.clone());
                }
            }
        }
        let keys: BTreeSet<&String> = parts
            .iter()
            .filter_map(|p| p.params.as_object())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            let v0 = first.params.get(k.as_str());
            if !varying.contains(k) && parts.iter().any(|p| p.params.get(k.as_str()) != v0) {
                varying.push(k.clone());
            }
        }
        let value_of = |p: &ptft_engine::InputTable, k: &str| -> Value {
            p.coords
                .get(k)
                .or_else(|| p.params.get(k))
                .cloned()
                .unwrap_or(Value::Null)
        };

        let mut fields: Vec<Field> = vec![Field::new("source", DataType::Utf8, false)];
        let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
            parts
                .iter()
                .flat_map(|p| std::iter::repeat_n(p.instance.clone(), p.table.num_rows())),
        ))];
        for k in &varying {
            if schema.field_with_name(k).is_ok() {
                continue; // the data already has this column
            }
            let vals: Vec<Value> = parts.iter().map(|p| value_of(p, k)).collect();
            if vals.iter().all(|v| v.is_number()) {
                fields.push(Field::new(k.as_str(), DataType::Float64, false));
                columns.push(Arc::new(Float64Array::from_iter_values(
                    parts.iter().zip(&vals).flat_map(|(p, v)| {
                        std::iter::repeat_n(v.as_f64().expect("number"), p.table.num_rows())
                    }),
                )));
            } else {
                fields.push(Field::new(k.as_str(), DataType::Utf8, false));
                columns.push(Arc::new(StringArray::from_iter_values(
                    parts
                        .iter()
                        .zip(&vals)
                        .flat_map(|(p, v)| std::iter::repeat_n(v.to_string(), p.table.num_rows())),
                )));
            }
        }
        let data = arrow::compute::concat_batches(&schema, parts.iter().map(|p| &p.table))
            .map_err(|e| StageError::new(format!("cannot stack tables: {e}")))?;
        fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
        columns.extend(data.columns().iter().cloned());
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| StageError::new(format!("cannot assemble the output table: {e}")))
    }
}
