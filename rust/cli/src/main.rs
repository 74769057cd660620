//! `mptcpstatectl`: the command line of mptcpstate.
//!
//! Exit status: 0, or the error code of the library's error kind (1 InvalidArgument ...
//! 9 Bug); usage errors are InvalidArgument. Errors are one line on stderr. Warnings are
//! always shown; `-v` shows every log record of the call.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod service;

use clap::{Parser, Subcommand};
use mptcpstate::{ApplyOptions, Error, ErrorKind, Level, Log, OutputFormat, Progress};

#[derive(Parser)]
#[command(
    name = "mptcpstatectl",
    version = mptcpstate::VERSION,
    about = "Declarative MultiPath TCP configuration (nmstate schema)",
    disable_version_flag = true
)]
struct Cli {
    /// Show every log record of the call on stderr (warnings are always shown).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, validate and print a state in canonical form.
    Format {
        /// State file (JSON or YAML), or - for standard input.
        file: PathBuf,
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
    },
    /// Generate the NetworkManager keyfiles a state stands for, without touching the
    /// system.
    #[command(visible_alias = "generate-configurations")]
    Gc {
        /// State file (JSON or YAML), or - for standard input.
        file: PathBuf,
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
        /// Write each keyfile into DIR (mode 0600, as NetworkManager requires) instead
        /// of printing them.
        #[arg(long, value_name = "DIR")]
        write_dir: Option<PathBuf>,
    },
    /// Show the current state: every interface of the network namespace, its addresses
    /// with their MPTCP endpoint flags, and the host-wide MPTCP knobs.
    Show {
        /// Only these interfaces.
        #[arg(value_name = "IFNAME")]
        interfaces: Vec<String>,
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
        /// Read the kernel only (hosts without NetworkManager).
        #[arg(long)]
        kernel: bool,
    },
    /// Apply states transactionally, through NetworkManager or (--kernel) over netlink:
    /// only the interfaces and host knobs that differ change; the result is verified
    /// against the kernel, then committed, or rolled back on any failure.
    Apply {
        /// State files (JSON or YAML), applied in turn, stopping at the first error; - for
        /// standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Do not verify the result against the kernel.
        #[arg(long)]
        no_verify: bool,
        /// Keep the checkpoint open and print its path, one line per file (an empty line
        /// when nothing had to change), for `commit` or `rollback`.
        #[arg(long)]
        no_commit: bool,
        /// With --no-commit: seconds after which the change is rolled back by itself
        /// unless it is committed (also when this command is long gone); 0 for never
        /// (refused with --no-commit).
        #[arg(long, value_name = "SEC", default_value_t = mptcpstate::apply::DEFAULT_ROLLBACK_TIMEOUT)]
        timeout: u32,
        /// Keep the profiles in NetworkManager's memory only, not on disk.
        #[arg(long)]
        memory_only: bool,
        /// Kernel-only mode: addresses, links and MPTCP endpoints over netlink, without
        /// NetworkManager (per-address flags and ports honoured; runtime state only).
        #[arg(long)]
        kernel: bool,
        /// How long verification waits for the kernel to reach the state, in seconds.
        #[arg(long, value_name = "SEC", default_value = "5", value_parser = seconds)]
        verify_timeout: Duration,
        /// Validate, read and plan, write nothing: print what the apply would do (per
        /// interface, and the host knobs), `nothing would change` when nothing would.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan as JSON on stdout, one line per file: with --dry-run the plan
        /// ({"interfaces": [...], "host": [...]}), else {"checkpoint": PATH or null,
        /// "plan": {...}} (what was done; this replaces --no-commit's bare path line).
        #[arg(long)]
        json: bool,
    },
    /// Diagnose: why MPTCP stays on one path. Prints findings (code, severity, what
    /// happens, the fix) and the live MPTCP connections. Exit status 0 when no finding
    /// is an error, 10 when one is (errors of the command itself keep their codes 1..9).
    Check {
        /// Only findings about these interfaces (and the host-wide ones).
        #[arg(value_name = "IFNAME")]
        interfaces: Vec<String>,
        /// Print JSON: {"findings": [...], "connections": [...]}.
        #[arg(long)]
        json: bool,
        /// Read the kernel only (NetworkManager is not asked).
        #[arg(long)]
        kernel: bool,
    },
    /// Commit what an `apply --no-commit` left pending: the applied state stays. With
    /// nothing pending, says so and exits 0.
    Commit {
        /// The checkpoint `apply --no-commit` printed; by default the newest pending in
        /// this network namespace, else NetworkManager's newest.
        checkpoint: Option<String>,
    },
    /// Roll back what an `apply --no-commit` left pending: everything it changed returns
    /// to what it was. With nothing pending, says so and exits 0.
    Rollback {
        /// The checkpoint `apply --no-commit` printed; by default the newest pending in
        /// this network namespace, else NetworkManager's newest.
        checkpoint: Option<String>,
    },
    /// The boot-time service (the systemd units mptcpstate.service and
    /// mptcpstate-kernel.service run it): applies every *.yml and *.yaml of DIR in name
    /// order, each transactionally; a file that fails is reported and the others still
    /// run. One line per file on stdout; the run is recorded in
    /// /run/mptcpstate/<netns>/service.json. Exit status 0, or the error code of the
    /// first file that failed.
    Service {
        /// The directory of the state files.
        #[arg(long, value_name = "DIR", default_value = service::DEFAULT_DIR)]
        dir: PathBuf,
        /// Kernel-only mode (hosts without NetworkManager).
        #[arg(long)]
        kernel: bool,
        /// Rename each applied file to NAME.applied, as nmstate's service does (it is
        /// then not applied at the next boot).
        #[arg(long)]
        rename_applied: bool,
    },
    /// Print the library version.
    Version,
}

