//! `ptft-theory`: the science core of `ptft`, the mathematics of "A Theory of
//! How Pretraining Shapes Inductive Bias in Fine-Tuning" (THEORY.md).
//!
//! The crate answers one question: given how a diagonal linear network was
//! initialised and pretrained, what does fine-tuning on `n = alpha d`
//! samples generalise like? Data flows through it in one direction:
//!
//! 1. [`penalty`]: gradient flow implicitly minimises `sum_i q(beta_i; c_i)`
//!    (§3); `q` and its derivatives are the building block of everything else.
//! 2. [`mapping`]: pretraining reaches fine-tuning only through the
//!    per-coordinate scale `c_ft(beta_pt; c, lambda, gamma)` (§5), after the
//!    initialisation `(c, lambda, gamma)` has been validated.
//! 3. [`regime`]: the l-order and pretraining-dependence metrics that place a
//!    coordinate in the rich/lazy × dependent/independent triangle (§7).
//! 4. [`task`]: the two-task model's four coordinate groups (§8).
//! 5. [`replica`]: groups → scalar prox problems ([`prox`]) → moments
//!    (quadrature on [`quadrature`] nodes, or Monte Carlo) → the replica
//!    fixed point solved over an alpha grid → [`CurvePoint`]s (§9).
//!
//! All arithmetic is `f64`. Bad input is reported as [`TheoryError`] (never a
//! panic), and numerical breakdown is reported rather than returned as NaN.
//! The library does no I/O.

pub mod error;
pub mod mapping;
pub mod penalty;
pub mod prox;
pub mod quadrature;
pub mod regime;
pub mod replica;
pub mod task;

pub use error::TheoryError;
pub use mapping::{c_ft, validate_init};
pub use penalty::{q, q_prime, q_second, q_third};
pub use prox::{prox, prox_warm, Prox};
pub use regime::{regime_point, RegimePoint};
pub use replica::{
    single_task_groups, solve_curve, two_task_groups, CurvePoint, Expectation, Group,
    MomentEvaluator, Moments, SolverSettings,
};
pub use task::{GroupProbs, TwoTask};
