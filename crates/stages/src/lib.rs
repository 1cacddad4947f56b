//! Every stage kind `ptft` knows, one module each.
//!
//! A module holds the stage's parameter struct (serde, defaults, validation
//! with the valid range in every message), its `VERSION` constant, and its
//! compute function, which turns typed params and input tables into one
//! Arrow table. Stages never touch the store or hashing: the engine does.
//! [`registry`] is the single list of kinds; adding a stage is one line there.

pub mod concat;
pub mod figure;
pub mod grid;
pub mod heatmap_figure;
pub mod net;
pub mod regime_metrics;
pub mod replica_curve;
pub mod rows;
pub mod single_task_replica_curve;
pub mod solver;
pub mod table;

use ptft_engine::Registry;

/// All stage kinds, ready for the engine.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register::<replica_curve::ReplicaCurve>()
        .register::<single_task_replica_curve::SingleTaskReplicaCurve>()
        .register::<regime_metrics::RegimeMetrics>()
        .register::<concat::Concat>()
        .register::<net::task::Task>()
        .register::<net::dataset::Dataset>()
        .register::<net::pretrain::Pretrain>()
        .register::<net::reinit::Reinit>()
        .register::<net::finetune::Finetune>()
        .register::<net::implicit_bias_solve::ImplicitBiasSolve>()
        .register::<net::evaluate::Evaluate>()
        .register::<net::empirical_curve::EmpiricalCurve>()
        .register::<figure::FigureStage>()
        .register::<heatmap_figure::HeatmapFigure>();
    r
}