/// The exit status of `check` when a finding is an error: above the error codes (1..9).
const CHECK_EXIT: u8 = 10;

/// `check`'s report for a person: one block per finding, then the connections.
fn check_text(report: &mptcpstate::Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if report.findings.is_empty() {
        out.push_str("no findings: nothing keeps MPTCP from using the paths it is given\n");
    }
    for f in &report.findings {
        let severity = format!("{:?}", f.severity).to_lowercase();
        let about: Vec<&str> = [f.interface.as_deref(), f.address.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let about = if about.is_empty() {
            String::new()
        } else {
            format!(" ({})", about.join(", "))
        };
        let _ = writeln!(out, "{severity:<7} {}{about}", f.code);
        let _ = writeln!(out, "        {}", f.message);
        if let Some(state) = &f.fix.state {
            let _ = writeln!(out, "        fix: apply {state}");
        }
        if let Some(cmd) = &f.fix.command {
            let what = if f.fix.state.is_some() { "or" } else { "fix:" };
            let _ = writeln!(out, "        {what} {cmd}");
        }
    }
    if !report.connections.is_empty() {
        out.push_str("\nMPTCP connections:\n");
        for c in &report.connections {
            let fallback = if c.fallback {
                " (fell back to TCP)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {} -> {}{fallback}: {} subflow(s)",
                c.local,
                c.remote,
                c.subflows.len()
            );
            for s in &c.subflows {
                let _ = writeln!(
                    out,
                    "    {:<6} {} -> {} {}",
                    s.interface.as_deref().unwrap_or("?"),
                    s.local,
                    s.remote,
                    s.state
                );
            }
        }
    }
    out
}

fn main() -> ExitCode {
    // One thread, one call: it drives the library's reactor itself (no I/O thread to hand
    // every kernel answer over).
    mptcpstate::Runtime::drive_on_caller();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let code = match e.kind() {
                K::DisplayHelp | K::DisplayVersion => 0,
                K::DisplayHelpOnMissingArgumentOrSubcommand => ErrorKind::InvalidArgument.code(),
                _ => ErrorKind::InvalidArgument.code(),
            };
            let _ = e.print();
            return exit(code);
        }
    };
    let log = Log::new();
    let result = run(&cli, &log);
    print_log(&log, cli.verbose);
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("mptcpstatectl: {}: {}", e.kind(), one_line(e.msg()));
            exit(e.kind().code())
        }
    }
}

