//! Running one core call from Python.
//!
//! Every binding function goes through [`run`] or, for the long calls that must honour
//! Ctrl-C (`apply`), [`run_interruptible`], so the GIL, the log and the errors are
//! handled one way.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mptcpstate::{Error, Log};
use pyo3::prelude::*;

use crate::{errors, logging};

/// How long [`run_interruptible`] waits, without the GIL, between two looks at Python's
/// pending signals.
const SIGNAL_SLICE: Duration = Duration::from_millis(100);

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
    let result = py.detach(|| guarded(|| call(&log)));
    finish(py, &log, result)
}

/// [`run`] for a call that may take long and must stop on Ctrl-C: `call` gets a cancel
/// flag, which it watches (the core's `ApplyOptions::cancel`).
///
/// `call` runs on a thread spawned here, from the calling thread: a new thread starts in
/// its creator's network namespace, and the core works in the namespace of the thread it
/// runs on, so the call sees what the caller would. The calling thread waits for it in
/// slices of [`SIGNAL_SLICE`] with the GIL released and, between slices, lets Python run
/// its signal handlers. When one raises (`KeyboardInterrupt`), the flag is set, the call
/// is waited for until it has stopped (it rolls back what it did), its log records are
/// logged, and that exception is raised, with the call's own error, if any, as its
/// `__context__`.
pub(crate) fn run_interruptible<T, F>(py: Python<'_>, call: F) -> PyResult<T>
where
    F: FnOnce(&Log, Arc<AtomicBool>) -> mptcpstate::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let log = Log::new();
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::channel();
    let worker = {
        let (log, cancel) = (log.clone(), Arc::clone(&cancel));
        std::thread::Builder::new()
            .name("mptcpstate-call".into())
            .spawn(move || {
                // The caller only stops listening after a result or a panic of its own.
                let _ = tx.send(guarded(|| call(&log, cancel)));
            })?
    };
    let mut interrupted: Option<PyErr> = None;
    let result =
        loop {
            // `Receiver` is not `Sync`: it moves into the GIL-free closure and back.
            let (received, back) = py.detach(move || (rx.recv_timeout(SIGNAL_SLICE), rx));
            rx = back;
            match received {
                Ok(result) => break result,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals() {
                            cancel.store(true, Ordering::SeqCst);
                            interrupted = Some(e);
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break Err(Error::bug(
                    "internal error: the call's thread ended without a result; please report it",
                )),
            }
        };
    // The thread has sent its result (or died): joining takes no time.
    let _ = py.detach(move || worker.join());
    match interrupted {
        None => finish(py, &log, result),
        Some(interrupt) => {
            let logged = logging::emit(py, &log.records());
            if let Err(e) = result {
                interrupt.set_context(py, Some(errors::to_py_err(py, &e)));
            } else if let Err(e) = logged {
                interrupt.set_context(py, Some(e));
            }
            Err(interrupt)
        }
    }
}

/// Runs `call`, turning a panic into a `Bug` error.
fn guarded<T>(call: impl FnOnce() -> mptcpstate::Result<T>) -> mptcpstate::Result<T> {
    catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        Err(Error::bug(format!(
            "internal error (panic: {}); please report it",
            panic_message(&*panic)
        )))
    })
}

/// Logs the call's records, then returns its value or raises its error.
fn finish<T>(py: Python<'_>, log: &Log, result: mptcpstate::Result<T>) -> PyResult<T> {
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
