//! Strings across the boundary: C string inputs, owned output strings, and their release.
//!
//! Every string this library hands out is a `CString` given up with `into_raw`, so
//! `mptcpstate_cstring_free` (`CString::from_raw`) is the one way to free it.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use mptcpstate::{Error, Result};

use crate::call::guard;

/// Reads a NUL-terminated input string.
///
/// NULL and non-UTF-8 input are `InvalidArgument`; the UTF-8 check is the core's, so the
/// C, Python and CLI faces say the same.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for
/// `'a`.
pub(crate) unsafe fn input<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid(format!(
            "{name}: NULL given; a string is required"
        )));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    mptcpstate::input_from_bytes(bytes)
}

/// An out-parameter for a string: `char **` that may be NULL (not wanted).
///
/// Creating one sets the caller's pointer to NULL, so that on any failure the caller
/// holds NULL and never a stale value. A string is written only by [`OutString::set`],
/// which the calls use last, on success.
pub(crate) struct OutString {
    target: *mut *mut c_char,
}

impl OutString {
    /// Takes an out-parameter and sets `*target` to NULL when `target` is not NULL.
    ///
    /// # Safety
    /// `target` is NULL or valid for writing a pointer as long as the `OutString` lives.
    pub(crate) unsafe fn new(target: *mut *mut c_char) -> Self {
        if !target.is_null() {
            // SAFETY: non-NULL and writable by the caller's contract.
            unsafe { target.write(ptr::null_mut()) };
        }
        Self { target }
    }

    /// Whether the caller asked for this output (gave a non-NULL pointer).
    pub(crate) fn wanted(&self) -> bool {
        !self.target.is_null()
    }

    /// For a function's main output, which may not be NULL: `InvalidArgument` if it is.
    pub(crate) fn required(&self, name: &str) -> Result<()> {
        if self.target.is_null() {
            return Err(Error::invalid(format!(
                "{name}: NULL given; a pointer to receive the result is required"
            )));
        }
        Ok(())
    }

    /// Hands `value` to the caller (if wanted). A NUL byte inside `value` cannot be passed
    /// as a C string: that is a `Bug` (the outputs are JSON or YAML, which escape it), and
    /// nothing is written.
    pub(crate) fn set(&self, value: String) -> Result<()> {
        let c = CString::new(value).map_err(|e| {
            Error::bug(format!(
                "the output holds a NUL byte at offset {}; it cannot be a C string",
                e.nul_position()
            ))
        })?;
        self.write(c);
        Ok(())
    }

    /// Hands `value` to the caller (if wanted), with any NUL byte written as `\0`: for
    /// error messages and the log, which must always arrive.
    pub(crate) fn set_lossy(&self, value: &str) {
        let c = match CString::new(value) {
            Ok(c) => c,
            Err(_) => CString::new(value.replace('\0', "\\0")).unwrap_or_default(),
        };
        self.write(c);
    }

    fn write(&self, value: CString) {
        if !self.target.is_null() {
            // SAFETY: non-NULL and writable by the contract of `new`. The caller owns the
            // string from here and frees it with `mptcpstate_cstring_free`.
            unsafe { self.target.write(value.into_raw()) };
        }
    }
}

/// Frees a string returned by this library.
///
/// Ownership: `s` must be a string that a `mptcpstate_*` function returned through an
/// out-parameter, not yet freed; after the call it is invalid. Never pass strings from
/// elsewhere (or `mptcpstate_version()`), and never free these with `free()`.
///
/// NULL: `mptcpstate_cstring_free(NULL)` does nothing.
///
/// # Safety
/// `s` is NULL or a string returned by this library and not freed yet.
#[no_mangle]
pub unsafe extern "C" fn mptcpstate_cstring_free(s: *mut c_char) {
    guard(
        |_| (),
        || {
            if !s.is_null() {
                // SAFETY: by the contract, `s` came from `CString::into_raw` in this
                // library and is freed once.
                drop(unsafe { CString::from_raw(s) });
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_string_nulls_on_entry_and_sets() {
        let mut stale: *mut c_char = ptr::NonNull::dangling().as_ptr();
        // SAFETY: `stale` is a writable local that outlives `out`.
        let out = unsafe { OutString::new(&mut stale) };
        assert!(stale.is_null());
        assert!(out.set("a\nb".to_string()).is_ok());
        assert!(!stale.is_null());
        // SAFETY: just written by `set`, freed once.
        unsafe {
            assert_eq!(CStr::from_ptr(stale).to_bytes(), b"a\nb");
            mptcpstate_cstring_free(stale);
        }
    }

    #[test]
    fn nul_in_output_is_a_bug_and_nothing_is_written() {
        let mut target: *mut c_char = ptr::null_mut();
        // SAFETY: `target` is a writable local that outlives `out`.
        let out = unsafe { OutString::new(&mut target) };
        match out.set("a\0b".to_string()) {
            Ok(()) => panic!("a NUL byte passed"),
            Err(e) => assert_eq!(e.kind(), mptcpstate::ErrorKind::Bug),
        }
        assert!(target.is_null());
        out.set_lossy("a\0b");
        // SAFETY: just written by `set_lossy`, freed once.
        unsafe {
            assert_eq!(CStr::from_ptr(target).to_bytes(), b"a\\0b");
            mptcpstate_cstring_free(target);
        }
    }

    #[test]
    fn null_out_is_accepted_unless_required() {
        // SAFETY: NULL is allowed.
        let out = unsafe { OutString::new(ptr::null_mut()) };
        assert!(out.set("x".to_string()).is_ok());
        out.set_lossy("x");
        assert!(out.required("formatted").is_err());
    }

    #[test]
    fn null_and_non_utf8_input() {
        // SAFETY: NULL is allowed.
        match unsafe { input(ptr::null(), "state") } {
            Ok(_) => panic!("NULL accepted"),
            Err(e) => assert!(e.msg().starts_with("state: NULL"), "{}", e.msg()),
        }
        let bad = b"a\xffb\0";
        // SAFETY: NUL-terminated static bytes.
        match unsafe { input(bad.as_ptr().cast(), "state") } {
            Ok(_) => panic!("non-UTF-8 accepted"),
            Err(e) => assert!(e.msg().contains("UTF-8"), "{}", e.msg()),
        }
    }

    #[test]
    fn free_null_is_a_no_op() {
        // SAFETY: NULL is allowed.
        unsafe { mptcpstate_cstring_free(ptr::null_mut()) };
    }
}
