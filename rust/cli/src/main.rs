//! `mptcpstatectl`: the command line of mptcpstate.
//!
//! Exit status: 0, or the error code of the library's error kind (1 InvalidArgument ...
//! 9 Bug); usage errors are InvalidArgument. Errors are one line on stderr. Warnings are
//! always shown; `-v` shows every log record of the call.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mptcpstate::{Error, ErrorKind, Level, Log, OutputFormat};

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
    /// Print the library version.
    Version,
}

fn main() -> ExitCode {
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
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcpstatectl: {}: {}", e.kind(), one_line(e.msg()));
            exit(e.kind().code())
        }
    }
}

fn run(cli: &Cli, log: &Log) -> Result<(), Error> {
    match &cli.command {
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
        Command::Version => print(&format!("{}\n", mptcpstate::VERSION)),
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
    let name = || {
        if stdin {
            "standard input".to_string()
        } else {
            file.display().to_string()
        }
    };
    let cannot = |e: std::io::Error| Error::invalid(format!("cannot read {}: {e}", name()));
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

fn write_keyfiles(dir: &Path, files: &[(String, String)]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: &Path, e: std::io::Error| {
        Error::invalid(format!("cannot write {}: {e}", what.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    for (name, content) in files {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        f.write_all(content.as_bytes()).map_err(|e| io(&path, e))?;
        println!("{}", path.display());
    }
    Ok(())
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
