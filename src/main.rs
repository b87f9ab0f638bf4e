//! The `particast` command line: parses arguments, runs one command, maps errors to exit codes
//! (0 ok, 1 runtime failure, 2 bad usage or bad input).

mod cli;
mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic is a bug, never the user's fault: say so on one line (exit code 101).
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error, a bug in particast (please report it): {info}");
    }));
    let args = cli::Cli::parse();
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.headline);
            if let Some(detail) = &e.detail {
                eprintln!("  {detail}");
            }
            ExitCode::from(e.code)
        }
    }
}