/// Runs the command; `Ok` carries the exit status (0, or `check`'s [`CHECK_EXIT`]).
fn run(cli: &Cli, log: &Log) -> Result<u8, Error> {
    if let Command::Check {
        interfaces,
        json,
        kernel,
    } = &cli.command
    {
        return run_check(interfaces, *json, *kernel, log);
    }
    if let Command::Service {
        dir,
        kernel,
        rename_applied,
    } = &cli.command
    {
        return service::run(&service::ServiceArgs {
            dir,
            kernel: *kernel,
            rename_applied: *rename_applied,
            verbose: cli.verbose,
        });
    }
    run_command(cli, log).map(|()| 0)
}

fn run_check(interfaces: &[String], json: bool, kernel: bool, log: &Log) -> Result<u8, Error> {
    let opts = mptcpstate::CheckOptions {
        kernel_only: kernel,
        interfaces: interfaces.to_vec(),
    };
    let report = mptcpstate::check(&opts, log)?;
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::bug(format!("printing the report: {e}")))?;
        print(&format!("{text}\n"))?;
    } else {
        print(&check_text(&report))?;
    }
    Ok(if report.has_errors() { CHECK_EXIT } else { 0 })
}

fn run_command(cli: &Cli, log: &Log) -> Result<(), Error> {
    match &cli.command {
        // Handled by `run`: it has an exit status of its own.
        Command::Check { .. } | Command::Service { .. } => Ok(()),
        Command::Format { file, json } => {
            let input = read_input(file)?;
            let text = mptcpstate::input_from_bytes(&input)?;
            print(&mptcpstate::format(text, output(*json), log)?)
        }
        Command::Gc {
            file,
            json,
            write_dir,
        } => {
            let input = read_input(file)?;
            let text = mptcpstate::input_from_bytes(&input)?;
            let configs = mptcpstate::generate_configurations(text, log)?;
            match write_dir {
                Some(dir) => write_keyfiles(dir, &configs.network_manager),
                None => print(&configs.to_text(output(*json))?),
            }
        }
        Command::Show {
            interfaces,
            json,
            kernel,
        } => {
            let opts = mptcpstate::ShowOptions {
                kernel_only: *kernel,
                interfaces: interfaces.clone(),
            };
            print(&mptcpstate::show(&opts, log)?.to_text(output(*json))?)
        }
        Command::Apply {
            files,
            no_verify,
            no_commit,
            timeout,
            memory_only,
            kernel,
            verify_timeout,
            dry_run,
            json,
        } => {
            let opts = ApplyOptions {
                kernel_only: *kernel,
                verify: !*no_verify,
                commit: !*no_commit,
                rollback_timeout: *timeout,
                memory_only: *memory_only,
                verify_timeout: *verify_timeout,
                dry_run: *dry_run,
                ..Default::default()
            };
            apply_files(files, opts, *json, cli.verbose, log)
        }
        Command::Commit { checkpoint } => {
            let done = mptcpstate::commit(checkpoint.as_deref(), log)?;
            finished("commit", "committed", done);
            Ok(())
        }
        Command::Rollback { checkpoint } => {
            let done = mptcpstate::rollback(checkpoint.as_deref(), log)?;
            finished("roll back", "rolled back", done);
            Ok(())
        }
        Command::Version => print(&format!("{}\n", mptcpstate::VERSION)),
    }
}

