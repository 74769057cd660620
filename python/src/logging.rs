//! The core's log records, handed to Python's `logging`.
//!
//! Every record of a call goes to the logger `mptcpstate` at the matching level, in the
//! thread that made the call, after the core returns. The record's origin in the core
//! (e.g. `mptcpstate::state::validate`) is kept as the attribute `target` of the Python
//! `LogRecord`, and the core's RFC 3339 time as `core_time`; both are usable in a format
//! string (`%(target)s`).

use mptcpstate::{Level, LogRecord};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The logger every record goes to.
const LOGGER: &str = "mptcpstate";

/// Python's level for a core level. `Trace` has no level in `logging`; it gets 5
/// (`DEBUG - 5`), which the package names `TRACE`.
pub(crate) fn python_level(level: Level) -> u32 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

/// Logs `records`, oldest first. A failing handler's exception is returned.
pub(crate) fn emit(py: Python<'_>, records: &[LogRecord]) -> PyResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let logger = py.import("logging")?.call_method1("getLogger", (LOGGER,))?;
    for record in records {
        let level = python_level(record.level);
        if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
            continue;
        }
        let extra = PyDict::new(py);
        extra.set_item("target", &record.target)?;
        extra.set_item("core_time", &record.time)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("extra", extra)?;
        // The message is passed without arguments, so a `%` in it is never interpreted.
        logger.call_method("log", (level, &record.message), Some(&kwargs))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_match_logging() {
        let levels = [
            Level::Error,
            Level::Warn,
            Level::Info,
            Level::Debug,
            Level::Trace,
        ]
        .map(python_level);
        assert_eq!(levels, [40, 30, 20, 10, 5]);
    }
}
