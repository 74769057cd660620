//! `mptcpstate_format` and `mptcpstate_generate_configurations` through the C entry points.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mptcpstate_capi::fuzzing::offline(data));
