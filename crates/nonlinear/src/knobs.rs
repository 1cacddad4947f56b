//! The theory's scale knobs, applied to the named parameters of a
//! `candle_nn::VarMap`.
//!
//! The theory (paper Sections 4–6) says the inductive bias of fine-tuning is
//! set by the scale of the pretrained parameters, and distinguishes three
//! knobs, plus one older heuristic:
//!
//! * [`scale_at_init`] — *relative scale*: before pretraining, multiply the
//!   early layers (in the paper's ResNet, the embedding layer and the first
//!   three residual stages) by a factor, leaving the rest at standard scale;
//! * [`scale_all`] — *absolute scale*: before pretraining, multiply every
//!   parameter;
//! * [`rescale_head`] — *readout scale*: after pretraining, multiply only the
//!   readout (head) parameters;
//! * [`rescale_all_before_ft`] — the older heuristic: after pretraining,
//!   multiply every parameter before fine-tuning.
//!
//! [`scale_all`] and [`rescale_all_before_ft`] perform the same operation;
//! they are separate functions because they are different experimental
//! interventions (before pretraining vs. after), and pipeline records name the
//! knob that was turned.
//!
//! A parameter group is selected by name prefix on dotted segments: prefix
//! `stage1` selects `stage1` and `stage1.*` but not `stage10.*`. Tensors are
//! updated in place with `Var::set`, so models and optimisers holding the same
//! `Var`s see the new values. Every knob validates everything (factor,
//! prefixes, dtypes, finiteness of the results) before writing anything, so a
//! failed call leaves the parameters untouched. Each knob returns the sorted
//! names of the tensors it changed.

use std::collections::{BTreeMap, BTreeSet};

use candle_core::{DType, Var};
use candle_nn::VarMap;

