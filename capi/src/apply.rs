//! `apply`, and the commit and rollback of the checkpoint a no-commit apply leaves.
//!
//! These functions only convert arguments: every rule (which options go together, what a
//! NULL checkpoint means, the last checkpoint remembered) is the core's.

use std::ffi::c_char;

use mptcpstate::{Error, Result};

use crate::call::run_call;
use crate::flags::{
    Flags, MPTCPSTATE_FLAG_DRY_RUN, MPTCPSTATE_FLAG_KERNEL_ONLY, MPTCPSTATE_FLAG_MEMORY_ONLY,
    MPTCPSTATE_FLAG_NO_COMMIT, MPTCPSTATE_FLAG_NO_VERIFY,
};
use crate::result::mptcpstate_result;
use crate::strings::{input, OutString};

/// Reads an optional input string: NULL is `None`; non-UTF-8 is `InvalidArgument` naming
/// the argument.
///
/// # Safety
/// As [`input`].
unsafe fn optional_input<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from this function's contract; `ptr` is not NULL.
    match unsafe { input(ptr, name) } {
        Ok(text) => Ok(Some(text)),
        Err(e) => Err(Error::new(e.kind(), format!("{name}: {}", e.msg()))),
    }
}

/// Applies a state (JSON or YAML, detected) to the calling thread's network namespace,
/// transactionally: the input is parsed and validated before anything is touched; only
/// the interfaces and host knobs whose desired state does not hold already are changed
/// (through NetworkManager under a checkpoint over their devices, or with
/// `MPTCPSTATE_FLAG_KERNEL_ONLY` over netlink, after recording the kernel state they
/// had); the result is verified against the kernel; then the change is committed, or on
/// any failure rolled back and the first error returned.
///
/// - `flags`: any of `MPTCPSTATE_FLAG_KERNEL_ONLY` (netlink instead of NetworkManager:
///   addresses, links, endpoints with per-address flags and ports; runtime state only),
///   `MPTCPSTATE_FLAG_NO_VERIFY` (do not verify against the kernel),
///   `MPTCPSTATE_FLAG_NO_COMMIT` (keep the checkpoint and return its path),
///   `MPTCPSTATE_FLAG_MEMORY_ONLY` (profiles in NetworkManager's memory only, not on
///   disk), `MPTCPSTATE_FLAG_DRY_RUN` (validate, read and plan, write nothing; no
///   checkpoint; `mptcpstate_apply_plan` returns the plan); `MPTCPSTATE_FLAG_YAML_OUTPUT`
///   is ignored; undefined bits return
///   `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `state`: the desired state, NUL-terminated UTF-8; borrowed, not freed. NULL or
///   non-UTF-8 returns `MPTCPSTATE_RESULT_INVALID_ARGUMENT`.
/// - `rollback_timeout`: with `MPTCPSTATE_FLAG_NO_COMMIT`, seconds after which the change
///   is rolled back by itself unless it is committed (60 is the usual value), even if the
///   calling process is gone; 0 for never, which is refused
///   (`MPTCPSTATE_RESULT_INVALID_ARGUMENT`) together with `MPTCPSTATE_FLAG_NO_COMMIT`.
/// - `checkpoint`: with `MPTCPSTATE_FLAG_NO_COMMIT`, receives the checkpoint on success,
///   for `mptcpstate_checkpoint_commit` or `mptcpstate_checkpoint_rollback` (from this
///   process or any other in the same network namespace): NetworkManager's checkpoint
///   path (`/org/freedesktop/NetworkManager/Checkpoint/N`), or the path of the library's
///   undo record (`/run/mptcpstate/...`: kernel-only mode, or host knobs only); NULL
///   otherwise, and when nothing had to change. May be NULL: the library remembers the
///   checkpoint all the same, and commit or rollback with a NULL checkpoint take it.
/// - `log`: receives the log records of this call, a JSON array of
///   `{"time","level","target","message"}`, on success and on error. May be NULL.
/// - `err_kind`, `err_msg`: on error, receive the kind's name (`"InvalidArgument"`...)
///   and a message; NULL on success. Each may be NULL.
///
/// Errors: `MPTCPSTATE_RESULT_INVALID_ARGUMENT` for bad input (nothing was touched),
/// `MPTCPSTATE_RESULT_VERIFICATION` when the kernel did not reach the state (rolled
/// back), `MPTCPSTATE_RESULT_BUSY` when another checkpoint holds a device this apply
/// needs, `MPTCPSTATE_RESULT_NETWORK_MANAGER`, `MPTCPSTATE_RESULT_NOT_SUPPORTED`,
/// `MPTCPSTATE_RESULT_PERMISSION_DENIED`, `MPTCPSTATE_RESULT_KERNEL`,
/// `MPTCPSTATE_RESULT_TIMEOUT`.
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
pub unsafe extern "C" fn mptcpstate_apply(
    flags: u32,
    state: *const c_char,
    rollback_timeout: u32,
    checkpoint: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: the same contract; a NULL `plan` is allowed and not written.
    unsafe {
        mptcpstate_apply_plan(
            flags,
            state,
            rollback_timeout,
            checkpoint,
            std::ptr::null_mut(),
            log,
            err_kind,
            err_msg,
        )
    }
}

