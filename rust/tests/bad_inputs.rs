//! The shared table of bad inputs (tests/fixtures/bad), through the Rust core: every case
//! gets its error kind and a message with every expected substring, from both `format`
//! and `generate_configurations`, within a second each (in release builds).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mptcpstate::{Log, OutputFormat};
use serde_json::Value;

fn table_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/bad")
}

fn case_bytes(case: &Value) -> Vec<u8> {
    if let Some(file) = case["file"].as_str() {
        return std::fs::read(table_dir().join("inputs").join(file)).unwrap();
    }
    let g = &case["generate"];
    let mut s = g["head"].as_str().unwrap_or("").to_string();
    s.push_str(
        &g["repeat"]
            .as_str()
            .unwrap()
            .repeat(g["times"].as_u64().unwrap() as usize),
    );
    s.push_str(g["tail"].as_str().unwrap_or(""));
    s.into_bytes()
}

/// Runs one input through a core entry point the way every face does: bytes, then UTF-8
/// check, then the call.
fn run(data: &[u8], gc: bool) -> mptcpstate::Error {
    let log = Log::new();
    let result = mptcpstate::input_from_bytes(data).and_then(|text| {
        if gc {
            mptcpstate::generate_configurations(text, &log).map(|_| ())
        } else {
            mptcpstate::format(text, OutputFormat::Yaml, &log).map(|_| ())
        }
    });
    match result {
        Ok(()) => panic!("accepted"),
        Err(e) => e,
    }
}

#[test]
fn every_bad_input_is_refused_with_a_useful_message() {
    let table: Vec<Value> =
        serde_json::from_slice(&std::fs::read(table_dir().join("cases.json")).unwrap()).unwrap();
    assert!(table.len() >= 40, "the table must keep at least 40 cases");
    let mut failures = Vec::new();
    for case in &table {
        let name = case["name"].as_str().unwrap();
        let data = case_bytes(case);
        for gc in [false, true] {
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(|| run(&data, gc));
            let took = start.elapsed();
            let e = match outcome {
                Ok(e) => e,
                Err(_) => {
                    failures.push(format!("{name}: accepted or panicked"));
                    continue;
                }
            };
            if std::env::var_os("SHOW_MESSAGES").is_some() && !gc {
                println!("{name}\t{}\t{}", e.kind(), e.msg());
            }
            if e.kind().name() != case["kind"].as_str().unwrap() {
                failures.push(format!("{name}: kind {} ({})", e.kind(), e.msg()));
            }
            for want in case["message"].as_array().unwrap() {
                let want = want.as_str().unwrap();
                if !e.msg().contains(want) {
                    failures.push(format!("{name}: `{want}` not in `{}`", e.msg()));
                }
            }
            // The one-second bound is the product's (release builds); the CLI, C and Python
            // runners check it on release code, and so does this one when built with
            // --release.
            if !cfg!(debug_assertions) && took > Duration::from_secs(1) {
                failures.push(format!("{name}: took {took:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
