//! A small column-at-a-time builder for output tables, so stage code reads
//! as "name, values" rather than Arrow boilerplate.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{Field, Schema};
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