/// Applies each file in turn, stopping at the first error. Every file is read first, so
/// that a file that cannot be read stops the command before anything is applied.
///
/// stdout gets the checkpoint of each file with `--no-commit` (printed as soon as it
/// exists, so that the ones made before an error can still be rolled back), nothing
/// otherwise. stderr gets progress and a one-line summary per file, on a terminal (or
/// the summary with `-v`).
fn apply_files(
    files: &[PathBuf],
    mut opts: ApplyOptions,
    json: bool,
    verbose: bool,
    log: &Log,
) -> Result<(), Error> {
    let inputs = files
        .iter()
        .map(|f| read_input(f))
        .collect::<Result<Vec<_>, _>>()?;
    // Ctrl-C (or SIGTERM) during an apply rolls it back before the command ends, instead
    // of leaving a checkpoint for NetworkManager to roll back a minute later.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .map_err(|e| Error::new(ErrorKind::Bug, format!("installing a signal handler: {e}")))?;
    }
    opts.cancel = Some(Arc::clone(&interrupted));
    let terminal = std::io::stderr().is_terminal();
    let progress = terminal.then(ProgressLine::new);
    if let Some(line) = &progress {
        let line = Arc::clone(line);
        opts.progress = Some(Arc::new(move |p: &Progress| line.show(p)));
    }
    for (file, input) in files.iter().zip(&inputs) {
        // With several files, errors and summaries say which one.
        let name = (files.len() > 1).then(|| display_name(file));
        let named = |e: Error| match &name {
            Some(name) => Error::new(e.kind(), format!("{name}: {}", e.msg())),
            None => e,
        };
        if interrupted.load(Ordering::Relaxed) {
            return Err(named(Error::new(
                ErrorKind::Timeout,
                "interrupted before this file was applied",
            )));
        }
        let outcome = mptcpstate::input_from_bytes(input)
            .and_then(|text| mptcpstate::apply(text, &opts, log));
        if let Some(line) = &progress {
            line.clear();
        }
        let outcome = outcome.map_err(named)?;
        if opts.dry_run {
            let text = if json {
                format!("{}\n", outcome.plan.to_json())
            } else {
                plan_text(&outcome.plan, name.as_deref())
            };
            print(&text)?;
            continue;
        }
        if json {
            let line = serde_json::json!({
                "checkpoint": outcome.checkpoint,
                "plan": outcome.plan,
            });
            print(&format!("{line}\n"))?;
        } else if !opts.commit {
            print(&format!(
                "{}\n",
                outcome.checkpoint.as_deref().unwrap_or("")
            ))?;
        }
        if terminal || verbose {
            let what = match outcome.summary_of(verbose) {
                None => "nothing to change".to_string(),
                Some(list) => format!("{list} changed"),
            };
            let applied = if opts.commit {
                "applied"
            } else {
                "applied, not committed"
            };
            match &name {
                Some(name) => eprintln!("{name}: {applied}: {what}"),
                None => eprintln!("{applied}: {what}"),
            }
        }
    }
    Ok(())
}

