//! Stage compute functions called directly — they are pure functions of
//! (params, inputs), so no store or engine is needed to test them.

use arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use ptft_engine::{Context, InputTable, Inputs, Stage, Validate};
use ptft_stages::concat::Concat;
use ptft_stages::grid::Values;
use ptft_stages::regime_metrics::{RegimeMetrics, RegimeMetricsParams};
use ptft_stages::replica_curve::{ReplicaCurve, ReplicaCurveParams};
use ptft_stages::single_task_replica_curve::{SingleTaskParams, SingleTaskReplicaCurve};

fn f64s(b: &RecordBatch, name: &str) -> Vec<f64> {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
        .to_vec()
}

/// Single-task learning with scale c is the two-task model whose
/// pretraining teacher is zero (a_pt = 0): then every coordinate has
/// c_ft = 2 (lambda + c), so c_two_task = c/2 with lambda = 0 gives the same
/// penalty everywhere, and the FT-active groups (overlap + new) carry the
/// single task's teacher. Two independent code paths (group construction)
/// must agree to solver tolerance.
#[test]
fn single_task_equals_two_task_with_zero_pretraining_teacher() {
    for (rho, c) in [(0.1, 1e-3), (0.04, 1e-6), (0.9, 1.0)] {
        let alpha = Values::List(vec![0.05, 0.15, 0.3, 0.45]);
        let single = SingleTaskParams {
            rho,
            c,
            alpha: alpha.clone(),
            ..Default::default()
        };
        single.validate().unwrap();
        let a =
            SingleTaskReplicaCurve::compute(&single, &Inputs::default(), &mut Context::default())
                .unwrap();
        let two = ReplicaCurveParams {
            rho_pt: 0.05,
            rho_ft: rho,
            omega: 0.0,
            a_pt: 0.0,
            c: c / 2.0,
            lambda: 0.0,
            gamma: 0.0,
            alpha,
            ..Default::default()
        };
        // rho_pt = 0.05 keeps rho_pt + (1 - omega) rho_ft <= 1 (feasible) for every rho here.
        two.validate().unwrap();
        let b = ReplicaCurve::compute(&two, &Inputs::default(), &mut Context::default()).unwrap();
        for (x, y) in f64s(&a, "mse").iter().zip(f64s(&b, "mse")) {
            assert!(
                (x - y).abs() <= 1e-7 * y.abs() + 1e-12,
                "rho {rho} c {c}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn regime_metrics_grid_has_every_point_and_the_papers_spot_values() {
    let p = RegimeMetricsParams {
        lambda_over_c: Values::List(vec![-0.99, 0.0, 0.99]),
        c: Values::List(vec![1e-5]),
        gamma: Values::List(vec![0.0]),
        b: Values::List(vec![1.0]),
        b_pt: Values::List(vec![0.0, 1.0]),
    };
    p.validate().unwrap();
    let t = RegimeMetrics::compute(&p, &Inputs::default(), &mut Context::default()).unwrap();
    assert_eq!(t.num_rows(), 6);
    let (loc, bpt, l, pd) = (
        f64s(&t, "lambda_over_c"),
        f64s(&t, "b_pt"),
        f64s(&t, "l_order"),
        f64s(&t, "pd"),
    );
    // THEORY.md section 7 spot values (b = 1, b_pt = 1, gamma = 0, c = 1e-5).
    let spot = [
        (-0.99, 1.22980, -0.22980),
        (0.0, 1.88666, -0.88666),
        (0.99, 1.96265, -0.96264),
    ];
    for (lc, l_ref, pd_ref) in spot {
        let i = (0..6).find(|&i| loc[i] == lc && bpt[i] == 1.0).unwrap();
        assert!(
            (l[i] - l_ref).abs() < 1e-5,
            "l-order at lambda/c {lc}: {}",
            l[i]
        );
        assert!(
            (pd[i] - pd_ref).abs() < 1e-5,
            "PD at lambda/c {lc}: {}",
            pd[i]
        );
    }
    // Inactive coordinates never depend on pretraining.
    for i in (0..6).filter(|&i| bpt[i] == 0.0) {
        assert_eq!(pd[i], 0.0);
    }
}

#[test]
fn concat_adds_varying_params_and_refuses_mismatched_tables() {
    let mk = |omega: f64| {
        let p = ReplicaCurveParams {
            omega,
            alpha: Values::List(vec![0.2, 0.4]),
            ..Default::default()
        };
        let t = ReplicaCurve::compute(&p, &Inputs::default(), &mut Context::default()).unwrap();
        InputTable {
            stage: "s".into(),
            instance: format!("s[omega={omega}]"),
            params: serde_json::to_value(&p).unwrap(),
            coords: serde_json::Map::new(),
            table: t,
        }
    };
    let inputs = Inputs::new([("parts".to_string(), vec![mk(0.0), mk(1.0)])].into());
    let out = Concat::compute(&Default::default(), &inputs, &mut Context::default()).unwrap();
    assert_eq!(out.num_rows(), 4);
    assert_eq!(f64s(&out, "omega"), vec![0.0, 0.0, 1.0, 1.0]);
    assert!(
        out.column_by_name("c").is_none(),
        "c does not vary, so no column"
    );
    let src = out
        .column_by_name("source")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(src.value(3), "s[omega=1]");
    // More overlap helps at the same alpha (THEORY: shared features).
    let mse = f64s(&out, "mse");
    assert!(
        mse[3] < mse[1],
        "omega = 1 should beat omega = 0 at alpha 0.4: {mse:?}"
    );

    let grid = RegimeMetrics::compute(
        &Default::default(),
        &Inputs::default(),
        &mut Context::default(),
    )
    .unwrap();
    let bad = InputTable {
        stage: "g".into(),
        instance: "g".into(),
        params: serde_json::json!({}),
        coords: Default::default(),
        table: grid,
    };
    let inputs = Inputs::new([("parts".to_string(), vec![mk(0.0), bad])].into());
    let err = Concat::compute(&Default::default(), &inputs, &mut Context::default()).unwrap_err();
    assert!(err.message.contains("different columns"), "{}", err.message);
}

#[test]
fn defaults_are_valid_and_resolve_to_the_experiment_1_baseline() {
    let p = ReplicaCurveParams::default();
    p.validate().unwrap();
    assert_eq!(
        (p.rho_pt, p.rho_ft, p.omega, p.c, p.lambda, p.gamma),
        (0.1, 0.1, 0.5, 1e-3, 0.0, 0.0)
    );
    assert_eq!(p.alpha.expand("alpha").unwrap().len(), 80);
    SingleTaskParams::default().validate().unwrap();
    RegimeMetricsParams::default().validate().unwrap();
    let r = ptft_stages::registry();
    let expected = [
        "concat",
        "dataset",
        "empirical_curve",
        "evaluate",
        "figure",
        "finetune",
        "heatmap_figure",
        "implicit_bias_solve",
        "pretrain",
        "regime_metrics",
        "reinit",
        "replica_curve",
        "single_task_replica_curve",
        "task",
    ];
    assert_eq!(r.kind_names(), expected);
}

#[test]
fn monte_carlo_curves_are_validated_and_report_standard_errors() {
    let p = ReplicaCurveParams {
        alpha: Values::List(vec![0.3]),
        method: ptft_stages::solver::Method::MonteCarlo,
        mc: 20_000,
        seed: 1,
        ..Default::default()
    };
    p.validate().unwrap();
    let mut ctx = Context::default();
    let t = ReplicaCurve::compute(&p, &Inputs::default(), &mut ctx).unwrap();
    let se = f64s(&t, "mse_se")[0];
    let mse = f64s(&t, "mse")[0];
    assert!(se > 0.0 && se < mse, "batch-means SE {se} vs mse {mse}");
    let col = t.column_by_name("reliable").unwrap();
    assert_eq!(col.len(), 1);
}
