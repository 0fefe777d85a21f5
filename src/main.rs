//! The `idgraph` binary: parse the command line, load the configuration, dispatch.

use clap::Parser;
use idgraph::cli::{Cli, Command};
use idgraph::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("idgraph: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let ignored = idgraph::config::ignored_environment();
    if !ignored.is_empty() {
        eprintln!(
            "idgraph: ignoring environment variables that are not settings: {}",
            ignored.join(", ")
        );
    }
    if !matches!(cli.command, Command::Schema) {
        idgraph::telemetry::init(config.log_format);
    }
    match idgraph::cli::run(cli.command, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("idgraph: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