fn options(flags: Flags, rollback_timeout: u32) -> mptcpstate::ApplyOptions {
    mptcpstate::ApplyOptions {
        kernel_only: flags.has(MPTCPSTATE_FLAG_KERNEL_ONLY),
        verify: !flags.has(MPTCPSTATE_FLAG_NO_VERIFY),
        commit: !flags.has(MPTCPSTATE_FLAG_NO_COMMIT),
        rollback_timeout,
        memory_only: flags.has(MPTCPSTATE_FLAG_MEMORY_ONLY),
        dry_run: flags.has(MPTCPSTATE_FLAG_DRY_RUN),
        ..Default::default()
    }
}

/// `mptcpstate_apply` that also returns the plan: with `MPTCPSTATE_FLAG_DRY_RUN` what
/// the apply would do (nothing is written, `checkpoint` stays NULL), else what it did.
///
/// - `flags`, `state`, `rollback_timeout`, `checkpoint`, `log`, `err_kind`, `err_msg`:
///   as for `mptcpstate_apply`.
/// - `plan`: on success, receives the plan as JSON: `{"interfaces": [{"name",
///   "actions": ["profile-updated", "reapply", ...], "before": {KEY: VALUE},
///   "after": {KEY: VALUE}}], "host": [{"key", "before", "after"}]}`; both lists empty
///   when nothing changes (would change). NULL on error. May be NULL.
///
/// Every non-NULL out-parameter is set to NULL on entry. Every string returned is owned
/// by the caller and must be freed with `mptcpstate_cstring_free`.
///
/// Returns `MPTCPSTATE_RESULT_OK` or the error's code (as `mptcpstate_apply`).
///
/// # Safety
/// `state` is NULL or a NUL-terminated string; each out-parameter is NULL or valid for
/// writing a `char *`.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn mptcpstate_apply_plan(
    flags: u32,
    state: *const c_char,
    rollback_timeout: u32,
    checkpoint: *mut *mut c_char,
    plan: *mut *mut c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: `state` and the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let checkpoint = OutString::new(checkpoint);
            let plan = OutString::new(plan);
            let flags = Flags::check(flags)?;
            let state = input(state, "state")?;
            let outcome = mptcpstate::apply(state, &options(flags, rollback_timeout), log)?;
            if plan.wanted() {
                plan.set(outcome.plan.to_json())?;
            }
            match outcome.checkpoint {
                Some(path) => checkpoint.set(path),
                None => Ok(()),
            }
        })
    }
}

/// Commits a checkpoint that `mptcpstate_apply` left with `MPTCPSTATE_FLAG_NO_COMMIT`:
/// the applied state stays, and nothing rolls it back any more.
///
/// - `checkpoint`: the checkpoint `mptcpstate_apply` returned, NUL-terminated UTF-8;
///   borrowed, not freed. NULL for the last one this process left open, else the newest
///   pending in this network namespace, else NetworkManager's newest; with none pending,
///   nothing changes and `MPTCPSTATE_RESULT_OK` is returned (the log says so). Anything
///   that is not a checkpoint path, or non-UTF-8, returns
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
/// `checkpoint` is NULL or a NUL-terminated string; each out-parameter is NULL or valid
/// for writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_checkpoint_commit(
    checkpoint: *const c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: `checkpoint` and the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let checkpoint = optional_input(checkpoint, "checkpoint")?;
            mptcpstate::commit(checkpoint, log).map(|_| ())
        })
    }
}

