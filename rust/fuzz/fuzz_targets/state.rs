//! The parser and validator (JSON and YAML), and the canonical round trip of what passes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mptcpstate::fuzzing::state(data));
