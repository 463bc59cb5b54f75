//! Logging with `tracing`: human-readable on a terminal, JSON lines otherwise or when
//! configured. Logs go to stderr; command output goes to stdout.

use crate::config::LogFormat;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over the configured level.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_target(false).try_init()
    };
}

/// How the binary's global allocator returns freed pages (registered by `main`).
static RELEASE_HOOK: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Registers how the process's global allocator hands freed pages back to the operating
/// system. The library does not pick the allocator; the binary does (mimalloc), and it
/// keeps freed pages until told to collect them.
pub fn set_release_hook(hook: fn()) {
    let _ = RELEASE_HOOK.set(hook);
}

/// Hands memory freed by a large one-off job (training the built-in model, loading the
/// language models) back to the operating system, so the daemon's resident size reflects
/// what it keeps.
pub fn release_free_memory() {
    if let Some(hook) = RELEASE_HOOK.get() {
        hook();
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
