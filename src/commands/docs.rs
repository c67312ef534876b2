//! `tenantwatch completions SHELL` and `tenantwatch man`: shell completions
//! and the man page, generated from the same clap definitions as the parser,
//! so they cannot drift from the flags the binary takes.

use std::io::Write;
use std::process::ExitCode;

/// `tenantwatch completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Prints the completion script for the shell; `cmd` is the whole command line.
pub fn completions(args: CompletionsArgs, mut cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tenantwatch", &mut out);
    print(&out)
}

/// Prints `tenantwatch(1)` in roff (`tenantwatch man > tenantwatch.1`) for `cmd`.
pub fn man(cmd: clap::Command) -> ExitCode {
    let mut out = Vec::new();
    match clap_mangen::Man::new(cmd).render(&mut out) {
        Ok(()) => print(&out),
        Err(e) => {
            eprintln!("error: cannot render the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error worth a panic.
fn print(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
