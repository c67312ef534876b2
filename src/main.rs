//! The `tenantwatch` binary: parse the command line and hand over to [`cli::main`].
//!
//! # Layout
//!
//! - [`cli`]: the arguments and the dispatch to a command.
//! - [`commands`]: one file per subcommand (`run`, `check`, `consent`,
//!   `rotate`, and with the `sim` feature `demo` and `sim`); each turns its
//!   arguments into calls to the daemon library and its outcome into an exit code.
//! - [`signals`]: SIGTERM and SIGINT as the cancellation token every task watches.

mod cli;
mod commands;
mod signals;

use clap::Parser;

/// jemalloc rather than glibc malloc: with scrapes arriving during a cycle,
/// glibc kept freed memory spread over its arenas (93 MiB resident for a
/// 38 MB live heap at 5,000 tenants); jemalloc returns it within a second.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (read at start-up; `_RJEM_MALLOC_CONF` overrides):
/// two arenas are plenty for two runtime threads and the background one, and
/// freed pages go back to the system after a second instead of ten.
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: Option<&'static u8> =
    Some(&b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0]);

fn main() -> std::process::ExitCode {
    cli::main(cli::Cli::parse())
}
