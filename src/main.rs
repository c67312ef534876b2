//! The `tenantwatch` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    tenantwatch::cli::main(tenantwatch::cli::Cli::parse())
}
