//! `show`: the current state of the calling thread's network namespace.

use std::ffi::c_char;

use crate::call::run_call;
use crate::flags::{Flags, MPTCPSTATE_FLAG_KERNEL_ONLY};
use crate::result::mptcpstate_result;
use crate::strings::OutString;

/// Reads the current state: every interface of the calling thread's network namespace
/// (sorted by name) with its addresses and their MPTCP endpoint flags, and the host-wide
/// MPTCP knobs; from the kernel over netlink and NetworkManager over D-Bus, or the kernel
/// only with `MPTCPSTATE_FLAG_KERNEL_ONLY`. The output is valid input: applying it
/// unchanged changes nothing.
///
/// - `flags`: `MPTCPSTATE_FLAG_KERNEL_ONLY`, `MPTCPSTATE_FLAG_YAML_OUTPUT` (YAML instead
///   of JSON); the other defined flags are ignored; undefined bits return
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `state`: receives the state on success. Required: NULL returns
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `log`: receives the log records of this call, a JSON array of
///   `{"time","level","target","message"}`, on success and on error. May be NULL.
/// - `err_kind`, `err_msg`: on error, receive the kind's name and a message; NULL on
///   success. Each may be NULL.
///
/// Errors: `MPTCPSTATE_RESULT_NETWORK_MANAGER` when NetworkManager is not running (use
/// `MPTCPSTATE_FLAG_KERNEL_ONLY` on hosts without it), `MPTCPSTATE_RESULT_NOT_SUPPORTED`
/// for NetworkManager older than 1.40, `MPTCPSTATE_RESULT_PERMISSION_DENIED` without
/// CAP_NET_ADMIN (reading MPTCP endpoints needs it), `MPTCPSTATE_RESULT_KERNEL`.
///
/// Every non-NULL out-parameter is set to NULL on entry. Every string returned is owned
/// by the caller and must be freed with `mptcpstate_cstring_free`.
///
/// # Safety
/// Each out-parameter is NULL or valid for writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_show(
    flags: u32,
    state: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let state = OutString::new(state);
            let flags = Flags::check(flags)?;
            state.required("state")?;
            let opts = mptcpstate::ShowOptions {
                kernel_only: flags.has(MPTCPSTATE_FLAG_KERNEL_ONLY),
                interfaces: Vec::new(),
            };
            state.set(mptcpstate::show(&opts, log)?.to_text(flags.output_format())?)
        })
    }
}

/// Diagnoses why MPTCP would stay on one path in the calling thread's network namespace:
/// reads the kernel (endpoints, limits, sysctls, counters, MPTCP sockets) and, unless
/// `MPTCPSTATE_FLAG_KERNEL_ONLY`, what NetworkManager applied, and returns the findings.
///
/// - `flags`: `MPTCPSTATE_FLAG_KERNEL_ONLY`, `MPTCPSTATE_FLAG_YAML_OUTPUT` (YAML instead
///   of JSON); the other defined flags are ignored; undefined bits return
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `report`: receives the findings on success: an array of
///   `{"code","severity","interface"?,"address"?,"message","fix":{"state"?,"command"?}}`,
///   most severe first (`severity`: `error`, `warning`, `info`); `[]` when nothing keeps
///   MPTCP from using its paths. Findings are the result, not errors: the call succeeds
///   whatever it finds. Required: NULL returns `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `log`: receives the log records of this call, a JSON array of
///   `{"time","level","target","message"}`, on success and on error. May be NULL.
/// - `err_kind`, `err_msg`: on error, receive the kind's name and a message; NULL on
///   success. Each may be NULL.
///
/// Errors: `MPTCPSTATE_RESULT_PERMISSION_DENIED`, `MPTCPSTATE_RESULT_KERNEL` when the
/// kernel cannot be read. A NetworkManager that does not answer is not an error: its
/// findings are left out and the log says so.
///
/// Every non-NULL out-parameter is set to NULL on entry. Every string returned is owned
/// by the caller and must be freed with `mptcpstate_cstring_free`.
///
/// # Safety
/// Each out-parameter is NULL or valid for writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_check(
    flags: u32,
    report: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let report = OutString::new(report);
            let flags = Flags::check(flags)?;
            report.required("report")?;
            let opts = mptcpstate::CheckOptions {
                kernel_only: flags.has(MPTCPSTATE_FLAG_KERNEL_ONLY),
                interfaces: Vec::new(),
            };
            let found = mptcpstate::check(&opts, log)?;
            let text = match flags.output_format() {
                mptcpstate::OutputFormat::Json => found.findings_json()?,
                mptcpstate::OutputFormat::Yaml => found.findings_yaml()?,
            };
            report.set(text)
        })
    }
}
