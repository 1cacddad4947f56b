//! The two-task generative model of THEORY §8 (paper Section 3.3).
//!
//! Each coordinate falls into one of four groups according to whether it is
//! active in pretraining (PT) and/or fine-tuning (FT). The group
//! probabilities are what the replica theory integrates over; the groups'
//! pretrained coefficients fix their `c_ft` (see [`crate::replica`]).

use crate::error::{check_finite, out_of_range, TheoryError};
use serde::Serialize;

/// Parameters of the two-task model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwoTask {
    /// Fraction of coordinates active in pretraining, in `(0, 1)`.
    pub rho_pt: f64,
    /// Fraction of coordinates active in fine-tuning, in `(0, 1)`.
    pub rho_ft: f64,
    /// Fraction of FT-active coordinates that were PT-active, in `[0, 1]`.
    pub omega: f64,
    /// Magnitude of the pretraining teacher on PT-active coordinates.
    pub a_pt: f64,
}

/// Probabilities of the four coordinate groups; they sum to one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupProbs {
    /// Active in PT and FT: `omega rho_ft`.
    pub overlap: f64,
    /// Active in FT only: `(1 - omega) rho_ft`.
    pub new: f64,
    /// Active in PT only: `rho_pt - omega rho_ft`.
    pub pt_only: f64,
    /// Inactive in both: `1 - rho_pt - (1 - omega) rho_ft`.
    pub none: f64,
}

/// Rounding slack for probabilities that are zero on paper (e.g.
/// `rho_pt = omega rho_ft` exactly) but come out as `-1e-17` in floating
/// point; such values are clamped to 0 rather than rejected.
const PROB_SLACK: f64 = 1e-12;

/// Compact number formatting for error messages (no float noise).
fn num(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e6) {
        return format!("{v:e}");
    }
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

impl TwoTask {
    /// The four group probabilities, or an error naming the violated
    /// feasibility inequality with the user's numbers plugged in.
    pub fn group_probs(&self) -> Result<GroupProbs, TheoryError> {
        for (name, v) in [("rho_pt", self.rho_pt), ("rho_ft", self.rho_ft)] {
            check_finite(name, v, "(0, 1)")?;
            if v <= 0.0 || v >= 1.0 {
                return Err(out_of_range(name, v, "(0, 1)"));
            }
        }
        check_finite("omega", self.omega, "[0, 1]")?;
        if !(0.0..=1.0).contains(&self.omega) {
            return Err(out_of_range("omega", self.omega, "[0, 1]"));
        }
        check_finite("a_pt", self.a_pt, "finite")?;

        let (rho_pt, rho_ft, omega) = (self.rho_pt, self.rho_ft, self.omega);
        let overlap = omega * rho_ft;
        let new = (1.0 - omega) * rho_ft;
        let pt_only = rho_pt - omega * rho_ft;
        let none = 1.0 - rho_pt - (1.0 - omega) * rho_ft;
        if pt_only < -PROB_SLACK {
            return Err(TheoryError::InfeasibleTask(format!(
                "rho_pt - omega*rho_ft = {} - {}*{} = {} < 0 (pt-only group probability must be >= 0)",
                num(rho_pt),
                num(omega),
                num(rho_ft),
                num(pt_only)
            )));
        }
        if none < -PROB_SLACK {
            return Err(TheoryError::InfeasibleTask(format!(
                "1 - rho_pt - (1 - omega)*rho_ft = 1 - {} - (1 - {})*{} = {} < 0 (none group probability must be >= 0)",
                num(rho_pt),
                num(omega),
                num(rho_ft),
                num(none)
            )));
        }
        Ok(GroupProbs {
            overlap,
            new,
            pt_only: pt_only.max(0.0),
            none: none.max(0.0),
        })
    }
}
