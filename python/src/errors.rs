//! Core errors to Python exceptions.
//!
//! The exception classes live in Python (`mptcpstate/errors.py`), because each one also
//! derives from a builtin (`ValueError`, `PermissionError`, `OSError`, `TimeoutError`),
//! which a natively created exception class cannot. They are the one definition; this
//! file only names the class for each kind, with an exhaustive match so that a new
//! `ErrorKind` fails to compile until it is mapped here.

use mptcpstate::{Error, ErrorKind};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

/// The module that defines the exception classes.
const ERRORS_MODULE: &str = "mptcpstate.errors";

/// The class in `mptcpstate.errors` that an error of `kind` becomes.
pub(crate) fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidArgument => "InvalidArgumentError",
        ErrorKind::NotSupported => "NotSupportedError",
        ErrorKind::PermissionDenied => "PermissionDeniedError",
        ErrorKind::NetworkManager => "NetworkManagerError",
        ErrorKind::Kernel => "KernelError",
        ErrorKind::Verification => "VerificationError",
        ErrorKind::Timeout => "TimeoutError",
        ErrorKind::Busy => "BusyError",
        ErrorKind::Bug => "BugError",
    }
}

fn exception_class<'py>(py: Python<'py>, kind: ErrorKind) -> PyResult<Bound<'py, PyType>> {
    let class = py.import(ERRORS_MODULE)?.getattr(class_name(kind))?;
    Ok(class.cast_into::<PyType>()?)
}

/// The exception for `err`: its kind's class, with the message alone as its argument
/// (the kind is the class, and its `.kind` attribute), and `.rollback` set when the
/// apply had written and rolled back.
pub(crate) fn to_py_err(py: Python<'_>, err: &Error) -> PyErr {
    match exception_class(py, err.kind()) {
        Ok(class) => {
            let e = PyErr::from_type(class, err.msg().to_string());
            // `rollback`: None unless an apply had written and then rolled back.
            if let Some(r) = err.rollback() {
                if let Err(set) = e.value(py).setattr("rollback", r.name()) {
                    return set;
                }
            }
            e
        }
        // Only a broken installation gets here; keep the library's message all the same.
        Err(lookup) => PyRuntimeError::new_err(format!(
            "{err} (and the exception class could not be loaded from {ERRORS_MODULE}: {lookup})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_class() {
        let mut names: Vec<&str> = ErrorKind::ALL.into_iter().map(class_name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(class_name(kind), format!("{}Error", kind.name()));
        }
    }
}
