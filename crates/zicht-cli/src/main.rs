//! The `zicht` command: parses arguments and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    quiet_on_closed_pipe();
    let cli = zicht_cli::Cli::parse();
    zicht_cli::init_logging(cli.log_format, cli.default_log_level());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(zicht_cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::from(zicht_cli::exit::code_of(&error))
        }
    }
}

/// `zicht ... | head` closes standard output early; `println!` then panics. That is the reader
/// stopping, not a failure: end quietly with the shell's code for SIGPIPE (128 + 13) instead of
/// a panic message. Every other panic is reported as before.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        report(info);
    }));
}
