//! Per-call log records.
//!
//! Every public entry point takes a [`Log`] and writes its records there, never into a
//! global buffer, so concurrent calls never see each other's records (SPEC section 5).
//! Records are also forwarded to the `log` facade, for Rust programs that install a
//! logger of their own.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn to_facade(self) -> log::Level {
        match self {
            Level::Error => log::Level::Error,
            Level::Warn => log::Level::Warn,
            Level::Info => log::Level::Info,
            Level::Debug => log::Level::Debug,
            Level::Trace => log::Level::Trace,
        }
    }
}

/// One log record, as the C and Python faces hand it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    pub level: Level,
    /// The module that wrote the record, e.g. `mptcpstate::state::validate`.
    pub target: String,
    pub message: String,
}

/// The log of one call. Cheap to clone; clones share the records.
#[derive(Debug, Clone, Default)]
pub struct Log {
    records: Arc<Mutex<Vec<LogRecord>>>,
}

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, level: Level, target: &str, message: impl Into<String>) {
        let message = message.into();
        log::log!(target: target, level.to_facade(), "{message}");
        let record = LogRecord {
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            level,
            target: target.to_string(),
            message,
        };
        // A poisoned lock only means another thread panicked while pushing; the records
        // already there are still whole.
        let mut records = match self.records.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        records.push(record);
    }

    /// The records written so far, oldest first.
    pub fn records(&self) -> Vec<LogRecord> {
        match self.records.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The records as the JSON array the C face returns:
    /// `[{"time","level","target","message"}, ...]`.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and an enum cannot fail.
        serde_json::to_string(&self.records()).unwrap_or_else(|_| "[]".to_string())
    }
}

/// `log_warn!(log, "...", args)`: a record with the calling module as target.
#[macro_export]
macro_rules! log_at {
    ($log:expr, $level:expr, $($arg:tt)+) => {
        $log.push($level, module_path!(), format!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_per_log_and_serialize() {
        let a = Log::new();
        let b = Log::new();
        log_at!(a, Level::Warn, "flags on {} ignored", "fe80::1");
        assert!(b.records().is_empty());
        let recs = a.records();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].level, Level::Warn);
        assert_eq!(recs[0].target, "mptcpstate::log::tests");
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(v[0]["level"], "warn");
        assert_eq!(v[0]["message"], "flags on fe80::1 ignored");
        assert!(v[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
