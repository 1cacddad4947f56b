//! The bad-input corpus: every workflow in `tests/bad_inputs/` is malformed
//! in one way (syntax, schema, ranges, infeasible tasks, cycles, sizes that
//! would exhaust memory), and `ptft run` must refuse it up front: exit code
//! 2, a message naming the file and the problem, no panic, and nothing
//! written to the store. `tests/bad_inputs/cases.json` lists each file with
//! its category and the fragments its message must contain; see
//! `tests/bad_inputs/README.md` to add a case.
//!
//! A case marked `known_issue` is a bad input that is *not* yet refused at
//! planning time (the fix is outside the stage parameters). It is run and
//! its status printed, but it does not fail the test; when it starts
//! passing, the test says so and the mark should be removed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;
use serde_json::Value;

const CATEGORIES: [&str; 6] = ["syntax", "schema", "range", "infeasible", "cycle", "huge"];
const MIN_CASES: usize = 40;
/// A bad input is refused in milliseconds; anything near this is a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bad_inputs")
}

struct Case {
    file: String,
    category: String,
    expect: Vec<String>,
    known_issue: Option<String>,
}

/// Reads the manifest, reporting every malformed entry at once.
fn manifest(problems: &mut Vec<String>) -> Vec<Case> {
    let path = corpus_dir().join("cases.json");
    let text = std::fs::read_to_string(&path).expect("tests/bad_inputs/cases.json is readable");
    let entries: Vec<Value> = serde_json::from_str(&text).expect("cases.json is a JSON list");
    let mut cases = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
        let (Some(file), Some(category)) = (s("file"), s("category")) else {
            problems.push(format!(
                "cases.json entry {i}: needs string `file` and `category`"
            ));
            continue;
        };
        let expect: Vec<String> = e
            .get("expect")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if expect.is_empty() {
            problems.push(format!(
                "{file}: `expect` must list at least one message fragment"
            ));
        }
        if !CATEGORIES.contains(&category.as_str()) {
            problems.push(format!(
                "{file}: category `{category}` is not one of {CATEGORIES:?}"
            ));
        }
        if let Some(extra) = e
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .find(|k| !["file", "category", "expect", "known_issue"].contains(&k.as_str()))
        {
            problems.push(format!("{file}: unknown manifest field `{extra}`"));
        }
        cases.push(Case {
            file,
            category,
            expect,
            known_issue: s("known_issue"),
        });
    }
    cases
}

/// `ptft <cmd> FILE --store <sandbox store>` with a time limit; returns the
/// exit code (None if killed by a signal or the time limit) and stderr.
fn ptft(sb: &Sandbox, cmd: &str, file: &Path) -> (Option<i32>, String) {
    let err_path = sb.dir.path().join(format!("{cmd}.stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ptft"))
        .arg(cmd)
        .arg(file)
        .arg("--store")
        .arg(sb.store())
        .current_dir(sb.dir.path())
        .env_remove("PTFT_STORE")
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned();
    if status.is_none() {
        stderr.push_str(&format!("\n[killed after {TIMEOUT:?}]"));
    }
    (status.and_then(|s| s.code()), stderr)
}

/// Files under `objects/`, `keys/` or `history/` of a store.
fn written(store: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for sub in ["objects", "keys", "history"] {
        walk(&store.join(sub), &mut out);
    }
    out
}

/// Runs one case (`run`, then `plan`); returns what is wrong with it.
fn check(case: &Case) -> Vec<String> {
    let path = corpus_dir().join(&case.file);
    let mut wrong = Vec::new();
    for cmd in ["run", "plan"] {
        let sb = Sandbox::new();
        let (code, stderr) = ptft(&sb, cmd, &path);
        let one_line = stderr.trim().replace('\n', "\n      ");
        if code != Some(2) {
            wrong.push(format!("`ptft {cmd}` exit code {code:?}, want 2"));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            wrong.push(format!("`ptft {cmd}` panicked"));
        }
        if !stderr.contains(&case.file) {
            wrong.push(format!("`ptft {cmd}` message does not name the file"));
        }
        for e in &case.expect {
            if !stderr.contains(e.as_str()) {
                wrong.push(format!("`ptft {cmd}` message lacks `{e}`"));
            }
        }
        let files = written(&sb.store());
        if !files.is_empty() {
            wrong.push(format!(
                "`ptft {cmd}` wrote {} file(s) to the store, e.g. {}",
                files.len(),
                files[0].display()
            ));
        }
        if !wrong.is_empty() {
            wrong.push(format!("stderr of `ptft {cmd}`:\n      {one_line}"));
            break;
        }
    }
    wrong
}

#[test]
fn every_bad_input_is_refused_up_front() {
    let mut problems: Vec<String> = Vec::new();
    let cases = manifest(&mut problems);

    // The manifest and the directory agree: no orphan file, no missing file,
    // no case listed twice.
    let listed: BTreeSet<&str> = cases.iter().map(|c| c.file.as_str()).collect();
    if listed.len() != cases.len() {
        problems.push("cases.json lists some file more than once".into());
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/bad_inputs/ exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "cases.json" && n != "README.md")
        .collect();
    for orphan in on_disk.iter().filter(|f| !listed.contains(f.as_str())) {
        problems.push(format!(
            "{orphan}: in tests/bad_inputs/ but not in cases.json"
        ));
    }
    for missing in listed.iter().filter(|f| !on_disk.contains(**f)) {
        problems.push(format!(
            "{missing}: listed in cases.json but not in tests/bad_inputs/"
        ));
    }

    let mut counts: BTreeMap<&str, usize> = CATEGORIES.iter().map(|c| (*c, 0)).collect();
    let mut known_counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut known_notes: Vec<String> = Vec::new();
    for case in cases.iter().filter(|c| on_disk.contains(&c.file)) {
        let wrong = check(case);
        match &case.known_issue {
            None => {
                *counts.entry(case.category.as_str()).or_default() += 1;
                if !wrong.is_empty() {
                    problems.push(format!(
                        "{} ({}):\n    {}",
                        case.file,
                        case.category,
                        wrong.join("\n    ")
                    ));
                }
            }
            Some(why) => {
                *known_counts.entry(case.category.as_str()).or_default() += 1;
                known_notes.push(if wrong.is_empty() {
                    format!(
                        "{}: now refused as it should be; remove its `known_issue` mark",
                        case.file
                    )
                } else {
                    format!(
                        "{}: known issue, still open ({why}): {}",
                        case.file, wrong[0]
                    )
                });
            }
        }
    }

    let total: usize = counts.values().sum();
    eprintln!("bad-input corpus: {total} cases refused up front");
    for (category, n) in &counts {
        eprintln!("  {category:<10} {n}");
    }
    if !known_notes.is_empty() {
        eprintln!(
            "known issues, not counted ({}): {known_counts:?}",
            known_notes.len()
        );
        for note in &known_notes {
            eprintln!("  {note}");
        }
    }
    if total < MIN_CASES {
        problems.push(format!(
            "the corpus has {total} cases (not counting known issues); it must keep at least {MIN_CASES}"
        ));
    }
    for (category, n) in &counts {
        if *n == 0 {
            problems.push(format!("no case in category `{category}`"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the bad-input corpus:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
