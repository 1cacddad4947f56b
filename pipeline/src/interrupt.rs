//! Ctrl-C during `ptft run`: the first one asks the engine to start nothing
//! new and let running instances finish (their artifacts are published
//! whole), the second exits at once — safe too, because every publish is
//! an atomic rename and the next run recomputes whatever was cut short.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe operations here: an atomic swap and _exit.
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and takes no locks.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handler (once) and returns the flag the engine polls.
pub fn flag() -> &'static AtomicBool {
    #[cfg(unix)]
    // SAFETY: installing a handler that only touches an atomic and _exit.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    &INTERRUPTED
}
