//! `mptcpstatectl service`: the boot-time service (as `nmstatectl service` is for
//! nmstate). Applies every `*.yml` and `*.yaml` of a directory in name order, each file
//! transactionally on its own: a file that fails is reported (and rolled back by its
//! apply) and the others still run. Prints one line per file, and records the run in
//! `/run/mptcpstate/<netns cookie>/service.json`.
//!
//! Exit status: 0 when every file was applied (or there was none), else the error code
//! of the first file that failed, so that systemd shows the unit as failed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mptcpstate::{ApplyOptions, Error, ErrorKind, Log};
use serde_json::{json, Value};

/// The directory the service reads by default.
pub const DEFAULT_DIR: &str = "/etc/mptcpstate";

/// The record's file name, in the namespace's run directory.
const RECORD: &str = "service.json";

/// The suffix an applied file is renamed to with `--rename-applied` (nmstate's).
const APPLIED: &str = "applied";

/// How the service runs.
pub struct ServiceArgs<'a> {
    pub dir: &'a Path,
    pub kernel: bool,
    pub rename_applied: bool,
    pub verbose: bool,
}

/// The outcome of one file.
enum FileResult {
    Applied {
        changed: Vec<String>,
        host: Vec<String>,
        renamed_to: Option<PathBuf>,
        rename_error: Option<String>,
    },
    Failed(Error),
}

/// The state files of `dir` in name order (bytes of the file name): names ending in
/// `.yml` or `.yaml`, hidden ones (`.name.yml`, as editors leave) left out. A missing
/// directory has none.
fn state_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(crate::io_error(
                format!("cannot list {}", dir.display()),
                &e,
            ))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| crate::io_error(format!("cannot list {}", dir.display()), &e))?;
        let name = entry.file_name();
        let path = Path::new(&name);
        let ext = path.extension().and_then(OsStr::to_str);
        if matches!(ext, Some("yml" | "yaml")) && !name.to_string_lossy().starts_with('.') {
            files.push(dir.join(&name));
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// A file whose stem another state file has too (`a.yml` and `a.yaml`): which one is
/// meant is not for the service to guess, so neither is applied.
fn twin(file: &Path, files: &[PathBuf]) -> Option<PathBuf> {
    let stem = file.file_stem();
    files
        .iter()
        .find(|f| *f != file && f.file_stem() == stem)
        .cloned()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Renames an applied file to `<stem>.applied` (nmstate's `.applied`), replacing one
/// that is there.
fn rename_applied(file: &Path) -> Result<PathBuf, String> {
    let to = file.with_extension(APPLIED);
    std::fs::rename(file, &to)
        .map(|()| to)
        .map_err(|e| format!("cannot rename it: {e}"))
}

fn apply_one(
    file: &Path,
    files: &[PathBuf],
    opts: &ApplyOptions,
    args: &ServiceArgs<'_>,
    log: &Log,
) -> FileResult {
    if let Some(other) = twin(file, files) {
        return FileResult::Failed(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} and {} both exist: remove one (neither is applied)",
                file_name(file),
                file_name(&other)
            ),
        ));
    }
    let outcome = crate::read_input(file).and_then(|input| {
        mptcpstate::input_from_bytes(&input).and_then(|text| mptcpstate::apply(text, opts, log))
    });
    match outcome {
        Err(e) => FileResult::Failed(e),
        Ok(outcome) => {
            let (renamed_to, rename_error) = if args.rename_applied {
                match rename_applied(file) {
                    Ok(to) => (Some(to), None),
                    Err(e) => (None, Some(e)),
                }
            } else {
                (None, None)
            };
            FileResult::Applied {
                changed: outcome.changed,
                host: outcome.host,
                renamed_to,
                rename_error,
            }
        }
    }
}

/// The record of one file, and its line on stdout.
fn report(file: &Path, result: &FileResult) -> (Value, String) {
    let name = file_name(file);
    match result {
        FileResult::Applied {
            changed,
            host,
            renamed_to,
            rename_error,
        } => {
            let all: Vec<&str> = changed.iter().chain(host).map(String::as_str).collect();
            let what = if all.is_empty() {
                "nothing to change".to_string()
            } else {
                format!("{} changed", all.join(", "))
            };
            let mut line = format!("{name}: applied: {what}");
            if let Some(to) = renamed_to {
                line.push_str(&format!("; renamed to {}", file_name(to)));
            }
            if let Some(e) = rename_error {
                line.push_str(&format!("; {e}"));
            }
            let value = json!({
                "file": name,
                "path": file.display().to_string(),
                "result": "applied",
                "changed": changed,
                "host": host,
                "renamed-to": renamed_to.as_ref().map(|p| p.display().to_string()),
                "rename-error": rename_error,
            });
            (value, line)
        }
        FileResult::Failed(e) => {
            let msg = crate::one_line(e.msg());
            let line = format!("{name}: failed: {}: {msg}", e.kind());
            let value = json!({
                "file": name,
                "path": file.display().to_string(),
                "result": "failed",
                "kind": e.kind().to_string(),
                "code": e.kind().code(),
                "message": msg,
            });
            (value, line)
        }
    }
}

/// Writes the record (mode 0600, a new file renamed over the old one); returns its path.
fn write_record(record: &Value) -> Result<PathBuf, Error> {
    let dir = mptcpstate::apply::namespace_run_dir()?;
    let mut text = serde_json::to_string_pretty(record)
        .map_err(|e| Error::bug(format!("printing the service record: {e}")))?;
    text.push('\n');
    crate::write_private(&dir, RECORD, text.as_bytes())
}

/// Runs the service; `Ok` carries the exit status.
pub fn run(args: &ServiceArgs<'_>) -> Result<u8, Error> {
    let started = now_ms();
    let files = state_files(args.dir)?;
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| Error::new(ErrorKind::Bug, format!("installing a signal handler: {e}")))?;
    }
    let opts = ApplyOptions {
        kernel_only: args.kernel,
        cancel: Some(Arc::clone(&interrupted)),
        ..Default::default()
    };
    if files.is_empty() {
        crate::print(&format!(
            "no state files (*.yml, *.yaml) in {}\n",
            args.dir.display()
        ))?;
    }
    let mut records = Vec::new();
    let mut first_failure: Option<ErrorKind> = None;
    let (mut applied, mut failed) = (0, 0);
    for file in &files {
        let log = Log::new();
        let result = if interrupted.load(Ordering::Relaxed) {
            FileResult::Failed(Error::new(
                ErrorKind::Timeout,
                "interrupted before this file was applied",
            ))
        } else {
            apply_one(file, &files, &opts, args, &log)
        };
        let (value, line) = report(file, &result);
        crate::print(&format!("{line}\n"))?;
        crate::print_log(&log, args.verbose);
        match &result {
            FileResult::Applied { .. } => applied += 1,
            FileResult::Failed(e) => {
                failed += 1;
                first_failure.get_or_insert(e.kind());
            }
        }
        records.push(value);
    }
    let status = first_failure.map_or(0, |k| u8::try_from(k.code()).unwrap_or(u8::MAX));
    let record = json!({
        "dir": args.dir.display().to_string(),
        "mode": if args.kernel { "kernel" } else { "networkmanager" },
        "rename-applied": args.rename_applied,
        "started-ms": started,
        "finished-ms": now_ms(),
        "applied": applied,
        "failed": failed,
        "exit-status": status,
        "files": records,
    });
    let path = write_record(&record)?;
    crate::print(&format!(
        "service: {applied} applied, {failed} failed; record: {}\n",
        path.display()
    ))?;
    Ok(status)
}
