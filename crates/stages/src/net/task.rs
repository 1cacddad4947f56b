//! `task`: one realisation of the teachers (THEORY §8) — group supports of
//! exact sizes `round(rho d)`, the PT teacher (`a_pt` times random signs)
//! and the FT teacher (`N(0, 1/rho_ft)`), or the single-task teacher of
//! Experiment 4. One row per coordinate: `coordinate, group, beta_pt, beta_ft`.

use arrow::array::RecordBatch;
use ptft_diagnet::task::{sample_single_task, sample_two_task};
use ptft_engine::{check_finite, Context, Inputs, ParamError, Stage, StageError, Validate};
use ptft_theory::TwoTask;
use serde::{Deserialize, Serialize};

use super::{validate_d, validate_rho};
use crate::table::TableBuilder;

pub struct Task;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// Pretraining and fine-tuning teachers on four coordinate groups.
    TwoTask,
    /// One Bernoulli–Gaussian teacher (Experiment 4); `beta_pt` is zero.
    SingleTask,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskParams {
    pub model: Model,
    /// Input dimension.
    pub d: usize,
    pub rho_pt: f64,
    pub rho_ft: f64,
    pub omega: f64,
    pub a_pt: f64,
    /// Sparsity of the single-task teacher (model = single_task).
    pub rho: f64,
    pub seed: u64,
}

impl Default for TaskParams {
    fn default() -> Self {
        TaskParams {
            model: Model::TwoTask,
            d: 1000,
            rho_pt: 0.1,
            rho_ft: 0.1,
            omega: 0.5,
            a_pt: 1.0,
            rho: 0.1,
            seed: 0,
        }
    }
}

