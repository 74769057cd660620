//! The arguments that need more than PyO3's conversion: the `state` (a dict, a str or
//! bytes, made into text for the core), optional strings, and numbers of seconds.
//!
//! The core parses and validates; this file only brings the argument into a form that
//! can cross into code running without the GIL (owned, no Python objects).

use std::time::Duration;

use mptcpstate::Error;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::errors::to_py_err;

/// A state document as the caller gave it.
pub(crate) enum StateInput {
    /// From a str, or a dict serialized to JSON.
    Text(String),
    /// Raw bytes: the core checks that they are UTF-8, with its own message.
    Bytes(Vec<u8>),
}

impl StateInput {
    /// Takes a dict (serialized to JSON), a str or bytes; anything else is
    /// `InvalidArgumentError`.
    pub(crate) fn from_py(state: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = state.py();
        if let Ok(dict) = state.cast::<PyDict>() {
            return dict_to_json(dict).map(StateInput::Text);
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
                "the state must be a dict, a str or bytes (JSON or YAML), not {type_name}"
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

/// A whole number of seconds for the core's `u32`; out of range is
/// `InvalidArgumentError`.
pub(crate) fn seconds_u32(py: Python<'_>, seconds: i64, name: &str) -> PyResult<u32> {
    u32::try_from(seconds).map_err(|_| {
        to_py_err(
            py,
            &Error::invalid(format!(
                "{name}: {seconds} seconds is out of range 0..={}",
                u32::MAX
            )),
        )
    })
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

/// `json.dumps(dict, allow_nan=False)`. What JSON cannot hold (a set, an object, NaN, a
/// cycle) is the caller's input error, with json's complaint as the cause.
fn dict_to_json(dict: &Bound<'_, PyDict>) -> PyResult<String> {
    let py = dict.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    match py
        .import("json")?
        .call_method("dumps", (dict,), Some(&kwargs))
        .and_then(|text| text.extract::<String>())
    {
        Ok(text) => Ok(text),
        Err(e) if e.is_instance_of::<PyTypeError>(py) || e.is_instance_of::<PyValueError>(py) => {
            Err(invalid_because(
                py,
                format!("the state dict cannot be written as JSON: {e}"),
                e,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `InvalidArgumentError(msg)` raised from `cause`.
fn invalid_because(py: Python<'_>, msg: String, cause: PyErr) -> PyErr {
    let err = to_py_err(py, &Error::invalid(msg));
    err.set_cause(py, Some(cause));
    err
}
