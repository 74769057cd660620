//! The library's one async runtime, for netlink and D-Bus I/O.
//!
//! A current-thread tokio runtime, built once on first use, whose reactor (epoll, timers)
//! is driven by one dedicated thread (`mptcpstate-io`) that sits in `block_on` for the
//! life of the process. Calls come from any thread (C and Python call concurrently) and
//! run their future *on the calling thread* with [`Runtime::block_on`]
//! (`Handle::block_on`): the I/O thread only turns readiness into wake-ups.
//!
//! Why this shape:
//! - Concurrent callers do not queue behind each other: each polls its own future on its
//!   own thread; they share only the reactor.
//! - Netlink sockets and /proc/sys/net follow the network namespace of the thread that
//!   opens them. Opening them on the caller's thread keeps the contract simple: a call
//!   reads the namespace of the thread that made it (a test thread that joined a sandbox
//!   with setns(2) reads the sandbox). A pool of worker threads would read the namespace
//!   the pool was started in.
//! - One thread, not a multi-threaded scheduler: the work is a few syscalls per call; a
//!   second core would only add cross-thread hand-offs. Tasks a D-Bus connection spawns
//!   run on the I/O thread.
//! - Built once per process: the first call pays for the thread and the epoll instance
//!   (140 µs measured); later calls pay a mutex and getpid(2). Handing readiness from the
//!   I/O thread to the caller costs a cross-thread wake-up per kernel round trip (about
//!   35 µs on a 2-core VM: `get_limits` takes 87 µs here, 51 µs with a runtime built per
//!   call); a kernel read at 1000 veths takes 7.5 ms, so the shared runtime is kept.
//!
//! A single-threaded program that makes one call and exits (the CLI) gains nothing from
//! the I/O thread and pays for it on every round trip: it calls
//! [`Runtime::drive_on_caller`] before its first call, and then the calling thread drives
//! the reactor itself inside [`Runtime::block_on`] (`Runtime::block_on` of tokio's
//! current-thread runtime): no I/O thread is started, and a kernel answer is read by the
//! thread that waits for it. Measured on the 2-core VM: `read_kernel_for` of 8 names
//! takes 200 µs driven by its caller, 430 µs through the I/O thread (medians of 500 reads
//! in one process, `kernel_dump --only`), and with `bench/kernel.py` (N = 10 veths) the
//! CLI's kernel-only apply of 8 endpoints + limits took 2.6-2.8 ms instead of 3.2 ms
//! (minimums of 30 runs; medians 2.9-3.4 instead of 3.8-8.3 ms: on a loaded machine every
//! hand-off to the I/O thread waits for a core).
//! Not for programs with several calling threads: there the thread that holds the
//! reactor drives everyone's I/O, so a caller that blocks inside a call (the kernel-mode
//! apply lock's wait) stalls the others; tasks a D-Bus connection spawns run inside calls
//! only.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::runtime::{Builder, Handle};

use crate::{Error, ErrorKind, Result};

/// A handle on the library's runtime. Cheap to copy around as `&'static`.
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    /// The runtime itself when the calling threads drive it ([`Runtime::drive_on_caller`]);
    /// `None` when the I/O thread owns it.
    on_caller: Option<tokio::runtime::Runtime>,
    /// The process that started it: a child made by fork(2) (Python's multiprocessing
    /// does that) has no I/O thread, so it starts its own runtime instead of waiting
    /// forever on the parent's.
    pid: u32,
}

/// The library's runtime of this process, once started.
static CURRENT: Mutex<Option<&'static Runtime>> = Mutex::new(None);

/// Set by [`Runtime::drive_on_caller`]: the runtime, when it starts, has no I/O thread.
static ON_CALLER: AtomicBool = AtomicBool::new(false);

impl Runtime {
    /// For a single-threaded program (the CLI), before its first call: the thread that
    /// calls [`Runtime::block_on`] drives the reactor itself, and no I/O thread is
    /// started (see the module's note for what that saves and why a multi-threaded
    /// program keeps the I/O thread). Returns false, changing nothing, when this process
    /// started its runtime already. A child made by fork(2) inherits the choice.
    pub fn drive_on_caller() -> bool {
        let current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*current, Some(rt) if rt.pid == std::process::id()) {
            return false;
        }
        ON_CALLER.store(true, Ordering::Relaxed);
        true
    }

    /// The library's runtime, started on first use in this process.
    pub fn global() -> Result<&'static Runtime> {
        // Held only to copy a pointer, or to start the runtime once per process.
        let mut current = CURRENT.lock().unwrap_or_else(|p| p.into_inner());
        let pid = std::process::id();
        match *current {
            Some(rt) if rt.pid == pid => Ok(rt),
            _ => {
                // Lives as long as the process (its thread never ends); after a fork the
                // parent's copy is abandoned, not dropped: its thread does not exist here.
                let rt: &'static Runtime =
                    Box::leak(Box::new(Runtime::start(pid).map_err(|e| {
                        Error::new(ErrorKind::Bug, format!("starting the I/O runtime: {e}"))
                    })?));
                *current = Some(rt);
                Ok(rt)
            }
        }
    }

    fn start(pid: u32) -> std::io::Result<Runtime> {
        let rt = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        if ON_CALLER.load(Ordering::Relaxed) {
            return Ok(Runtime {
                handle,
                on_caller: Some(rt),
                pid,
            });
        }
        std::thread::Builder::new()
            .name("mptcpstate-io".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        Ok(Runtime {
            handle,
            on_caller: None,
            pid,
        })
    }

    /// Runs `fut` to completion on the calling thread, with the runtime's reactor and
    /// timers. Any number of threads may call this at once (with
    /// [`Runtime::drive_on_caller`], one of them drives the reactor for all).
    ///
    /// Refused with [`ErrorKind::Bug`] when called from inside an async runtime (blocking
    /// there would stall it): async callers await the futures directly.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        if Handle::try_current().is_ok() {
            return Err(Error::bug(
                "a blocking mptcpstate call was made from inside an async runtime; \
                 await the async function instead",
            ));
        }
        Ok(match &self.on_caller {
            Some(rt) => rt.block_on(fut),
            None => self.handle.block_on(fut),
        })
    }

    /// The tokio handle, to spawn tasks that must outlive a call (a D-Bus connection's
    /// reader). Spawned tasks run on the I/O thread (with [`Runtime::drive_on_caller`]:
    /// inside the calls).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn concurrent_callers_and_timers() {
        let rt = Runtime::global().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    rt.block_on(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        i * 2
                    })
                    .unwrap()
                })
            })
            .collect();
        let sum: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(sum, (0..8u64).map(|i| i * 2).sum::<u64>());
        assert!(std::ptr::eq(rt, Runtime::global().unwrap()));
    }

    #[test]
    fn refused_inside_a_runtime() {
        let rt = Runtime::global().unwrap();
        let inner = rt.block_on(async { rt.block_on(async {}) }).unwrap();
        assert_eq!(inner.unwrap_err().kind(), ErrorKind::Bug);
    }
}
