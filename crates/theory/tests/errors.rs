//! Bad input is rejected with a message naming the parameter and its range.

use ptft_theory::{
    single_task_groups, solve_curve, two_task_groups, validate_init, Expectation, Group,
    SolverSettings, TheoryError, TwoTask,
};

fn baseline_task() -> TwoTask {
    TwoTask {
        rho_pt: 0.1,
        rho_ft: 0.1,
        omega: 0.5,
        a_pt: 1.0,
    }
}

#[test]
fn infeasible_task_names_the_inequality() {
    let task = TwoTask {
        rho_pt: 0.1,
        rho_ft: 0.5,
        omega: 1.0,
        a_pt: 1.0,
    };
    let msg = task.group_probs().unwrap_err().to_string();
    assert_eq!(
        msg,
        "infeasible task: rho_pt - omega*rho_ft = 0.1 - 1*0.5 = -0.4 < 0 \
         (pt-only group probability must be >= 0)"
    );
    let task = TwoTask {
        rho_pt: 0.5,
        rho_ft: 0.9,
        omega: 0.0,
        a_pt: 1.0,
    };
    let msg = task.group_probs().unwrap_err().to_string();
    assert!(msg.contains("1 - rho_pt - (1 - omega)*rho_ft"), "{msg}");
    assert!(msg.contains("none group probability must be >= 0"), "{msg}");
    // Boundary cases that are zero on paper are accepted (and dropped).
    let edge = TwoTask {
        rho_pt: 0.1,
        rho_ft: 0.1,
        omega: 1.0,
        a_pt: 1.0,
    };
    let p = edge.group_probs().unwrap();
    assert_eq!(p.pt_only, 0.0);
    let groups = two_task_groups(&edge, 1e-3, 0.0, 0.0).unwrap();
    assert_eq!(groups.len(), 2);
}

#[test]
fn task_parameters_out_of_range() {
    for (rho_pt, rho_ft, omega, a_pt, name) in [
        (0.0, 0.1, 0.5, 1.0, "rho_pt"),
        (0.1, 1.0, 0.5, 1.0, "rho_ft"),
        (0.1, 0.1, 1.5, 1.0, "omega"),
        (f64::NAN, 0.1, 0.5, 1.0, "rho_pt"),
        (0.1, 0.1, 0.5, f64::INFINITY, "a_pt"),
    ] {
        let t = TwoTask {
            rho_pt,
            rho_ft,
            omega,
            a_pt,
        };
        let msg = t.group_probs().unwrap_err().to_string();
        assert!(msg.starts_with(name), "{msg}");
    }
}

#[test]
fn initialisation_out_of_range() {
    let msg = validate_init(1e-3, 2e-3, 0.0).unwrap_err().to_string();
    assert_eq!(msg, "lambda = 2e-3 is outside [-c, c] = [-1e-3, 1e-3]");
    let msg = validate_init(0.0, 0.0, 0.0).unwrap_err().to_string();
    assert_eq!(msg, "c = 0e0 is outside the valid range (0, inf)");
    assert!(validate_init(-1.0, 0.0, 0.0).is_err());
    assert!(validate_init(f64::NAN, 0.0, 0.0).is_err());
    assert!(validate_init(1.0, f64::NAN, 0.0).is_err());
    assert!(validate_init(1.0, 0.0, -1.0).is_err());
    assert!(validate_init(1.0, 0.0, f64::NAN).is_err());
    assert!(
        validate_init(1.0, -1.0, 0.0).is_ok(),
        "lambda = -c is allowed"
    );
    assert!(matches!(
        two_task_groups(&baseline_task(), 1e-3, -2e-3, 0.0),
        Err(TheoryError::LambdaOutOfRange { .. })
    ));
    assert!(single_task_groups(0.0, 1.0).is_err());
    assert!(single_task_groups(0.1, 0.0).is_err());
}

#[test]
fn bad_alpha_grids_and_settings() {
    let groups = two_task_groups(&baseline_task(), 1e-3, 0.0, 0.0).unwrap();
    let s = SolverSettings::default();
    let q = Expectation::default();
    assert_eq!(
        solve_curve(&groups, &[], &q, &s).unwrap_err(),
        TheoryError::Empty("alpha grid")
    );
    let msg = solve_curve(&groups, &[0.1, 0.0], &q, &s)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("alpha = 0e0"), "{msg}");
    assert!(solve_curve(&groups, &[-0.1], &q, &s).is_err());
    assert!(solve_curve(&groups, &[f64::NAN], &q, &s).is_err());
    assert!(solve_curve(&groups, &[0.1], &Expectation::Quadrature { nodes: 12 }, &s).is_err());
    let mc = Expectation::MonteCarlo {
        samples: 10,
        seed: 0,
        batches: 50,
    };
    assert!(solve_curve(&groups, &[0.1], &mc, &s).is_err());
    let bad = SolverSettings {
        tol: f64::NAN,
        ..SolverSettings::default()
    };
    assert!(solve_curve(&groups, &[0.1], &q, &bad).is_err());
    let bad = SolverSettings {
        damping: 0.0,
        ..SolverSettings::default()
    };
    assert!(solve_curve(&groups, &[0.1], &q, &bad).is_err());
    // Groups that do not sum to one.
    let half = vec![Group {
        name: "x",
        prob: 0.5,
        teacher_var: 1.0,
        c_ft: 1.0,
    }];
    assert!(matches!(
        solve_curve(&half, &[0.1], &q, &s),
        Err(TheoryError::ProbabilitiesDoNotSumToOne { .. })
    ));
}
