//! The shared table of good inputs (tests/fixtures/good), through the Rust core: each
//! input nmstate takes unchanged is taken, and means what its canonical YAML says (as
//! YAML, and as JSON: the canonical JSON parses back to the same canonical YAML).

use std::path::PathBuf;

use mptcpstate::{Log, OutputFormat};
use serde_json::Value;

fn table_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/good")
}

#[test]
fn every_good_input_gives_its_canonical_form() {
    let table: Vec<Value> =
        serde_json::from_slice(&std::fs::read(table_dir().join("cases.json")).unwrap()).unwrap();
    assert!(!table.is_empty());
    let mut failures = Vec::new();
    for case in &table {
        let name = case["name"].as_str().unwrap();
        let data = std::fs::read(
            table_dir()
                .join("inputs")
                .join(case["file"].as_str().unwrap()),
        )
        .unwrap();
        let want = std::fs::read_to_string(
            table_dir()
                .join("expected")
                .join(case["canonical"].as_str().unwrap()),
        )
        .unwrap();
        let log = Log::new();
        let got = mptcpstate::input_from_bytes(&data).and_then(|text| {
            let yaml = mptcpstate::format(text, OutputFormat::Yaml, &log)?;
            let json = mptcpstate::format(text, OutputFormat::Json, &log)?;
            let again = mptcpstate::format(&json, OutputFormat::Yaml, &log)?;
            Ok((yaml, again))
        });
        match got {
            Ok((yaml, again)) => {
                if yaml != want {
                    failures.push(format!("{name}: got\n{yaml}\nwant\n{want}"));
                }
                if again != want {
                    failures.push(format!("{name}: through JSON: got\n{again}"));
                }
            }
            Err(e) => failures.push(format!("{name}: refused: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