/// A dry run's plan for a person: a line per interface with its actions, then a line
/// per key that differs (`before -> after`); a line per host knob.
fn plan_text(plan: &mptcpstate::ApplyPlan, file: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(file) = file {
        let _ = writeln!(out, "{file}:");
    }
    if plan.is_empty() {
        out.push_str("nothing would change\n");
        return out;
    }
    for i in &plan.interfaces {
        let actions: Vec<String> = i
            .actions
            .iter()
            .map(|a| {
                serde_json::to_value(a).map_or_else(
                    |_| format!("{a:?}"),
                    |v| v.as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let _ = writeln!(out, "{}: {}", i.name, actions.join(", "));
        for (k, after) in &i.after {
            let before = i.before.get(k).cloned().unwrap_or(serde_json::Value::Null);
            let _ = writeln!(out, "  {k}: {before} -> {after}");
        }
    }
    for k in &plan.host {
        let _ = writeln!(out, "{}: {} -> {}", k.key, k.before, k.after);
    }
    out
}

/// One line on stderr for `commit`/`rollback`: what was done, or that nothing was
/// pending (which is not an error: exit status 0).
fn finished(verb: &str, past: &str, done: Option<String>) {
    match done {
        Some(cp) => eprintln!("{past}: {cp}"),
        None => eprintln!("nothing to {verb}: no checkpoint is pending"),
    }
}

fn display_name(file: &Path) -> String {
    if file.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        file.display().to_string()
    }
}

/// `--verify-timeout`: seconds, a decimal number of 0 or more.
fn seconds(s: &str) -> Result<Duration, String> {
    let n: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(n)
        .map_err(|_| format!("`{s}` is not a number of seconds (finite, 0 or more)"))
}

/// The progress of an apply on one line of a terminal, redrawn in place.
struct ProgressLine {
    drawn: AtomicBool,
}

impl ProgressLine {
    fn new() -> Arc<Self> {
        Arc::new(ProgressLine {
            drawn: AtomicBool::new(false),
        })
    }

    fn show(&self, p: &Progress) {
        let mut err = std::io::stderr().lock();
        let _ = if p.total == 0 {
            write!(err, "\r\x1b[K{}", p.phase)
        } else {
            write!(err, "\r\x1b[K{} {}/{}", p.phase, p.done, p.total)
        };
        let _ = err.flush();
        self.drawn.store(true, Ordering::SeqCst);
    }

    /// Erases the line, if anything was drawn.
    fn clear(&self) {
        if self.drawn.swap(false, Ordering::SeqCst) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}

fn output(json: bool) -> OutputFormat {
    if json {
        OutputFormat::Json
    } else {
        OutputFormat::Yaml
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>, Error> {
    let stdin = file.as_os_str() == "-";
    let name = || display_name(file);
    let cannot = |e: std::io::Error| io_error(format!("cannot read {}", name()), &e);
    // Read at most one byte past the library's cap: an oversized input is refused without
    // reading all of it, with the file's real size where it is known.
    let limit = mptcpstate::state::MAX_INPUT_BYTES;
    let mut buf = Vec::new();
    let size = if stdin {
        std::io::stdin()
            .take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(cannot)?;
        None
    } else {
        let f = std::fs::File::open(file).map_err(cannot)?;
        let size = f.metadata().map_err(cannot)?.len();
        f.take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(cannot)?;
        Some(size)
    };
    if buf.len() > limit {
        return Err(mptcpstate::state::input_too_large(size));
    }
    Ok(buf)
}

/// A file the command cannot read or write: `PermissionDenied` when the caller may not
/// (EACCES, EPERM: another user's directory, a root-owned one), else `InvalidArgument`
/// (no such file, a directory where a file belongs, ...): the path given is wrong.
fn io_error(what: String, e: &std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
        _ => ErrorKind::InvalidArgument,
    };
    Error::new(kind, format!("{what}: {e}"))
}

fn write_keyfiles(dir: &Path, files: &[(String, String)]) -> Result<(), Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io_error(format!("cannot write {}", dir.display()), &e))?;
    for (name, content) in files {
        // NetworkManager ignores keyfiles that others can read, and never reads half a
        // file; a symlink in the keyfile's place is replaced, its target never written.
        let path = write_private(dir, name, content.as_bytes())?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Writes `dir/name` as a new file, mode 0600 from its creation, renamed over what was
/// there (a file keeps neither its mode nor, if it was a symlink, its target); returns
/// its path.
fn write_private(dir: &Path, name: &str, content: &[u8]) -> Result<PathBuf, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error(format!("cannot write {}", path.display()), &e)
    })?;
    Ok(path)
}

fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not the library's failure: stop quietly.
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::invalid(format!("cannot write the output: {e}"))),
    }
}

fn print_log(log: &Log, verbose: bool) {
    let mut err = std::io::stderr().lock();
    for r in log.records() {
        if verbose || r.level <= Level::Warn {
            let level = format!("{:?}", r.level).to_uppercase();
            let _ = writeln!(err, "{} {level} {}: {}", r.time, r.target, r.message);
        }
    }
}

fn one_line(msg: &str) -> String {
    msg.replace('\n', " ")
}

fn exit(code: u32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
