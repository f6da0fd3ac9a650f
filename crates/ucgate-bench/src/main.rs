//! `ucgate-bench`: load generator and proxy-aware probe client.
//!
//! Every subcommand checks correctness while it measures (lost, duplicated,
//! reordered or corrupted messages are errors) and ends with a one-line JSON
//! summary on stdout and a human summary on stderr.

use clap::{Parser, Subcommand};

mod modes;
mod net;
mod report;

#[derive(Parser)]
#[command(name = "ucgate-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Probe a ws://, wss:// or BOSH (http://, https://) URL: DNS, TCP, TLS,
    /// handshake timings, subprotocol and a round trip (honours proxy variables).
    Probe(modes::probe::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => modes::probe::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ucgate-bench: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
