//! The committed header `include/mptcpstate.h` must be what cbindgen makes of the sources
//! today. Update it with:
//!
//!     MPTCPSTATE_BLESS=1 cargo test -p mptcpstate-capi --test header

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

const BLESS: &str = "MPTCPSTATE_BLESS=1 cargo test -p mptcpstate-capi --test header";

fn generate(crate_dir: &Path) -> Vec<u8> {
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(config) => config,
        Err(e) => panic!("capi/cbindgen.toml: {e}"),
    };
    // Parsing the sources directly (not through `cargo metadata`) keeps the test offline
    // and independent of the rest of the workspace.
    let bindings = match cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
    {
        Ok(bindings) => bindings,
        Err(e) => panic!("cbindgen failed: {e}"),
    };
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

#[test]
fn header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = crate_dir.join("../include/mptcpstate.h");
    let generated = generate(crate_dir);

    if std::env::var_os("MPTCPSTATE_BLESS").is_some_and(|v| v == "1") {
        if let Err(e) = std::fs::write(&header, &generated) {
            panic!("cannot write {}: {e}", header.display());
        }
        return;
    }

    let committed = std::fs::read(&header).unwrap_or_default();
    if committed != generated {
        let committed = String::from_utf8_lossy(&committed);
        let generated = String::from_utf8_lossy(&generated);
        let first = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "include/mptcpstate.h is stale (first difference at line {}):\n  \
             committed: {:?}\n  generated: {:?}\nUpdate it with:\n  {BLESS}",
            first + 1,
            committed.lines().nth(first).unwrap_or("<end of file>"),
            generated.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}
