//! The rollback timer of a no-commit apply: a process of its own that rolls the undo
//! record back at its deadline unless someone commits or rolls it back first, so that a
//! caller that dies (or forgets) does not leave the change in place for ever. It is what
//! NetworkManager's checkpoint timeout is for NM's devices, for everything else: the
//! kernel-only changes, the host knobs, profiles the checkpoint does not hold.
//!
//! Why a fork and not a thread: a thread dies with its process. Why a fork and not an
//! exec of a helper program: the library is linked into C programs and Python, and no
//! helper binary can be assumed to be installed beside it. The child is made by a double
//! fork (it is nobody's child and has no terminal), closes the descriptors it inherited
//! but AF_UNIX sockets (a caller's pipes see their end of file as usual; the async
//! runtime's per-process signal socket pair stays usable), keeps the network namespace of the
//! calling thread (fork copies the calling thread, with its namespace), and runs on a
//! runtime of its own; it uses no lock another thread of the parent could have held at
//! the fork, and leaves with `_exit`.
//!
//! It waits with inotify on the record's directory, so a commit or rollback by anyone
//! ends it at once. At the deadline it claims the record (exactly one actor can) and rolls
//! it back. What it did goes to `timer.log` in the record's directory.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::record;
use crate::{Error, ErrorKind, Log, Result};

/// Starts the timer of the record at `path`, due at `deadline_ms` (ms since the epoch).
pub fn spawn(path: &Path, deadline_ms: u64) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::bug("an undo record without a directory"))?
        .to_path_buf();
    // Everything the child needs, made before the fork.
    let dir_c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| Error::bug("a record directory with a NUL byte"))?;
    let path = path.to_path_buf();
    let devnull = c"/dev/null";

    // The intermediate child says through this pipe that the timer exists (one byte),
    // not through its exit status: tools that run the caller (valgrind's
    // --error-exitcode, for the leaks it finds in every forked child) rewrite that.
    let mut pipe = [-1; 2];
    // SAFETY: pipe2 into a local array.
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::new(
            ErrorKind::Kernel,
            format!(
                "starting the rollback timer: pipe failed: {}",
                std::io::Error::last_os_error()
            ),
        ));
    }
    let [ready_r, ready_w] = pipe;
    // SAFETY: fork in a possibly multi-threaded process. The child only calls
    // async-signal-safe functions until the second fork; the grandchild runs code that
    // needs no lock another thread may hold (see the module's note) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: closing the pipe made above.
        unsafe {
            libc::close(ready_r);
            libc::close(ready_w);
        }
        return Err(Error::new(
            ErrorKind::Kernel,
            format!("starting the rollback timer: fork failed: {e}"),
        ));
    }
    if pid > 0 {
        // SAFETY: the parent's end of the pipe, then waiting for the intermediate child
        // this function made (its exit status is not looked at, see above).
        let started = unsafe {
            libc::close(ready_w);
            let mut byte = 0u8;
            let n = loop {
                let n = libc::read(ready_r, (&mut byte as *mut u8).cast(), 1);
                if !(n < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted)
                {
                    break n;
                }
            };
            libc::close(ready_r);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            n == 1
        };
        if !started {
            return Err(Error::new(
                ErrorKind::Kernel,
                "starting the rollback timer: its process could not start",
            ));
        }
        return Ok(());
    }
    // The intermediate child: a new session, then the timer, then leave at once so the
    // timer is nobody's child.
    // SAFETY: async-signal-safe calls in the child of fork.
    unsafe {
        libc::close(ready_r);
        libc::setsid();
        let pid = libc::fork();
        if pid != 0 {
            if pid > 0 {
                libc::write(ready_w, b"1".as_ptr().cast(), 1);
            }
            libc::_exit(if pid < 0 { 1 } else { 0 });
        }
        libc::close(ready_w);
        // The timer: no inherited descriptors, standard streams on /dev/null.
        let null = libc::open(devnull.as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
        }
        // Default dispositions and no blocked signal: the caller's handlers (a CLI's
        // Ctrl-C flag) mean nothing here.
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_DFL);
        }
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::chdir(c"/".as_ptr());
    }
    close_inherited();
    // Nothing may unwind out of here: above this frame is the caller's stack, copied by
    // the fork, which the timer must never return into.
    let code = std::panic::catch_unwind(|| run(&dir, &dir_c, &path, deadline_ms)).unwrap_or_else(
        |panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            write_log(
                &dir,
                &format!("{}: the timer panicked: {what}", path.display()),
                &Log::new(),
            );
            2
        },
    );
    // SAFETY: leave without the parent's destructors and atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Closes what the timer inherited (the caller's pipes, files, the namespace's lock, its
