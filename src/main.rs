//! The `particast` command line: parses arguments, runs one command, maps errors to exit codes
//! (0 ok, 1 runtime failure, 2 bad usage or bad input).

mod cli;
mod commands;

use clap::Parser;
use std::process::ExitCode;
use std::sync::Mutex;

/// The message of the last panic, kept by the hook and printed only when the panic ends the
/// command (the libraries catch some panics of their dependencies and turn them into errors).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    let args = cli::Cli::parse();
    cli::init_logging(&args.global);
    let outcome = std::panic::catch_unwind(|| cli::run(args));
    match outcome {
        // A panic is a bug, never the user's fault: say so on one line (exit code 101).
        Err(_) => {
            let what = LAST_PANIC
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_default();
            // Except `println!` meeting a closed standard output (`particast ... | head`): the
            // reader is gone, which ends the command quietly, as for a data output.
            if what.contains("failed printing to stdout") {
                return ExitCode::SUCCESS;
            }
            eprintln!(
                "error: internal error, a bug in particast (please report it): {}",
                what.lines().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(101)
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
        // The reader of our standard output went away: quietly done (see `Failure::reader_gone`).
        Ok(Err(e)) if e.code == 0 => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {}", e.headline);
            if let Some(detail) = &e.detail {
                eprintln!("  {detail}");
            }
            ExitCode::from(e.code)
        }
    }
}
