//! Python binding of mptcpstate: the native module `mptcpstate._native`.
//!
//! It converts types, maps errors and forwards log records, nothing else: all behaviour
//! lives in the core crate. The pure-Python package around it (`python/mptcpstate/` beside this crate)
//! re-exports these functions and defines the exception classes.
//!
//! Every core call goes through [`call::run`] (or [`call::run_interruptible`] for
//! `apply`, which honours Ctrl-C): the core runs with the GIL released, its log records
//! then go to the `logging` logger `mptcpstate`, and its error becomes the exception of
//! its kind.

mod call;
mod errors;
mod input;
mod logging;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use mptcpstate::{Error, ErrorKind, Level, OutputFormat};
    use pyo3::prelude::*;
    use pyo3::types::{PyDict, PyList, PyString};

    use crate::call::{run, run_interruptible};
    use crate::errors;
    use crate::input::{self, StateInput};

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

    /// Diagnoses why MPTCP would stay on one path in this process's network namespace:
    /// the findings as a JSON array (the package's `check()` parses it), most severe
    /// first; `[]` when nothing keeps MPTCP from using its paths. `kernel_only=True`
    /// does not ask NetworkManager.
    #[pyfunction]
    #[pyo3(signature = (*, kernel_only = false))]
    fn check(py: Python<'_>, kernel_only: bool) -> PyResult<String> {
        let opts = mptcpstate::CheckOptions {
            kernel_only,
            interfaces: Vec::new(),
        };
        run(py, move |log| {
            mptcpstate::check(&opts, log)?.findings_json()
        })
    }

    /// Applies `state` to this process's network namespace, transactionally: nothing is
    /// touched unless all of it is valid; only the interfaces that differ are changed,
    /// under a NetworkManager checkpoint; the result is verified against the kernel
    /// (unless `verify_change=False`, for up to `verify_timeout` seconds); then the
    /// checkpoint is committed, or on any failure rolled back and the error raised.
    ///
    /// With `commit=False` the checkpoint stays and its path is returned (None when
    /// nothing had to change): `commit()` or `rollback()` it, else NetworkManager rolls
    /// it back by itself after `rollback_timeout` seconds. Otherwise returns None.
    /// `save_to_disk=False` keeps the profiles in NetworkManager's memory only;
    /// `kernel_only=True` works over netlink without NetworkManager.
    ///
    /// `dry_run=True` validates, reads and plans, writes nothing, and returns the plan:
    /// `{"interfaces": [{"name", "actions", "before", "after"}], "host": [{"key",
    /// "before", "after"}]}` (empty lists when nothing would change). `with_plan=True`
    /// returns `{"checkpoint": str | None, "plan": {...}}`: what the apply did.
    ///
    /// Ctrl-C (`KeyboardInterrupt`) stops the apply: it rolls back what it did, then the
    /// `KeyboardInterrupt` is raised.
    #[pyfunction]
    #[pyo3(signature = (
        state,
        *,
        kernel_only = false,
        verify_change = true,
        commit = true,
        rollback_timeout = 60,
        save_to_disk = true,
        verify_timeout = 5.0,
        dry_run = false,
        with_plan = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn apply(
        py: Python<'_>,
        state: &Bound<'_, PyAny>,
        kernel_only: bool,
        verify_change: bool,
        commit: bool,
        #[pyo3(from_py_with = input::rollback_timeout)] rollback_timeout: u32,
        save_to_disk: bool,
        verify_timeout: f64,
        dry_run: bool,
        with_plan: bool,
    ) -> PyResult<Py<PyAny>> {
        let input = StateInput::from_py(state)?;
        let verify_timeout = input::duration(py, verify_timeout, "verify_timeout")?;
        let opts = mptcpstate::ApplyOptions {
            kernel_only,
            verify: verify_change,
            commit,
            rollback_timeout,
            memory_only: !save_to_disk,
            verify_timeout,
            dry_run,
            ..Default::default()
        };
        let outcome = run_interruptible(py, move |log, cancel| {
            let opts = mptcpstate::ApplyOptions {
                cancel: Some(cancel),
                ..opts
            };
            mptcpstate::apply(input.text()?, &opts, log)
        })?;
        if !dry_run && !with_plan {
            return Ok(outcome.checkpoint.into_pyobject(py)?.into_any().unbind());
        }
        let json = py.import("json")?;
        let plan = json.call_method1("loads", (outcome.plan.to_json(),))?;
        if dry_run {
            return Ok(plan.unbind());
        }
        let out = pyo3::types::PyDict::new(py);
        out.set_item("checkpoint", outcome.checkpoint)?;
        out.set_item("plan", plan)?;
        Ok(out.into_any().unbind())
    }

    /// Commits what an `apply(..., commit=False)` left pending: the applied state stays.
    /// `checkpoint` is the path `apply` returned; None for the last one this process left
    /// open, else the newest pending in this network namespace, else NetworkManager's
    /// newest. Returns the checkpoint committed, or None when nothing was pending (then
    /// nothing changes).
    #[pyfunction]
    #[pyo3(signature = (checkpoint = None))]
    fn commit(
        py: Python<'_>,
        checkpoint: Option<&Bound<'_, PyString>>,
    ) -> PyResult<Option<String>> {
        let checkpoint = input::optional_text(checkpoint, "checkpoint")?;
        run(py, move |log| {
            mptcpstate::commit(checkpoint.as_deref(), log)
        })
    }

    /// Rolls back what an `apply(..., commit=False)` left pending: everything it changed
    /// is put back (NetworkManager's checkpoint, and what it does not hold: host knobs,
    /// kernel-only changes, profiles that were not active). `checkpoint` as for
    /// `commit()`. Returns the checkpoint rolled back, or None when nothing was pending.
    #[pyfunction]
    #[pyo3(signature = (checkpoint = None))]
    fn rollback(
        py: Python<'_>,
        checkpoint: Option<&Bound<'_, PyString>>,
    ) -> PyResult<Option<String>> {
        let checkpoint = input::optional_text(checkpoint, "checkpoint")?;
        run(py, move |log| {
            mptcpstate::rollback(checkpoint.as_deref(), log)
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

    /// Runs a call the way `apply` runs (its own thread, Ctrl-C honoured) that waits up
    /// to `wait` seconds for its cancel flag. Returns the call thread's network
    /// namespace (`net:[inode]`); when cancelled, logs a warning and fails with
    /// `Timeout`, as an interrupted apply does. For tests only.
    #[pyfunction]
    fn _interruptible_probe(py: Python<'_>, wait: f64) -> PyResult<String> {
        let wait = crate::input::duration(py, wait, "wait")?;
        run_interruptible(py, move |log, cancel| {
            let netns = std::fs::read_link("/proc/thread-self/ns/net")
                .map(|p| p.display().to_string())
                .map_err(|e| {
                    Error::new(ErrorKind::Kernel, format!("/proc/thread-self/ns/net: {e}"))
                })?;
            let start = std::time::Instant::now();
            while start.elapsed() < wait {
                if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                    log.push(Level::Warn, module_path!(), "cancelled");
                    return Err(Error::new(ErrorKind::Timeout, "interrupted"));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(netns)
        })
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