/// Errors of the scale knobs; `knob` is the function that failed.
#[derive(Debug, thiserror::Error)]
pub enum KnobError {
    #[error("{knob}: factor {factor} is invalid, expected a finite number > 0")]
    BadFactor { knob: &'static str, factor: f64 },
    #[error(
        "{knob}: no parameter prefixes given, expected at least one (e.g. \"embed\", \"stage1\")"
    )]
    NoPrefixes { knob: &'static str },
    #[error("{knob}: prefix '{prefix}' matches no parameter; existing prefixes: {existing}")]
    UnknownPrefix {
        knob: &'static str,
        prefix: String,
        existing: String,
    },
    #[error("{knob}: the VarMap has no parameters, expected a built model")]
    EmptyVarMap { knob: &'static str },
    #[error("{knob}: parameter '{name}' has dtype {dtype:?}, expected a floating-point dtype")]
    NotFloat {
        knob: &'static str,
        name: String,
        dtype: DType,
    },
    #[error("{knob}: scaling parameter '{name}' by {factor} gives non-finite values (overflow, or it already held NaN/inf)")]
    NonFiniteResult {
        knob: &'static str,
        name: String,
        factor: f64,
    },
    #[error("{knob}: the VarMap lock is poisoned (a thread panicked while holding it)")]
    Poisoned { knob: &'static str },
    #[error("{knob}: tensor operation on parameter '{name}' failed: {source}")]
    Candle {
        knob: &'static str,
        name: String,
        #[source]
        source: candle_core::Error,
    },
}

/// Whether parameter `name` belongs to the group `prefix` (dotted segments).
fn matches(name: &str, prefix: &str) -> bool {
    if prefix.ends_with('.') {
        return name.starts_with(prefix);
    }
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// A snapshot of the map: name -> Var (a `Var` clone shares its storage).
fn snapshot(varmap: &VarMap, knob: &'static str) -> Result<BTreeMap<String, Var>, KnobError> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| KnobError::Poisoned { knob })?;
    if data.is_empty() {
        return Err(KnobError::EmptyVarMap { knob });
    }
    Ok(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// The distinct first dotted segments of the parameter names, for error
/// messages.
pub fn top_level_prefixes(varmap: &VarMap) -> Vec<String> {
    let Ok(data) = varmap.data().lock() else {
        return Vec::new();
    };
    let set: BTreeSet<String> = data
        .keys()
        .map(|k| k.split('.').next().unwrap_or(k).to_string())
        .collect();
    set.into_iter().collect()
}

fn check_factor(knob: &'static str, factor: f64) -> Result<(), KnobError> {
    if !(factor.is_finite() && factor > 0.0) {
        return Err(KnobError::BadFactor { knob, factor });
    }
    Ok(())
}

/// Scales the selected parameters by `factor`, all-or-nothing.
fn scale_selected(
    knob: &'static str,
    vars: BTreeMap<String, Var>,
    selected: BTreeSet<String>,
    factor: f64,
) -> Result<Vec<String>, KnobError> {
    let candle = |name: &str| {
        let name = name.to_string();
        move |source| KnobError::Candle { knob, name, source }
    };
    // Compute every new tensor first so that an error leaves nothing changed.
    let mut updates = Vec::with_capacity(selected.len());
    for name in &selected {
        let var = &vars[name];
        let dtype = var.dtype();
        if !dtype.is_float() {
            return Err(KnobError::NotFloat {
                knob,
                name: name.clone(),
                dtype,
            });
        }
        // `affine` computes v * factor + 0 in the tensor's dtype: exact for
        // powers of two (barring overflow/underflow).
        let scaled = var.as_tensor().affine(factor, 0.0).map_err(candle(name))?;
        let max_abs = scaled
            .to_dtype(DType::F64)
            .and_then(|t| t.abs())
            .and_then(|t| t.max_all())
            .and_then(|t| t.to_scalar::<f64>())
            .map_err(candle(name))?;
        // `is_finite` also catches NaN (max over a NaN may propagate it).
        if !max_abs.is_finite() {
            return Err(KnobError::NonFiniteResult {
                knob,
                name: name.clone(),
                factor,
            });
        }
        updates.push((name, var, scaled));
    }
    for (name, var, scaled) in updates {
        var.set(&scaled).map_err(candle(name))?;
    }
    Ok(selected.into_iter().collect())
}

/// Names of all parameters under any of `prefixes`; each prefix must match.
fn select(
    knob: &'static str,
    varmap: &VarMap,
    vars: &BTreeMap<String, Var>,
    prefixes: &[&str],
) -> Result<BTreeSet<String>, KnobError> {
    if prefixes.is_empty() {
        return Err(KnobError::NoPrefixes { knob });
    }
    let mut selected = BTreeSet::new();
    for &prefix in prefixes {
        let mut any = false;
        for name in vars.keys().filter(|n| matches(n, prefix)) {
            any = true;
            selected.insert(name.clone());
        }
        // `any`, not "added something new": overlapping prefixes are fine
        // (each tensor is still scaled exactly once), unknown ones are not.
        if !any {
            return Err(KnobError::UnknownPrefix {
                knob,
                prefix: prefix.to_string(),
                existing: top_level_prefixes(varmap).join(", "),
            });
        }
    }
    Ok(selected)
}

/// Relative scale: multiplies every parameter under any of `prefixes` (e.g.
/// the embedding and the first three residual stages) by `factor`. A tensor
/// matched by several prefixes is scaled once.
pub fn scale_at_init(
    varmap: &VarMap,
    prefixes: &[&str],
    factor: f64,
) -> Result<Vec<String>, KnobError> {
    const KNOB: &str = "scale_at_init";
    check_factor(KNOB, factor)?;
    let vars = snapshot(varmap, KNOB)?;
    let selected = select(KNOB, varmap, &vars, prefixes)?;
    scale_selected(KNOB, vars, selected, factor)
}

/// Absolute scale: multiplies every parameter by `factor` (at
/// initialisation, before pretraining).
pub fn scale_all(varmap: &VarMap, factor: f64) -> Result<Vec<String>, KnobError> {
    scale_everything("scale_all", varmap, factor)
}

/// Readout scale: multiplies the parameters under `head_prefix` by `factor`
/// (after pretraining, before fine-tuning).
pub fn rescale_head(
    varmap: &VarMap,
    head_prefix: &str,
    factor: f64,
) -> Result<Vec<String>, KnobError> {
    const KNOB: &str = "rescale_head";
    check_factor(KNOB, factor)?;
    let vars = snapshot(varmap, KNOB)?;
    let selected = select(KNOB, varmap, &vars, &[head_prefix])?;
    scale_selected(KNOB, vars, selected, factor)
}

/// The older heuristic: multiplies every parameter by `factor` after
/// pretraining, before fine-tuning.
pub fn rescale_all_before_ft(varmap: &VarMap, factor: f64) -> Result<Vec<String>, KnobError> {
    scale_everything("rescale_all_before_ft", varmap, factor)
}

fn scale_everything(
    knob: &'static str,
    varmap: &VarMap,
    factor: f64,
) -> Result<Vec<String>, KnobError> {
    check_factor(knob, factor)?;
    let vars = snapshot(varmap, knob)?;
    let selected = vars.keys().cloned().collect();
    scale_selected(knob, vars, selected, factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use candle_nn::{linear, VarBuilder};
    use std::collections::HashMap;

    const LAYERS: [&str; 6] = ["embed", "stage1", "stage2", "stage3", "stage4", "head"];

    fn model(dtype: DType) -> VarMap {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, dtype, &Device::Cpu);
        linear(4, 3, vb.pp("embed")).unwrap();
        for s in ["stage1", "stage2", "stage3", "stage4"] {
            linear(3, 3, vb.pp(s)).unwrap();
        }
        linear(3, 2, vb.pp("head")).unwrap();
        vm
    }

    fn values(vm: &VarMap) -> HashMap<String, Vec<f64>> {
        let data = vm.data().lock().unwrap();
        data.iter()
            .map(|(k, v)| {
                let t = v.as_tensor().flatten_all().unwrap();
                let vals = t.to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
                (k.clone(), vals)
            })
            .collect()
    }

    /// Asserts exactly the parameters under `layers` changed, each by exactly
    /// `factor` (bit-exact: `factor` is a power of two, and the values are
    /// read back in f64, which holds f32 exactly).
    fn assert_scaled(
        before: &HashMap<String, Vec<f64>>,
        vm: &VarMap,
        layers: &[&str],
        factor: f64,
        changed: &[String],
    ) {
        let after = values(vm);
        assert_eq!(before.len(), after.len());
        let mut want: Vec<String> = before
            .keys()
            .filter(|k| layers.iter().any(|l| matches(k, l)))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(changed, want.as_slice());
        for (name, old) in before {
            let new = &after[name];
            let f = if want.contains(name) { factor } else { 1.0 };
            for (o, n) in old.iter().zip(new) {
                assert_eq!((o * f).to_bits(), n.to_bits(), "{name}");
            }
        }
    }

    #[test]
    fn model_has_weight_and_bias_per_layer() {
        let vm = model(DType::F32);
        assert_eq!(vm.all_vars().len(), 12);
        assert_eq!(top_level_prefixes(&vm), {
            let mut l: Vec<String> = LAYERS.iter().map(|s| s.to_string()).collect();
            l.sort();
            l
        });
    }

    #[test]
    fn scale_at_init_scales_exactly_the_early_layers() {
        for dtype in [DType::F32, DType::F64] {
            let vm = model(dtype);
            let before = values(&vm);
            let early = ["embed", "stage1", "stage2", "stage3"];
            let changed = scale_at_init(&vm, &early, 0.25).unwrap();
            assert_eq!(changed.len(), 8);
            assert_scaled(&before, &vm, &early, 0.25, &changed);
        }
    }

    #[test]
    fn overlapping_prefixes_scale_once() {
        let vm = model(DType::F32);
        let before = values(&vm);
        let changed = scale_at_init(&vm, &["stage2", "stage2.weight"], 2.0).unwrap();
        assert_scaled(&before, &vm, &["stage2"], 2.0, &changed);
    }

    #[test]
    fn scale_all_and_rescale_all_scale_everything() {
        let vm = model(DType::F32);
        let before = values(&vm);
        let changed = scale_all(&vm, 8.0).unwrap();
        assert_scaled(&before, &vm, &LAYERS, 8.0, &changed);

        let vm = model(DType::F64);
        let before = values(&vm);
        let changed = rescale_all_before_ft(&vm, 0.5).unwrap();
        assert_scaled(&before, &vm, &LAYERS, 0.5, &changed);
    }

    #[test]
    fn rescale_head_scales_only_the_head() {
        let vm = model(DType::F32);
        let before = values(&vm);
        let changed = rescale_head(&vm, "head", 0.125).unwrap();
        assert_eq!(
            changed,
            vec!["head.bias".to_string(), "head.weight".to_string()]
        );
        assert_scaled(&before, &vm, &["head"], 0.125, &changed);
    }

    #[test]
    fn vars_held_elsewhere_see_the_update() {
        // A model/optimiser holds Var clones; in-place `set` must reach them.
        let vm = model(DType::F32);
        let held = vm.data().lock().unwrap()["head.weight"].clone();
        let old = held
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        rescale_head(&vm, "head", 4.0).unwrap();
        let new = held
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (o, n) in old.iter().zip(&new) {
            assert_eq!((o * 4.0).to_bits(), n.to_bits());
        }
    }

    #[test]
    fn prefix_matches_whole_segments() {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        linear(2, 2, vb.pp("stage1")).unwrap();
        linear(2, 2, vb.pp("stage10")).unwrap();
        let before = values(&vm);
        let changed = scale_at_init(&vm, &["stage1"], 2.0).unwrap();
        assert_eq!(
            changed,
            vec!["stage1.bias".to_string(), "stage1.weight".to_string()]
        );
        assert_scaled(&before, &vm, &["stage1"], 2.0, &changed);
        assert!(matches("stage1.weight", "stage1."));
        assert!(!matches("stage10.weight", "stage1"));
    }

    #[test]
    fn errors_name_the_problem_and_change_nothing() {
        let vm = model(DType::F32);
        let before = values(&vm);
        let e = scale_at_init(&vm, &["embed", "stem"], 2.0).unwrap_err();
        assert!(matches!(&e, KnobError::UnknownPrefix { prefix, .. } if prefix == "stem"));
        let msg = e.to_string();
        assert!(
            msg.contains("prefix 'stem' matches no parameter; existing prefixes: embed, head, stage1, stage2, stage3, stage4"),
            "{msg}"
        );
        let e = rescale_head(&vm, "readout", 2.0).unwrap_err();
        assert!(
            e.to_string().starts_with("rescale_head: prefix 'readout'"),
            "{e}"
        );
        for f in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = scale_all(&vm, f).unwrap_err();
            assert!(matches!(e, KnobError::BadFactor { .. }), "{e}");
            assert!(rescale_head(&vm, "head", f).is_err());
            assert!(rescale_all_before_ft(&vm, f).is_err());
            assert!(scale_at_init(&vm, &["embed"], f).is_err());
        }
        assert!(matches!(
            scale_at_init(&vm, &[], 2.0),
            Err(KnobError::NoPrefixes { .. })
        ));
        // f32 overflow is detected before anything is written.
        let e = scale_all(&vm, 1e300).unwrap_err();
        assert!(matches!(e, KnobError::NonFiniteResult { .. }), "{e}");
        assert_eq!(values(&vm), before);
        assert!(matches!(
            scale_all(&VarMap::new(), 2.0),
            Err(KnobError::EmptyVarMap { .. })
        ));
    }

    #[test]
    fn integer_parameters_are_rejected() {
        let vm = VarMap::new();
        vm.data().lock().unwrap().insert(
            "embed.ids".into(),
            Var::from_tensor(&Tensor::new(&[1u32, 2], &Device::Cpu).unwrap()).unwrap(),
        );
        let e = scale_all(&vm, 2.0).unwrap_err();
        assert!(
            matches!(
                e,
                KnobError::NotFloat {
                    dtype: DType::U32,
                    ..
                }
            ),
            "{e}"
        );
    }
}
