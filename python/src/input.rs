//! The arguments that need more than PyO3's conversion: the `state` (a dict, a str or
//! bytes, made into text for the core), optional strings, and numbers of seconds.
//!
//! The core parses and validates; this file only brings the argument into a form that
//! can cross into code running without the GIL (owned, no Python objects).

use std::time::Duration;

use mptcpstate::Error;
use pyo3::exceptions::{
    PyException, PyMemoryError, PyOverflowError, PyRecursionError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyString};

use crate::errors::to_py_err;

/// A state document as the caller gave it.
pub(crate) enum StateInput {
    /// From a str, or a dict serialized to JSON.
    Text(String),
    /// Raw bytes: the core checks that they are UTF-8, with its own message.
    Bytes(Vec<u8>),
}

impl StateInput {
    /// Takes a dict or any other `Mapping` (serialized to JSON), a str or bytes;
    /// anything else is `InvalidArgumentError`.
    pub(crate) fn from_py(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = state.py();
        if state.cast::<PyDict>().is_ok() || is_mapping(state)? {
            return mapping_to_json(state).map(StateInput::Text);
        }
        if let Ok(text) = state.cast::<PyString>() {
            // Only a str with lone surrogates fails here.
            return match text.to_cow() {
                Ok(text) => Ok(StateInput::Text(text.into_owned())),
                Err(e) => Err(invalid_because(
                    py,
                    format!("the state is not valid Unicode text: {e}"),
                    e,
                )),
            };
        }
        if let Ok(bytes) = state.cast::<PyBytes>() {
            return Ok(StateInput::Bytes(bytes.as_bytes().to_vec()));
        }
        let type_name = state.get_type().name()?;
        Err(to_py_err(
            py,
            &Error::invalid(format!(
                "the state must be a dict, a str or bytes (JSON or YAML), or another \
                 mapping, not {type_name}"
            )),
        ))
    }

    /// The text for the core; bytes that are not UTF-8 give the core's `InvalidArgument`.
    pub(crate) fn text(&self) -> mptcpstate::Result<&str> {
        match self {
            StateInput::Text(text) => Ok(text),
            StateInput::Bytes(bytes) => mptcpstate::input_from_bytes(bytes),
        }
    }
}

/// An optional str argument as owned text; a str that is not valid Unicode (lone
/// surrogates) is `InvalidArgumentError`.
pub(crate) fn optional_text(
    value: Option<&Bound<'_, PyString>>,
    name: &str,
) -> PyResult<Option<String>> {
    let Some(value) = value else {
        return Ok(None);
    };
    match value.to_cow() {
        Ok(text) => Ok(Some(text.into_owned())),
        Err(e) => Err(invalid_because(
            value.py(),
            format!("{name}: not valid Unicode text: {e}"),
            e,
        )),
    }
}

/// `rollback_timeout` (PyO3's `from_py_with`): a whole number of seconds for the core's
/// `u32`. An int out of range, however large (`2**70`), is `InvalidArgumentError`, raised
/// while the arguments are taken, before the state is looked at or anything read; not
/// an int stays PyO3's `TypeError`.
pub(crate) fn rollback_timeout(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    seconds_u32(value, "rollback_timeout")
}

fn seconds_u32(value: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    let py = value.py();
    match value.extract::<u32>() {
        Ok(seconds) => Ok(seconds),
        Err(e) if value.is_instance_of::<PyInt>() || e.is_instance_of::<PyOverflowError>(py) => {
            // An int too long for str() (Python's 4300-digit limit) is still out of range.
            let shown = value
                .str()
                .map(|s| s.to_string())
                .unwrap_or_else(|_| "a number that large".to_string());
            Err(to_py_err(
                py,
                &Error::invalid(format!(
                    "{name}: {shown} seconds is out of range 0..={}",
                    u32::MAX
                )),
            ))
        }
        Err(e) => Err(e),
    }
}

/// A float of seconds as a `Duration`: negative, NaN or infinite is
/// `InvalidArgumentError`.
pub(crate) fn duration(py: Python<'_>, seconds: f64, name: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        to_py_err(
            py,
            &Error::invalid(format!(
                "{name}: {seconds} is not a number of seconds (finite, 0 or more)"
            )),
        )
    })
}

/// Whether `obj` is a `collections.abc.Mapping`.
fn is_mapping(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let mapping = obj.py().import("collections.abc")?.getattr("Mapping")?;
    obj.is_instance(&mapping)
}

/// `json.dumps(state, allow_nan=False, default=...)`, where `default` takes a `Mapping`
/// that is not a dict as one (`mptcpstate._state.json_default`). What cannot be a state
/// is the caller's input error, `InvalidArgumentError` with the cause chained: a value
/// JSON cannot hold (a set, NaN, a cycle), nesting deeper than Python's recursion limit
/// (`RecursionError`), and any exception the caller's own mapping raises from
/// `items()`, `keys()` or `__getitem__`. Only what is not about the input (Ctrl-C,
/// `SystemExit`, `MemoryError`) goes through as it is.
fn mapping_to_json(state: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = state.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    kwargs.set_item(
        "default",
        py.import("mptcpstate._state")?.getattr("json_default")?,
    )?;
    match py
        .import("json")?
        .call_method("dumps", (state,), Some(&kwargs))
        .and_then(|text| text.extract::<String>())
    {
        Ok(text) => Ok(text),
        Err(e) if e.is_instance_of::<PyRecursionError>(py) => Err(invalid_because(
            py,
            format!(
                "the state is nested too deeply (a state is a few levels deep): {}",
                e.value(py)
            ),
            e,
        )),
        Err(e) if e.is_instance_of::<PyTypeError>(py) || e.is_instance_of::<PyValueError>(py) => {
            Err(invalid_because(
                py,
                format!("the state cannot be written as JSON: {}", e.value(py)),
                e,
            ))
        }
        // KeyboardInterrupt, SystemExit (not `Exception`s) and MemoryError.
        Err(e) if e.is_instance_of::<PyMemoryError>(py) || !e.is_instance_of::<PyException>(py) => {
            Err(e)
        }
        Err(e) => {
            let class = e
                .get_type(py)
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "exception".to_string());
            Err(invalid_because(
                py,
                format!(
                    "the state cannot be read: the mapping raised {class}: {}",
                    e.value(py)
                ),
                e,
            ))
        }
    }
}

/// `InvalidArgumentError(msg)` raised from `cause`.
fn invalid_because(py: Python<'_>, msg: String, cause: PyErr) -> PyErr {
    let err = to_py_err(py, &Error::invalid(msg));
    err.set_cause(py, Some(cause));
    err
}
