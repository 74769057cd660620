//! Replays the fuzz targets' findings (`rust/fuzz/regressions/<target>/`) and seed
//! corpora (`rust/fuzz/seeds/<target>/`) through the same code the targets run
//! (`mptcpstate::fuzzing`), on the stable toolchain and without a fuzzer. The C target's
//! are replayed by the C crate's own test (`capi/src/fuzzing.rs`).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() {
                let data = std::fs::read(&path).unwrap();
                out.push((path, data));
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no seed or finding for {target}");
    out
}

#[test]
fn state() {
    for (path, data) in inputs("state") {
        eprintln!("{}", path.display());
        mptcpstate::fuzzing::state(&data);
    }
}

#[test]
fn netlink_route() {
    let mut links = 0;
    for (_, data) in inputs("netlink_route") {
        links += mptcpstate::fuzzing::route(&data).links.len();
    }
    // The seeds are real kernel answers: they decode.
    assert!(links > 0);
}

#[test]
fn netlink_genl() {
    let mut endpoints = 0;
    for (_, data) in inputs("netlink_genl") {
        endpoints += mptcpstate::fuzzing::genl(&data).endpoints.len();
    }
    assert!(endpoints > 0);
}

#[test]
fn netlink_diag() {
    let (mut conns, mut subflows) = (0, 0);
    for (_, data) in inputs("netlink_diag") {
        let d = mptcpstate::fuzzing::diag(&data);
        conns += d.connections.len();
        subflows += d.subflows.len();
    }
    assert!(
        conns > 0 && subflows > 0,
        "{conns} connections, {subflows} subflows"
    );
}
