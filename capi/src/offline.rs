//! Calls that read only their input and touch nothing on the system: `format` and
//! `generate_configurations`.

use std::ffi::c_char;

use crate::call::run_call;
use crate::flags::Flags;
use crate::result::mptcpstate_result;
use crate::strings::{input, OutString};

/// Parses and validates a state (JSON or YAML, detected) and prints it in canonical
/// form: JSON, or YAML with `MPTCPSTATE_FLAG_YAML_OUTPUT`. Touches nothing on the system.
///
/// - `flags`: `MPTCPSTATE_FLAG_YAML_OUTPUT` or 0; the other defined flags are ignored;
///   undefined bits return `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `state`: the input, NUL-terminated UTF-8; borrowed, not freed. NULL or non-UTF-8
///   returns `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `formatted`: receives the canonical text on success. Required: NULL returns
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `log`: receives the log records of this call, a JSON array of
///   `{"time","level","target","message"}`, on success and on error. May be NULL.
/// - `err_kind`, `err_msg`: on error, receive the kind's name (`"InvalidArgument"`...)
///   and a message; NULL on success. Each may be NULL.
///
/// Every non-NULL out-parameter is set to NULL on entry. Every string returned is owned
/// by the caller and must be freed with `mptcpstate_cstring_free`.
///
/// Returns `MPTCPSTATE_RESULT_OK` or the error's code.
///
/// # Safety
/// `state` is NULL or a NUL-terminated string; each out-parameter is NULL or valid for
/// writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_format(
    flags: u32,
    state: *const c_char,
    formatted: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: `state` and the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let formatted = OutString::new(formatted);
            let flags = Flags::check(flags)?;
            let state = input(state, "state")?;
            formatted.required("formatted")?;
            formatted.set(mptcpstate::format(state, flags.output_format(), log)?)
        })
    }
}

/// Parses and validates a state and returns the configuration files it stands for,
/// without touching the system: `{"NetworkManager": [["<name>.nmconnection",
/// "<keyfile>"], ...]}`, in JSON, or YAML with `MPTCPSTATE_FLAG_YAML_OUTPUT`.
/// The same input always gives the same bytes.
///
/// - `flags`: `MPTCPSTATE_FLAG_YAML_OUTPUT` or 0; the other defined flags are ignored;
///   undefined bits return `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `state`: the input, NUL-terminated UTF-8; borrowed, not freed. NULL or non-UTF-8
///   returns `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `configs`: receives the files on success. Required: NULL returns
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `log`: receives the log records of this call, a JSON array of
///   `{"time","level","target","message"}`, on success and on error. May be NULL.
/// - `err_kind`, `err_msg`: on error, receive the kind's name (`"InvalidArgument"`...)
///   and a message; NULL on success. Each may be NULL.
///
/// Every non-NULL out-parameter is set to NULL on entry. Every string returned is owned
/// by the caller and must be freed with `mptcpstate_cstring_free`.
///
/// Returns `MPTCPSTATE_RESULT_OK` or the error's code.
///
/// # Safety
/// `state` is NULL or a NUL-terminated string; each out-parameter is NULL or valid for
/// writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_generate_configurations(
    flags: u32,
    state: *const c_char,
    configs: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: `state` and the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let configs = OutString::new(configs);
            let flags = Flags::check(flags)?;
            let state = input(state, "state")?;
            configs.required("configs")?;
            let generated = mptcpstate::generate_configurations(state, log)?;
            configs.set(generated.to_text(flags.output_format())?)
        })
    }
}