/// sockets) but AF_UNIX sockets: the async runtime keeps a socket pair per process for
/// its signal handling, made once in the parent and needed by the timer's own runtime.
fn close_inherited() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        if !is_unix_socket(fd) {
            // SAFETY: closing a descriptor of this process (one that is gone already
            // gives EBADF, which is fine).
            unsafe { libc::close(fd) };
        }
    }
}

fn is_unix_socket(fd: i32) -> bool {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt into a local int; fails with ENOTSOCK for other descriptors.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && domain == libc::AF_UNIX
}

/// The timer's life: wait, then roll back. Returns the exit status.
fn run(dir: &Path, dir_c: &CString, path: &Path, deadline_ms: u64) -> i32 {
    if !wait(dir_c, path, deadline_ms) {
        return 0;
    }
    let Ok(Some(claimed)) = record::claim(path) else {
        return 0;
    };
    let log = Log::new();
    // On a thread of its own: this one is still inside the caller's `block_on` (the fork
    // copied its thread-local runtime context), where no runtime may block. A new thread
    // starts in this thread's network namespace.
    let outcome = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .map_err(|e| Error::bug(format!("a runtime for the rollback timer: {e}")))
                    .and_then(|rt| rt.block_on(super::pipeline::roll_back_record(&claimed, &log)))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::bug("the rollback timer's thread panicked")))
    });
    let name = claimed.path.display().to_string();
    let line = match &outcome {
        Ok(()) => format!("{name}: rolled back at its deadline"),
        Err(e) => format!("{name}: the rollback at its deadline failed: {e}"),
    };
    // Logged first: whoever sees the record gone finds what became of it.
    write_log(dir, &line, &log);
    claimed.release();
    i32::from(outcome.is_err())
}

/// Waits until the deadline (true) or until the record is gone (false): committed or
/// rolled back. A record claimed by a commit or rollback that is under way is not gone
/// yet: if that fails, it puts the record back, and the timer still rolls it back at its
/// deadline (or at once, if that has passed meanwhile).
fn wait(dir_c: &CString, path: &Path, deadline_ms: u64) -> bool {
    // SAFETY: plain syscalls on a descriptor this function owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
    if fd >= 0 {
        // SAFETY: `dir_c` is NUL-terminated.
        unsafe {
            libc::inotify_add_watch(
                fd,
                dir_c.as_ptr(),
                libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_DELETE_SELF,
            )
        };
    }
    let due = loop {
        let left = deadline_ms.saturating_sub(record::now_ms());
        if path.exists() {
            if left == 0 {
                break true;
            }
        } else if !record::claimed_by_live(path) {
            // Released by whoever claimed it, unless it came back meanwhile (a failed
            // action's unclaim, or a dead claimer's record put back by the look above).
            if !path.exists() {
                break false;
            }
            continue;
        }
        // At most a second between looks, also without inotify (and while a claimer is
        // at work: its release or unclaim wakes the poll up).
        let slice = Duration::from_millis(if left == 0 { 1000 } else { left.min(1000) });
        if fd >= 0 {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, slice.as_millis() as i32) };
            let mut buf = [0u8; 4096];
            // SAFETY: draining the events into a local buffer.
            while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        } else {
            std::thread::sleep(slice);
        }
    };
    if fd >= 0 {
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
    }
    due
}

/// Appends what the timer did to `timer.log` beside the records.
fn write_log(dir: &Path, line: &str, log: &Log) {
    use std::os::unix::fs::OpenOptionsExt;
    let file: PathBuf = dir.join("timer.log");
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file)
    else {
        return;
    };
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    let _ = writeln!(f, "{now} {line}");
    for r in log.records() {
        let _ = writeln!(f, "{} {:?} {}", r.time, r.level, r.message);
    }
}
