//! The body of the fuzz target `capi_offline` (`rust/fuzz/`), here so that the target and
//! the replay of its findings (the test below, plain `cargo test`) run the same code. Not
//! part of the C ABI: nothing here is exported from the shared library.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use crate::flags::MPTCPSTATE_FLAG_YAML_OUTPUT;
use crate::offline::{mptcpstate_format, mptcpstate_generate_configurations};
use crate::result::mptcpstate_result;
use crate::strings::mptcpstate_cstring_free;

type Offline = unsafe extern "C" fn(
    u32,
    *const c_char,
    *mut *mut c_char,
    *mut *mut c_char,
    *mut *mut c_char,
    *mut *mut c_char,
) -> mptcpstate_result;

/// Takes the output string, checks it is UTF-8, frees it.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
unsafe fn take(s: *mut c_char, what: &str) -> Option<String> {
    if s.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string this library returned.
    let text = unsafe { CStr::from_ptr(s) }.to_str().map(str::to_owned);
    // SAFETY: returned by this library, freed once.
    unsafe { mptcpstate_cstring_free(s) };
    match text {
        Ok(t) => Some(t),
        Err(e) => panic!("{what} is not UTF-8: {e}"),
    }
}

/// Calls `mptcpstate_format` and `mptcpstate_generate_configurations`, JSON and YAML
/// output, with `data` up to its first NUL byte as the C string `state`: every call must
/// return a defined code other than `Bug`, the main output exactly on success, the error
/// kind and message exactly on failure, always a log; every string is freed. The last
/// call passes NULL for every optional out-parameter. Any failure panics.
pub fn offline(data: &[u8]) {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(state) = CString::new(&data[..end]) else {
        return;
    };
    let calls: [(&str, Offline, u32); 4] = [
        ("format", mptcpstate_format, 0),
        ("format", mptcpstate_format, MPTCPSTATE_FLAG_YAML_OUTPUT),
        (
            "generate_configurations",
            mptcpstate_generate_configurations,
            0,
        ),
        (
            "generate_configurations",
            mptcpstate_generate_configurations,
            MPTCPSTATE_FLAG_YAML_OUTPUT,
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, call, flags) in calls {
        let (mut out, mut log, mut kind, mut msg) = (
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        // SAFETY: a NUL-terminated input and four writable out-parameters.
        let rc = unsafe {
            call(
                flags,
                state.as_ptr(),
                &mut out,
                &mut log,
                &mut kind,
                &mut msg,
            )
        };
        // SAFETY: each is NULL or returned by this call, taken once.
        let (out, log, kind, msg) = unsafe {
            (
                take(out, "the output"),
                take(log, "the log"),
                take(kind, "err_kind"),
                take(msg, "err_msg"),
            )
        };
        assert_ne!(rc, mptcpstate_result::Bug, "{name}: Bug: {msg:?}");
        assert!(
            log.is_some_and(|l| l.starts_with('[')),
            "{name}: no log array"
        );
        if rc == mptcpstate_result::Ok {
            assert!(
                out.is_some() && kind.is_none() && msg.is_none(),
                "{name}: Ok"
            );
        } else {
            assert!(out.is_none(), "{name}: an output with {rc:?}");
            assert!(
                kind.is_some() && msg.is_some(),
                "{name}: {rc:?} without kind and message"
            );
        }
        outcomes.push(rc);
    }
    // format and generate_configurations parse the same way: an input format refuses,
    // generate_configurations refuses alike; a valid state has keyfiles unless it holds
    // what a profile cannot express (`mptcp-port`: NotSupported).
    let (format, gc) = (outcomes[0], outcomes[2]);
    assert!(
        gc == format || (format == mptcpstate_result::Ok && gc == mptcpstate_result::NotSupported),
        "format {format:?}, generate_configurations {gc:?}"
    );
    let mut out = ptr::null_mut();
    // SAFETY: a NUL-terminated input, one writable out-parameter, NULL for the others.
    let rc = unsafe {
        mptcpstate_format(
            0,
            state.as_ptr(),
            &mut out,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    // SAFETY: NULL or returned by this call, taken once.
    let out = unsafe { take(out, "the output") };
    assert_eq!(rc, outcomes[0], "format with NULL out-parameters");
    assert_eq!(out.is_some(), rc == mptcpstate_result::Ok);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays the inputs the fuzzer found (`rust/fuzz/regressions/capi_offline/`) and the
    /// seeds, without a fuzzer.
    #[test]
    fn replay_findings() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rust/fuzz");
        let mut n = 0;
        for dir in ["regressions/capi_offline", "seeds/state"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                if let Ok(data) = std::fs::read(e.path()) {
                    super::offline(&data);
                    n += 1;
                }
            }
        }
        assert!(n > 0, "no seed or finding under {}", root.display());
    }
}
