//! The bodies of the fuzz targets (`rust/fuzz/`), here so that the targets and the
//! replay of their findings (`rust/tests/fuzz_regressions.rs`, plain `cargo test`) run the
//! same code. Not part of the API.

use crate::{input_from_bytes, parse, Log, OutputFormat};

pub use crate::netlink::decode::{diag, genl, route, Decoded};

/// Parses and validates `data` as a state document (JSON or YAML); a state that passes
/// must print in both canonical forms, each of which must parse back to the same state
/// and print to the same text again (`format` is idempotent). Any failure panics.
pub fn state(data: &[u8]) {
    let Ok(text) = input_from_bytes(data) else {
        return;
    };
    let Ok(state) = parse(text, &Log::new()) else {
        return;
    };
    for format in [OutputFormat::Json, OutputFormat::Yaml] {
        let canonical = match state.to_text(format) {
            Ok(t) => t,
            Err(e) => panic!("a valid state does not print as {format:?}: {e}"),
        };
        let again = match parse(&canonical, &Log::new()) {
            Ok(s) => s,
            Err(e) => {
                panic!("the canonical {format:?} of a valid state is refused: {e}\n{canonical}")
            }
        };
        assert_eq!(
            again, state,
            "{format:?} round trip changed the state:\n{canonical}"
        );
        match again.to_text(format) {
            Ok(t) => assert_eq!(t, canonical, "format is not idempotent ({format:?})"),
            Err(e) => panic!("the reparsed state does not print as {format:?}: {e}"),
        }
    }
}
