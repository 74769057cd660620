//! The frame of every exported function: the panic boundary, the per-call log, and the
//! error out-parameters.
//!
//! An exported function's body is a closure given to [`guard`] (functions that report
//! nothing) or [`run_call`] (functions with `log`, `err_kind`, `err_msg`). Both catch a
//! panic so that it never unwinds into C; `run_call` turns it into `Bug` with the panic's
//! message. The functions themselves stay plain `extern "C"` items so cbindgen sees their
//! signatures.

use std::any::Any;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mptcpstate::{Error, Level, Log, Result};

use crate::result::mptcpstate_result;
use crate::strings::OutString;

/// Runs `body`; if it panics, returns `on_panic(message)` instead of unwinding.
pub(crate) fn guard<T>(on_panic: impl FnOnce(String) -> T, body: impl FnOnce() -> T) -> T {
    // AssertUnwindSafe: after a panic nothing the body touched is used again except the
    // per-call `Log`, whose lock recovers from poisoning.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => on_panic(panic_message(payload.as_ref())),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let what = if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "(no message)"
    };
    format!("internal error: a panic was caught at the C boundary: {what}; please report it")
}

/// Runs one call of the C ABI.
///
/// On entry, `*log`, `*err_kind` and `*err_msg` are set to NULL (each may be NULL: not
/// wanted). `body` gets the call's own [`Log`] and runs inside the panic boundary; it
/// takes its other out-parameters as [`OutString`] first (which NULLs them) and sets them
/// last, on success. Afterwards `*log` gets the call's records as a JSON array (on success
/// and on error), and on error `*err_kind` and `*err_msg` get the kind's name and the
/// message. The return value is the result code.
///
/// The reporting around `body` cannot panic either (no indexing, no unwrap, lossy string
/// conversions); an outer [`guard`] still makes sure that if it ever did, the caller gets
/// `Bug` rather than an unwind into C.
///
/// # Safety
/// `log`, `err_kind` and `err_msg` are each NULL or valid for writing a pointer.
pub(crate) unsafe fn run_call(
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
    body: impl FnOnce(&Log) -> Result<()>,
) -> mptcpstate_result {
    guard(
        |_| mptcpstate_result::Bug,
        || {
            // SAFETY: forwarded from this function's contract.
            let (log_out, kind_out, msg_out) = unsafe {
                (
                    OutString::new(log),
                    OutString::new(err_kind),
                    OutString::new(err_msg),
                )
            };
            let records = Log::new();
            let outcome = guard(
                |msg| {
                    records.push(Level::Error, "mptcpstate::capi", msg.as_str());
                    Err(Error::bug(msg))
                },
                || body(&records),
            );
            // Nothing below can panic: serializing the log falls back to "[]", and the
            // lossy setters replace NUL bytes instead of failing.
            log_out.set_lossy(&records.to_json());
            match outcome {
                Ok(()) => mptcpstate_result::Ok,
                Err(e) => {
                    kind_out.set_lossy(e.kind().name());
                    msg_out.set_lossy(e.msg());
                    e.kind().into()
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;
    use std::ptr;

    use super::*;
    use crate::strings::mptcpstate_cstring_free;

    /// Takes a string the library returned, or None for NULL, and frees it.
    fn take(s: *mut c_char) -> Option<String> {
        if s.is_null() {
            return None;
        }
        // SAFETY: `s` was returned by `run_call` and is freed once, here.
        unsafe {
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            mptcpstate_cstring_free(s);
            Some(text)
        }
    }

    #[test]
    fn a_panic_becomes_bug_with_its_message() {
        let (mut log, mut kind, mut msg) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        // SAFETY: three writable locals.
        let code = unsafe {
            run_call(&mut log, &mut kind, &mut msg, |log| {
                log.push(Level::Info, "test", "before the panic");
                panic!("boom {}", 42)
            })
        };
        assert_eq!(code, mptcpstate_result::Bug);
        assert_eq!(take(kind).as_deref(), Some("Bug"));
        let msg = take(msg).unwrap_or_default();
        assert!(msg.contains("panic") && msg.contains("boom 42"), "{msg}");
        let log = take(log).unwrap_or_default();
        assert!(
            log.contains("before the panic") && log.contains("boom 42"),
            "{log}"
        );
    }

    #[test]
    fn a_panic_with_a_static_message_and_no_out_params() {
        // SAFETY: NULL out-params are allowed.
        let code = unsafe {
            run_call(ptr::null_mut(), ptr::null_mut(), ptr::null_mut(), |_| {
                panic!("static")
            })
        };
        assert_eq!(code, mptcpstate_result::Bug);
    }

    #[test]
    fn guard_returns_the_fallback() {
        assert!(guard(|m| m, || -> String { panic!("x") }).contains(": x;"));
        assert_eq!(guard(|_| 1, || 2), 2);
    }

    #[test]
    fn success_and_error() {
        let stale = ptr::NonNull::<c_char>::dangling().as_ptr();
        let (mut log, mut kind, mut msg) = (stale, stale, stale);
        // SAFETY: three writable locals.
        let code = unsafe { run_call(&mut log, &mut kind, &mut msg, |_| Ok(())) };
        assert_eq!(code, mptcpstate_result::Ok);
        assert!(kind.is_null() && msg.is_null());
        assert_eq!(take(log).as_deref(), Some("[]"));

        let (mut log, mut kind, mut msg) = (stale, stale, stale);
        // SAFETY: three writable locals.
        let code = unsafe {
            run_call(&mut log, &mut kind, &mut msg, |_| {
                Err(Error::new(mptcpstate::ErrorKind::Busy, "held"))
            })
        };
        assert_eq!(code, mptcpstate_result::Busy);
        assert_eq!(take(kind).as_deref(), Some("Busy"));
        assert_eq!(take(msg).as_deref(), Some("held"));
        assert_eq!(take(log).as_deref(), Some("[]"));
    }
}
