//! A small column-at-a-time builder for output tables, so stage code reads
//! as "name, values" rather than Arrow boilerplate.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use ptft_engine::StageError;

#[derive(Default)]
pub struct TableBuilder {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl TableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, name: &str, array: ArrayRef) -> Self {
        self.fields
            .push(Field::new(name, array.data_type().clone(), false));
        self.columns.push(array);
        self
    }

    pub fn f64(self, name: &str, values: impl IntoIterator<Item = f64>) -> Self {
        self.push(name, Arc::new(Float64Array::from_iter_values(values)))
    }

    pub fn u32(self, name: &str, values: impl IntoIterator<Item = u32>) -> Self {
        self.push(name, Arc::new(UInt32Array::from_iter_values(values)))
    }

    pub fn u64(self, name: &str, values: impl IntoIterator<Item = u64>) -> Self {
        self.push(name, Arc::new(UInt64Array::from_iter_values(values)))
    }

    /// A Float64 column that may hold nulls ("not applicable"), which is
    /// how a table says "no value" without a NaN.
    pub fn f64_opt(mut self, name: &str, values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let a: Float64Array = values.into_iter().collect();
        self.fields.push(Field::new(name, DataType::Float64, true));
        self.columns.push(Arc::new(a));
        self
    }

    pub fn bool(self, name: &str, values: impl IntoIterator<Item = bool>) -> Self {
        let v: Vec<bool> = values.into_iter().collect();
        self.push(name, Arc::new(BooleanArray::from(v)))
    }

    pub fn string(self, name: &str, values: impl IntoIterator<Item = String>) -> Self {
        let v: Vec<String> = values.into_iter().collect();
        self.push(name, Arc::new(StringArray::from(v)))
    }

    pub fn build(self) -> Result<RecordBatch, StageError> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.columns)
            .map_err(|e| StageError::new(format!("cannot assemble the output table: {e}")))
    }
}

/// Reads a Float64 column of an input table, naming the table and column on
/// failure (a wiring mistake in a workflow, e.g. an `estimate` input that is
/// not a weights table).
pub fn f64_column(t: &ptft_engine::InputTable, name: &str) -> Result<Vec<f64>, StageError> {
    let col = t.table.column_by_name(name).ok_or_else(|| {
        StageError::new(format!(
            "input `{}` (kind of stage `{}`) has no column `{name}`; is the right stage wired to this input?",
            t.instance, t.stage
        ))
    })?;
    let a = col.as_any().downcast_ref::<Float64Array>().ok_or_else(|| {
        StageError::new(format!(
            "column `{name}` of input `{}` is not Float64",
            t.instance
        ))
    })?;
    Ok(a.values().to_vec())
}

/// Reads a Utf8 column of an input table.
pub fn str_column(t: &ptft_engine::InputTable, name: &str) -> Result<Vec<String>, StageError> {
    let col = t
        .table
        .column_by_name(name)
        .ok_or_else(|| StageError::new(format!("input `{}` has no column `{name}`", t.instance)))?;
    let a = col.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
        StageError::new(format!(
            "column `{name}` of input `{}` is not text",
            t.instance
        ))
    })?;
    Ok((0..a.len()).map(|i| a.value(i).to_string()).collect())
}

/// Reads a UInt64 column of an input table.
pub fn u64_column(t: &ptft_engine::InputTable, name: &str) -> Result<Vec<u64>, StageError> {
    let col = t
        .table
        .column_by_name(name)
        .ok_or_else(|| StageError::new(format!("input `{}` has no column `{name}`", t.instance)))?;
    let a = col.as_any().downcast_ref::<UInt64Array>().ok_or_else(|| {
        StageError::new(format!(
            "column `{name}` of input `{}` is not UInt64",
            t.instance
        ))
    })?;
    Ok(a.values().to_vec())
}
