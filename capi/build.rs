//! Sets the soname of `libmptcpstate.so`.
//!
//! The soname's major number is the generation of the C ABI, independent of the crate
//! version: bump it (here, in `capi/install.sh` and in `tests/c/check_library.sh`) only
//! when a change breaks existing C callers (a removed function, a changed signature or
//! code).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only ELF targets know sonames; the library is Linux-only, but `cargo check` for
    // another target should not fail on a linker flag.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmptcpstate.so.1");
    }
}
