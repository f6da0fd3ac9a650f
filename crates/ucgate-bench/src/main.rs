//! `ucgate-bench`: load generator and proxy-aware probe client.
//!
//! Every subcommand checks correctness while it measures (lost, duplicated,
//! reordered or corrupted messages are errors) and ends with a one-line JSON
//! summary on stdout and a human summary on stderr. Exit status: 0 without
//! errors, 1 with any, 2 for a usage error. See docs/bench.md.

use clap::{Parser, Subcommand};

mod bosh_client;
mod modes;
mod net;
mod report;
mod stats;
mod xmpp_client;
mod xmpp_stream;

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
    /// Many idle sessions (ws, bosh, xmpp-ws) ramped up, held, closed; with
    /// --pid, the gateway's memory per connection.
    Idle(modes::idle::Args),
    /// XMPP over WebSocket (RFC 7395): log in, send messages to oneself.
    XmppWs(modes::xmpp::GatewayArgs),
    /// XMPP over BOSH (XEP-0124/0206): log in, send messages to oneself.
    XmppBosh(modes::xmpp::GatewayArgs),
    /// XMPP over plain TCP (RFC 6120, no TLS): log in, send messages to oneself.
    XmppTcp(modes::xmpp::Args),
    /// XMPP's plain TCP stream in binary WebSocket messages through a byte
    /// relay (a `tcp` tunnel route, websocat) to the c2s port: the floor of
    /// any WebSocket gateway in front of c2s.
    XmppRelay(modes::xmpp::GatewayArgs),
    /// SIP over WebSocket (RFC 7118): REGISTER, then MESSAGEs to oneself.
    SipWs(modes::sip_ws::Args),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => modes::probe::run(args).await,
        Command::TcpEchoServer(args) => modes::tcp_echo::serve(args).await,
        Command::TcpEcho(args) => modes::tcp_echo::run(args).await,
        Command::WsEcho(args) => modes::ws_echo::run(args).await,
        Command::Idle(args) => modes::idle::run(args).await,
        Command::XmppWs(a) => {
            modes::xmpp::run(xmpp_client::Transport::Ws, a.common, &a.proxy).await
        }
        Command::XmppBosh(a) => {
            modes::xmpp::run(xmpp_client::Transport::Bosh, a.common, &a.proxy).await
        }
        Command::XmppTcp(args) => {
            // no dialer: the proxy options are not used
            let unused = net::ProxyOptions::default();
            modes::xmpp::run(xmpp_client::Transport::Tcp, args, &unused).await
        }
        Command::XmppRelay(a) => {
            modes::xmpp::run(xmpp_client::Transport::Relay, a.common, &a.proxy).await
        }
        Command::SipWs(args) => modes::sip_ws::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ucgate-bench: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
