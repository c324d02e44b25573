//! The `twinfeed` binary: parse the command line, run it, print an error chain and exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = twinfeed::cli::Cli::parse();
    match twinfeed::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("twinfeed: {error:#}");
            ExitCode::from(2)
        }
    }
}
