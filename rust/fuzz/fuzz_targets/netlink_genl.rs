//! A datagram on the library's genl netlink socket, decoded as the readers decode it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mptcpstate::fuzzing::genl(data);
});
