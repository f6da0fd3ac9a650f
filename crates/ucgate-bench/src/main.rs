//! `ucgate-bench`: load generator and proxy-aware probe client.
//!
//! Every subcommand checks correctness while it measures (lost, duplicated,
//! reordered or corrupted messages are errors) and ends with a one-line JSON
//! summary on stdout and a human summary on stderr. Exit status: 0 without
//! errors, 1 with any, 2 for a usage error. See docs/bench.md.

use clap::{Parser, Subcommand};

mod modes;
mod net;
mod report;
mod stats;

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
    /// A TCP echo server (a task per connection); prints `listening ADDR`
    /// when ready and runs until killed.
    TcpEchoServer(modes::tcp_echo::ServerArgs),
    /// Raw TCP echo baseline: self-checking messages to an echo server.
    TcpEcho(modes::tcp_echo::Args),
    /// WebSocket echo through a `tcp` tunnel route in front of an echo server.
    WsEcho(modes::ws_echo::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => modes::probe::run(args).await,
        Command::TcpEchoServer(args) => modes::tcp_echo::serve(args).await,
        Command::TcpEcho(args) => modes::tcp_echo::run(args).await,
        Command::WsEcho(args) => modes::ws_echo::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ucgate-bench: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
