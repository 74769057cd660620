//! Running one core call from Python.
//!
//! Every binding function (format and generate_configurations today, show, apply,
//! commit and rollback later) goes through [`run`], so the GIL, the log and the errors
//! are handled one way.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mptcpstate::{Error, Log};
use pyo3::prelude::*;

use crate::{errors, logging};

/// Runs `call` with a fresh [`Log`] and the GIL released (other Python threads run
/// meanwhile), then sends the call's log records to `logging` and turns an error into
/// the exception of its kind. A panic in the core becomes `BugError`; it never unwinds
/// into Python.
///
/// `call` gets no Python objects: everything it needs is converted and owned first.
pub(crate) fn run<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    F: FnOnce(&Log) -> mptcpstate::Result<T> + Send,
    T: Send,
{
    let log = Log::new();
    let result = py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| call(&log))).unwrap_or_else(|panic| {
            Err(Error::bug(format!(
                "internal error (panic: {}); please report it",
                panic_message(&*panic)
            )))
        })
    });
    let logged = logging::emit(py, &log.records());
    // The core's error wins over a failing log handler's.
    let value = result.map_err(|e| errors::to_py_err(py, &e))?;
    logged?;
    Ok(value)
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "no message"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_kept() {
        let p = catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(panic_message(&*p), "boom 1");
        let p = catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(&*p), "no message");
    }
}
