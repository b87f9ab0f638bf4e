//! The `particast` command line: parses arguments, runs one command, prints an error as one
//! line and exits with [`particast::Error::exit_code`] (0 ok, 1 runtime failure, 2 bad usage
//! or bad input, 101 a bug).

mod args;
mod commands;
mod show;

use args::{Cli, Command, Global};
use clap::Parser;
use std::process::ExitCode;
use std::sync::Mutex;

/// mimalloc instead of the system allocator: the kernels' per-chunk buffers are freed and
/// allocated again every training step, which glibc serves with fresh pages (mmap and page
/// faults) above its threshold; mimalloc reuses them (a training step at H = 40, L = 1 runs in
/// about half the time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The message of the last panic, kept by the hook and printed only when the panic ends the
/// command (the libraries catch some panics of their dependencies and turn them into errors).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Sets up `tracing` on stderr: warnings by default, more with -v, none with --quiet.
fn init_logging(g: &Global) {
    let default = if g.quiet {
        "error"
    } else {
        match g.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the parsed command.
fn run(cli: Cli) -> Result<(), particast::Error> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Ingest(args) => commands::ingest(args, quiet),
        Command::Run(args) => commands::run(args, quiet),
        Command::Train(args) => commands::train(args, quiet),
        Command::Score(args) => commands::score(args, quiet),
        Command::Forecast(args) => commands::forecast(args, quiet),
        Command::Cv(args) => commands::cv(args, quiet),
        Command::Evaluate(args) => commands::evaluate(args, quiet),
        Command::Inspect(args) => commands::inspect(args),
        Command::Plot(args) => commands::plot(args, quiet),
        Command::Nab(args) => commands::nab(args),
    }
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string());
        }
    }));
    let cli = Cli::parse();
    init_logging(&cli.global);
    match std::panic::catch_unwind(|| run(cli)) {
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
        Ok(Err(e)) => match e.exit_code() {
            // The reader of our standard output went away: quietly done.
            0 => ExitCode::SUCCESS,
            code => {
                eprintln!("error: {e}");
                ExitCode::from(code)
            }
        },
    }
}
