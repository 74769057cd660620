//! The library's runtime when its callers drive it ([`Runtime::drive_on_caller`], what the
//! CLI does): no I/O thread; timers and sockets work for one caller and for several at
//! once; a netlink [`Writer`] opened inside a runtime of the caller's own (the rollback
//! timer's) is driven by that runtime, not by the library's, which nobody drives outside
//! its calls; a child made by fork(2) gets a working runtime of the same kind. Its own
//! test binary, and one test: the choice is made once per process, before the first use.

use std::time::Duration;

use mptcpstate::netlink::Writer;
use mptcpstate::Runtime;

#[test]
fn the_callers_drive_the_reactor() {
    assert!(
        Runtime::drive_on_caller(),
        "nothing started the runtime yet"
    );
    let rt = Runtime::global().unwrap();
    assert!(
        !Runtime::drive_on_caller(),
        "once the runtime runs, the choice is made"
    );
    assert_eq!(rt.block_on(sleep_ms(10)).unwrap(), 10);
    let names = thread_names();
    assert!(
        !names.iter().any(|n| n == "mptcpstate-io"),
        "an I/O thread runs: {names:?}"
    );

    // Several callers at once: one of them holds the reactor and wakes the others, each
    // polls its own future on its own thread.
    let callers: Vec<_> = (0..6u64)
        .map(|i| {
            std::thread::spawn(move || {
                rt.block_on(async move {
                    let mut total = 0;
                    for _ in 0..3 {
                        total += sleep_ms(2 + i).await;
                    }
                    total
                })
                .unwrap()
            })
        })
        .collect();
    let totals: Vec<u64> = callers.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(totals, (0..6u64).map(|i| 3 * (2 + i)).collect::<Vec<_>>());

    // A Writer opened inside the caller's own runtime, in a network namespace of this
    // thread's own (lo only; it goes away with the thread): its write completes.
    let written = std::thread::spawn(|| {
        // SAFETY: unshare on this thread only; no other thread shares its namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "unshare(CLONE_NEWNET): {}",
                std::io::Error::last_os_error()
            ));
        }
        let local = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())?;
        local.block_on(async {
            let mut writer = Writer::open().map_err(|e| e.to_string())?;
            match tokio::time::timeout(Duration::from_secs(5), writer.set_link_up(1, true)).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the write never completed: its socket is not driven".into()),
            }
        })
    })
    .join()
    .unwrap();
    assert_eq!(written, Ok(()));

    // A forked child: a runtime of its own, driven by its caller too.
    // SAFETY: every other thread of this test has ended; the child runs Rust code that
    // glibc's fork handling keeps safe and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain libc calls in the child.
        unsafe { libc::alarm(10) }; // a hang becomes SIGALRM, not a stuck test
        let code = match Runtime::global() {
            Ok(child) if !std::ptr::eq(child, rt) => match child.block_on(sleep_ms(5)) {
                Ok(5) if !thread_names().iter().any(|n| n == "mptcpstate-io") => 0,
                Ok(_) => 5,
                Err(_) => 3,
            },
            Ok(_) => 2,
            Err(_) => 4,
        };
        // SAFETY: leave the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status:#x} (2: reused the parent's runtime, 3: it did not run, \
         5: it started an I/O thread, SIGALRM 0xe: it hung)"
    );
}

/// A timer: needs someone to drive the runtime's time driver.
async fn sleep_ms(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}
