//! metal-switchd: parse the command line, run, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use metal_switchd::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("metal-switchd: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_RUNTIME);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("metal-switchd: error: {e}");
            if format == Some(cli::Format::Json) {
                println!("{}", cli::error_json(&e));
            }
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
