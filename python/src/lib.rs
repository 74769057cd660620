//! Python binding of mptcpstate: the native module `mptcpstate._native`.
//!
//! It converts types, maps errors and forwards log records, nothing else: all behaviour
//! lives in the core crate. The pure-Python package around it (`python/mptcpstate/` beside this crate)
//! re-exports these functions and defines the exception classes.
//!
//! Every core call goes through [`call::run`]: the core runs with the GIL released, its
//! log records then go to the `logging` logger `mptcpstate`, and its error becomes the
//! exception of its kind.

mod call;
mod errors;
mod input;
mod logging;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use mptcpstate::{Error, ErrorKind, Level, OutputFormat};
    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList};

    use crate::call::run;
    use crate::errors;
    use crate::input::StateInput;

    /// Parses and validates `state` and returns it in canonical form: YAML (starting with
    /// `---`) by default, pretty-printed JSON with `yaml=False`.
    #[pyfunction]
    #[pyo3(signature = (state, *, yaml = true))]
    fn format(py: Python<'_>, state: &Bound<'_, PyAny>, yaml: bool) -> PyResult<String> {
        let input = StateInput::from_py(state)?;
        let output = if yaml {
            OutputFormat::Yaml
        } else {
            OutputFormat::Json
        };
        run(py, move |log| {
            mptcpstate::format(input.text()?, output, log)
        })
    }

    /// Parses and validates `state` and returns the configuration files it stands for,
    /// without touching the system: `{"NetworkManager": [[file_name, keyfile], ...]}`.
    #[pyfunction]
    fn generate_configurations<'py>(
        py: Python<'py>,
        state: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let input = StateInput::from_py(state)?;
        let configs = run(py, move |log| {
            mptcpstate::generate_configurations(input.text()?, log)
        })?;
        let files = PyList::empty(py);
        for (name, text) in &configs.network_manager {
            files.append(PyList::new(py, [name, text])?)?;
        }
        let out = PyDict::new(py);
        out.set_item("NetworkManager", files)?;
        Ok(out)
    }

    /// Reads the current state of this process's network namespace: the kernel over
    /// netlink and, unless `kernel_only`, NetworkManager over D-Bus. Returns the state as
    /// a dict in the schema's form (valid input to `apply`).
    #[pyfunction]
    #[pyo3(signature = (*, kernel_only = false))]
    fn show(py: Python<'_>, kernel_only: bool) -> PyResult<String> {
        let opts = mptcpstate::ShowOptions {
            kernel_only,
            interfaces: Vec::new(),
        };
        run(py, move |log| {
            mptcpstate::show(&opts, log)?.to_text(OutputFormat::Json)
        })
    }

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        // The library's version (the core crate's, which is the workspace's).
        m.add("__version__", mptcpstate::VERSION)?;
        // `((kind, code, class name), ...)` for every error kind, in code order: lets the
        // tests check `mptcpstate.errors` against the core.
        let kinds: Vec<(&str, u32, &str)> = ErrorKind::ALL
            .into_iter()
            .map(|k| (k.name(), k.code(), errors::class_name(k)))
            .collect();
        m.add("ERROR_KINDS", pyo3::types::PyTuple::new(m.py(), kinds)?)
    }

    /// Raises the exception that a core error of kind `kind` (its name) becomes. For tests
    /// of the error mapping only.
    #[pyfunction]
    fn _raise_kind(py: Python<'_>, kind: &str, message: &str) -> PyResult<()> {
        let kind = ErrorKind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(|| {
                errors::to_py_err(py, &Error::invalid(format!("no error kind `{kind}`")))
            })?;
        Err(errors::to_py_err(py, &Error::new(kind, message)))
    }

    /// Runs a call that logs a warning and then panics with `message`, the way a core
    /// call would: it must raise `BugError` and still log the warning. For tests only.
    #[pyfunction]
    fn _panic_in_call(py: Python<'_>, message: String) -> PyResult<()> {
        run(py, move |log| {
            log.push(Level::Warn, module_path!(), "before the panic");
            panic!("{message}")
        })
    }
}
