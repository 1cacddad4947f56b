//! Teachers for the two-task model of THEORY §8 and the single task of
//! Experiment 4, at finite `d` with *exact* group sizes.
//!
//! The replica theory works with group probabilities; a finite network sees
//! one realisation. Sampling supports of exact sizes `round(rho d)` (rather
//! than i.i.d. Bernoulli memberships) removes the binomial fluctuation of the
//! group fractions, which otherwise shifts the empirical curves by several
//! percent near the transition at `d = 5000` (cf. reference/README.md on how
//! much a 1% change of the group fractions moves the fixed point).

use crate::error::{check_d, check_finite, out_of_range, DiagnetError};
use ptft_theory::{TheoryError, TwoTask};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

/// Which group a coordinate belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Active in pretraining and fine-tuning.
    Overlap,
    /// Active in fine-tuning only.
    New,
    /// Active in pretraining only.
    PtOnly,
    /// Inactive in both tasks.
    None,
    /// Single-task model: active coordinate.
    Active,
    /// Single-task model: inactive coordinate.
    Inactive,
}

impl Group {
    /// Stable snake_case name (matches the serde representation).
    pub fn as_str(&self) -> &'static str {
        match self {
            Group::Overlap => "overlap",
            Group::New => "new",
            Group::PtOnly => "pt_only",
            Group::None => "none",
            Group::Active => "active",
            Group::Inactive => "inactive",
        }
    }
}

/// One realisation of the teachers: per-coordinate group, pretraining
/// teacher and fine-tuning teacher (all of length `d`).
#[derive(Debug, Clone, Serialize)]
pub struct TaskSample {
    pub group: Vec<Group>,
    pub beta_pt: Vec<f64>,
    pub beta_ft: Vec<f64>,
}

impl TaskSample {
    /// Number of coordinates in `g`.
    pub fn count(&self, g: Group) -> usize {
        self.group.iter().filter(|&&x| x == g).count()
    }
}

/// `round(x)` as a count, for `x` already known finite and in `[0, d]`.
fn round_count(x: f64) -> usize {
    x.round() as usize
}

/// Sample the two-task teachers of THEORY §8 with exact group sizes:
/// `|PT-active| = round(rho_pt d)`, `|FT-active| = round(rho_ft d)`,
/// `|overlap| = round(omega |FT-active|)`. A ChaCha8 permutation of the
/// coordinates (from `seed`) assigns the groups; `beta_pt = a_pt * (random
/// sign)` on PT-active coordinates and `beta_ft ~ N(0, 1/rho_ft)` on
/// FT-active ones (so that `E[beta_ft_i^2] = 1` over active coordinates).
///
/// Errors: `d = 0`; `rho_pt`, `rho_ft` outside `(0, 1)`; `omega` outside
/// `[0, 1]`; non-finite `a_pt`; probability-infeasible tasks (message from
/// `TwoTask::group_probs`, naming the violated inequality); tasks whose
/// *rounded* counts do not fit (`|overlap| <= |PT-active|`, `|PT-active| +
/// |new| <= d`) or whose supports round to zero coordinates.
pub fn sample_two_task(
    d: usize,
    rho_pt: f64,
    rho_ft: f64,
    omega: f64,
    a_pt: f64,
    seed: u64,
) -> Result<TaskSample, DiagnetError> {
    check_d(d)?;
    let task = TwoTask {
        rho_pt,
        rho_ft,
        omega,
        a_pt,
    };
    task.group_probs().map_err(|e| match e {
        TheoryError::InfeasibleTask(msg) => DiagnetError::InfeasibleTask(msg),
        other => DiagnetError::Theory(other),
    })?;
    let df = d as f64;
    let n_pt = round_count(rho_pt * df);
    let n_ft = round_count(rho_ft * df);
    if n_pt == 0 {
        return Err(DiagnetError::InfeasibleTask(format!(
            "round(rho_pt * d) = round({rho_pt} * {d}) = 0 PT-active coordinates; increase d or rho_pt"
        )));
    }
    if n_ft == 0 {
        return Err(DiagnetError::InfeasibleTask(format!(
            "round(rho_ft * d) = round({rho_ft} * {d}) = 0 FT-active coordinates; increase d or rho_ft"
        )));
    }
    let n_ov = round_count(omega * n_ft as f64);
    let n_new = n_ft - n_ov;
    if n_ov > n_pt {
        return Err(DiagnetError::InfeasibleTask(format!(
            "after rounding, |overlap| = round(omega * round(rho_ft d)) = {n_ov} > |PT-active| = round(rho_pt d) = {n_pt} \
             (need rho_pt - omega*rho_ft >= 0 at d = {d})"
        )));
    }
    let n_pt_only = n_pt - n_ov;
    if n_pt + n_new > d {
        return Err(DiagnetError::InfeasibleTask(format!(
            "after rounding, |PT-active| + |new| = {n_pt} + {n_new} = {} > d = {d} \
             (need 1 - rho_pt - (1 - omega)*rho_ft >= 0 at d = {d})",
            n_pt + n_new
        )));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..d).collect();
    idx.shuffle(&mut rng);
    let mut group = vec![Group::None; d];
    for (k, &i) in idx.iter().enumerate() {
        group[i] = if k < n_ov {
            Group::Overlap
        } else if k < n_ov + n_new {
            Group::New
        } else if k < n_ov + n_new + n_pt_only {
            Group::PtOnly
        } else {
            Group::None
        };
    }
    // Draw the teachers in coordinate order so that the values depend only on
    // (seed, group layout), not on the permutation's internal order.
    let sd_ft = 1.0 / rho_ft.sqrt();
    let mut beta_pt = vec![0.0; d];
    let mut beta_ft = vec![0.0; d];
    for i in 0..d {
        let g = group[i];
        if matches!(g, Group::Overlap | Group::PtOnly) {
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            beta_pt[i] = a_pt * sign;
        }
        if matches!(g, Group::Overlap | Group::New) {
            let z: f64 = StandardNormal.sample(&mut rng);
            beta_ft[i] = sd_ft * z;
        }
    }
    Ok(TaskSample {
        group,
        beta_pt,
        beta_ft,
    })
}

/// Experiment 4's single task: `round(rho d)` active coordinates (a ChaCha8
/// permutation from `seed` picks them) with teacher `N(0, 1/rho)`;
/// `beta_pt` is all zero (there is no pretraining). Errors: `d = 0`, `rho`
/// outside `(0, 1)`, or `round(rho d) = 0`.
pub fn sample_single_task(d: usize, rho: f64, seed: u64) -> Result<TaskSample, DiagnetError> {
    check_d(d)?;
    check_finite("rho", rho, "(0, 1)")?;
    if rho <= 0.0 || rho >= 1.0 {
        return Err(out_of_range("rho", rho, "(0, 1)"));
    }
    let n_act = round_count(rho * d as f64);
    if n_act == 0 {
        return Err(DiagnetError::InfeasibleTask(format!(
            "round(rho * d) = round({rho} * {d}) = 0 active coordinates; increase d or rho"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx: Vec<usize> = (0..d).collect();
    idx.shuffle(&mut rng);
    let mut group = vec![Group::Inactive; d];
    for &i in &idx[..n_act] {
        group[i] = Group::Active;
    }
    let sd = 1.0 / rho.sqrt();
    let beta_ft = group
        .iter()
        .map(|g| {
            if *g == Group::Active {
                let z: f64 = StandardNormal.sample(&mut rng);
                sd * z
            } else {
                0.0
            }
        })
        .collect();
    Ok(TaskSample {
        group,
        beta_pt: vec![0.0; d],
        beta_ft,
    })
}
