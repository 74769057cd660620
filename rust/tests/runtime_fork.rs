//! The library's runtime in a child made by fork(2) (as Python's multiprocessing does):
//! the child has no copy of the parent's I/O thread and must get a runtime of its own
//! instead of waiting forever. Its own test binary: forking a process whose other threads
//! (other tests) may hold locks would make the child flaky.

use std::time::Duration;

use mptcpstate::Runtime;

#[test]
fn a_forked_child_gets_a_working_runtime() {
    let parent = Runtime::global().unwrap();
    let slept = parent.block_on(tokio_sleep()).unwrap();
    assert!(slept);

    // SAFETY: the child only runs Rust code that glibc's fork handling keeps safe
    // (malloc, thread creation) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain libc calls in the child.
        unsafe { libc::alarm(10) }; // a hang becomes SIGALRM, not a stuck test
        let code = match Runtime::global() {
            Ok(rt) if !std::ptr::eq(rt, parent) => match rt.block_on(tokio_sleep()) {
                Ok(true) => 0,
                _ => 3,
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
         SIGALRM 0xe: it hung)"
    );
    // The parent's runtime is untouched.
    assert!(std::ptr::eq(parent, Runtime::global().unwrap()));
}

/// A timer: needs the runtime's I/O thread to drive it.
async fn tokio_sleep() -> bool {
    tokio::time::sleep(Duration::from_millis(10)).await;
    true
}