/// Rolls back a checkpoint that `mptcpstate_apply` left with `MPTCPSTATE_FLAG_NO_COMMIT`:
/// everything that apply changed returns to what it was (NetworkManager's devices and
/// profiles, the kernel-only changes, the host knobs).
///
/// - `checkpoint`: as for `mptcpstate_checkpoint_commit`; with none pending, nothing
///   changes and `MPTCPSTATE_RESULT_OK` is returned (the log says so).
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
/// `checkpoint` is NULL or a NUL-terminated string; each out-parameter is NULL or valid
/// for writing a `char *`.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_checkpoint_rollback(
    checkpoint: *const c_char,
    log: *mut *mut c_char,
    err_kind: *mut *mut c_char,
    err_msg: *mut *mut c_char,
) -> mptcpstate_result {
    // SAFETY: `checkpoint` and the out-parameters are as this function's contract says.
    unsafe {
        run_call(log, err_kind, err_msg, |log| {
            let checkpoint = optional_input(checkpoint, "checkpoint")?;
            mptcpstate::rollback(checkpoint, log).map(|_| ())
        })
    }
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
        // SAFETY: `s` was returned by the library and is freed once, here.
        unsafe {
            let text = CStr::from_ptr(s).to_string_lossy().into_owned();
            mptcpstate_cstring_free(s);
            Some(text)
        }
    }

    /// Calls `mptcpstate_apply`: (code, checkpoint, err_kind, err_msg).
    fn apply(
        flags: u32,
        state: *const c_char,
        timeout: u32,
    ) -> (mptcpstate_result, Option<String>, Option<String>, String) {
        let stale = ptr::NonNull::<c_char>::dangling().as_ptr();
        let (mut cp, mut log, mut kind, mut msg) = (stale, stale, stale, stale);
        // SAFETY: four writable locals; `state` is NULL or NUL-terminated.
        let code = unsafe {
            mptcpstate_apply(
                flags, state, timeout, &mut cp, &mut log, &mut kind, &mut msg,
            )
        };
        assert!(cp != stale && log != stale && kind != stale && msg != stale);
        assert!(take(log).is_some_and(|l| l.starts_with('[')));
        (code, take(cp), take(kind), take(msg).unwrap_or_default())
    }

    #[test]
    fn apply_plan_sets_no_plan_on_error() {
        let stale = ptr::NonNull::<c_char>::dangling().as_ptr();
        let (mut cp, mut plan, mut log, mut kind, mut msg) = (stale, stale, stale, stale, stale);
        // SAFETY: five writable locals; the state is NUL-terminated.
        let code = unsafe {
            mptcpstate_apply_plan(
                MPTCPSTATE_FLAG_DRY_RUN,
                c"interfaces: [{name: eth1, bogus: 1}]".as_ptr(),
                60,
                &mut cp,
                &mut plan,
                &mut log,
                &mut kind,
                &mut msg,
            )
        };
        assert_eq!(code, mptcpstate_result::InvalidArgument);
        assert!(plan.is_null() && cp.is_null());
        assert_eq!(take(kind).as_deref(), Some("InvalidArgument"));
        assert!(take(msg).is_some_and(|m| m.contains("bogus")));
        assert!(take(log).is_some());
    }

    #[test]
    fn apply_refuses_bad_arguments_before_the_core() {
        let (code, cp, kind, msg) = apply(0, ptr::null(), 60);
        assert_eq!(code, mptcpstate_result::InvalidArgument);
        assert_eq!((cp, kind.as_deref()), (None, Some("InvalidArgument")));
        assert!(msg.starts_with("state: NULL"), "{msg}");

        let (code, _, _, msg) = apply(0, c"a: \xff".as_ptr(), 60);
        assert_eq!(code, mptcpstate_result::InvalidArgument);
        assert!(msg.contains("UTF-8"), "{msg}");

        let (code, _, _, msg) = apply(1 << 9, c"{}".as_ptr(), 60);
        assert_eq!(code, mptcpstate_result::InvalidArgument);
        assert!(msg.contains("unknown bits 0x200"), "{msg}");

        let (code, _, _, msg) = apply(0, c"interfaces: [{name: eth1, bogus: 1}]".as_ptr(), 60);
        assert_eq!(code, mptcpstate_result::InvalidArgument);
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn checkpoint_argument() {
        // SAFETY: NULL is allowed.
        let none = unsafe { optional_input(ptr::null(), "checkpoint") };
        assert_eq!(none, Ok(None));
        let good = b"/org/freedesktop/NetworkManager/Checkpoint/1\0";
        // SAFETY: NUL-terminated static bytes.
        let got = unsafe { optional_input(good.as_ptr().cast(), "checkpoint") };
        assert_eq!(
            got,
            Ok(Some("/org/freedesktop/NetworkManager/Checkpoint/1"))
        );
        let bad = b"/org/\xfe\0";
        // SAFETY: NUL-terminated static bytes.
        match unsafe { optional_input(bad.as_ptr().cast(), "checkpoint") } {
            Ok(_) => panic!("non-UTF-8 accepted"),
            Err(e) => {
                assert_eq!(e.kind(), mptcpstate::ErrorKind::InvalidArgument);
                assert!(e.msg().starts_with("checkpoint: "), "{}", e.msg());
                assert!(e.msg().contains("UTF-8"), "{}", e.msg());
            }
        }

        for f in [mptcpstate_checkpoint_commit, mptcpstate_checkpoint_rollback] {
            let stale = ptr::NonNull::<c_char>::dangling().as_ptr();
            let (mut log, mut kind, mut msg) = (stale, stale, stale);
            // SAFETY: three writable locals; `bad` is NUL-terminated.
            let code = unsafe { f(bad.as_ptr().cast(), &mut log, &mut kind, &mut msg) };
            assert_eq!(code, mptcpstate_result::InvalidArgument);
            assert!(take(log).is_some());
            assert_eq!(take(kind).as_deref(), Some("InvalidArgument"));
            assert!(take(msg).is_some_and(|m| m.starts_with("checkpoint: ")));
        }
    }
}