impl Validate for TaskParams {
    fn validate(&self) -> Result<(), ParamError> {
        validate_d(self.d)?;
        match self.model {
            Model::TwoTask => {
                check_finite("rho_pt", self.rho_pt)?;
                check_finite("rho_ft", self.rho_ft)?;
                check_finite("omega", self.omega)?;
                check_finite("a_pt", self.a_pt)?;
                validate_rho("rho_pt", self.rho_pt)?;
                validate_rho("rho_ft", self.rho_ft)?;
                if !(0.0..=1.0).contains(&self.omega) {
                    return Err(ParamError::range("omega", self.omega, "[0, 1]"));
                }
                TwoTask {
                    rho_pt: self.rho_pt,
                    rho_ft: self.rho_ft,
                    omega: self.omega,
                    a_pt: self.a_pt,
                }
                .group_probs()
                .map_err(|e| ParamError::new("rho_pt, rho_ft, omega", e.to_string()))?;
                two_task_counts(self.d, self.rho_pt, self.rho_ft, self.omega)
                    .map_err(|m| ParamError::new("d, rho_pt, rho_ft, omega", m))?;
            }
            Model::SingleTask => {
                check_finite("rho", self.rho)?;
                validate_rho("rho", self.rho)?;
                if count(self.rho, self.d) == 0 {
                    return Err(ParamError::new(
                        "d, rho",
                        format!(
                            "infeasible task: round(rho * d) = round({} * {}) = 0 active coordinates; increase d (to at least {}) or rho",
                            self.rho,
                            self.d,
                            min_d(self.rho)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `round(rho d)`, the exact group size the sampler uses.
fn count(rho: f64, d: usize) -> usize {
    (rho * d as f64).round() as usize
}

/// The smallest `d` with `round(rho d) >= 1` (`rho` in (0, 1)), found by
/// the same rounding the sampler uses rather than by a formula.
fn min_d(rho: f64) -> usize {
    let mut d = ((0.5 / rho).floor() as usize).max(1);
    while count(rho, d) == 0 {
        d += 1;
    }
    d
}

/// The group sizes after rounding must fit, exactly as
/// `ptft_diagnet::task::sample_two_task` checks them — done here too so an
/// infeasible task is refused when the workflow is planned, not when its
/// stage runs (a test below keeps the two in agreement). Assumes the
/// probabilities are feasible (checked before).
fn two_task_counts(d: usize, rho_pt: f64, rho_ft: f64, omega: f64) -> Result<(), String> {
    let n_pt = count(rho_pt, d);
    let n_ft = count(rho_ft, d);
    if n_pt == 0 {
        return Err(format!(
            "infeasible task: round(rho_pt * d) = round({rho_pt} * {d}) = 0 PT-active coordinates; increase d (to at least {}) or rho_pt",
            min_d(rho_pt)
        ));
    }
    if n_ft == 0 {
        return Err(format!(
            "infeasible task: round(rho_ft * d) = round({rho_ft} * {d}) = 0 FT-active coordinates; increase d (to at least {}) or rho_ft",
            min_d(rho_ft)
        ));
    }
    let n_ov = (omega * n_ft as f64).round() as usize;
    let n_new = n_ft - n_ov;
    if n_ov > n_pt {
        return Err(format!(
            "infeasible task: after rounding, |overlap| = round(omega * round(rho_ft d)) = {n_ov} > |PT-active| = round(rho_pt d) = {n_pt} at d = {d}; increase d or rho_pt, or lower omega"
        ));
    }
    if n_pt + n_new > d {
        return Err(format!(
            "infeasible task: after rounding, |PT-active| + |new| = {n_pt} + {n_new} = {} > d = {d}; increase d or lower rho_pt or rho_ft",
            n_pt + n_new
        ));
    }
    Ok(())
}

impl Stage for Task {
    const KIND: &'static str = "task";
    const VERSION: u32 = 1;
    const DOC: &'static str =
        "teacher supports and coefficients (two-task or single-task), from a seed";
    type Params = TaskParams;

    fn compute(p: &TaskParams, _: &Inputs, ctx: &mut Context) -> Result<RecordBatch, StageError> {
        ctx.record_seed("task", p.seed);
        let t = match p.model {
            Model::TwoTask => sample_two_task(p.d, p.rho_pt, p.rho_ft, p.omega, p.a_pt, p.seed),
            Model::SingleTask => sample_single_task(p.d, p.rho, p.seed),
        }
        .map_err(|e| StageError::new(e.to_string()))?;
        TableBuilder::new()
            .u64("coordinate", 0..p.d as u64)
            .string("group", t.group.iter().map(|g| g.as_str().to_string()))
            .f64("beta_pt", t.beta_pt)
            .f64("beta_ft", t.beta_ft)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptft_diagnet::task::{sample_single_task, sample_two_task};

    /// Validation accepts exactly the tasks the sampler can realise, so no
    /// task that passes planning fails when it runs.
    #[test]
    fn validation_agrees_with_the_sampler() {
        let rhos = [0.01, 0.05, 0.1, 0.14, 0.2, 0.3, 0.45, 0.5, 0.6, 0.9];
        let omegas = [0.0, 0.3, 0.5, 0.7, 1.0];
        let mut refused = 0;
        for d in [1, 2, 3, 4, 5, 7, 10, 13, 20, 33, 100] {
            for &rho_pt in &rhos {
                for &rho_ft in &rhos {
                    for &omega in &omegas {
                        let p = TaskParams {
                            d,
                            rho_pt,
                            rho_ft,
                            omega,
                            ..TaskParams::default()
                        };
                        let sampled = sample_two_task(d, rho_pt, rho_ft, omega, 1.0, 0);
                        assert_eq!(
                            p.validate().is_ok(),
                            sampled.is_ok(),
                            "d = {d}, rho_pt = {rho_pt}, rho_ft = {rho_ft}, omega = {omega}: {:?} vs {:?}",
                            p.validate(),
                            sampled.err()
                        );
                        refused += usize::from(sampled.is_err());
                    }
                }
            }
            for &rho in &rhos {
                let p = TaskParams {
                    model: Model::SingleTask,
                    d,
                    rho,
                    ..TaskParams::default()
                };
                assert_eq!(
                    p.validate().is_ok(),
                    sample_single_task(d, rho, 0).is_ok(),
                    "single task d = {d}, rho = {rho}"
                );
            }
        }
        assert!(
            refused > 100,
            "the grid should exercise refusals ({refused})"
        );
    }

    #[test]
    fn an_empty_group_names_the_fix() {
        let p = TaskParams {
            d: 4,
            ..TaskParams::default()
        };
        let e = p.validate().unwrap_err();
        assert_eq!(e.field, "d, rho_pt, rho_ft, omega");
        assert!(e.message.contains("0 PT-active"), "{}", e.message);
        assert!(e.message.contains("at least 5"), "{}", e.message);
        let e = TaskParams {
            d: 1_000_000_000,
            ..TaskParams::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.message.contains("[1, 1000000]"), "{}", e.message);
        assert!(e.message.contains("100 GB"), "{}", e.message);
    }
}
