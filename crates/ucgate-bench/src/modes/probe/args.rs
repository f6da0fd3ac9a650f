//! The probe's command line.

use crate::net::{ProxyOptions, TlsOptions};

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ucgate-bench probe wss://chat.example/xmpp-websocket --subprotocol xmpp
  ucgate-bench probe https://chat.example/http-bind --domain example.org
  https_proxy=http://user:pass@proxy:3128 ucgate-bench probe wss://gw.example/echo
  ucgate-bench probe ws://127.0.0.1:5290/echo --no-proxy --count 10

Proxies: wss:// uses wss_proxy, then https_proxy, then all_proxy; ws:// uses
ws_proxy, then http_proxy, then all_proxy (https_proxy / http_proxy for BOSH
URLs); lowercase before uppercase; NO_PROXY excludes hosts. Always an HTTP
CONNECT tunnel. Exit status: 0 all steps worked, 1 a step failed, 2 usage.")]
pub struct Args {
    /// ws:// or wss:// (WebSocket route), http:// or https:// (BOSH) URL of the gateway route.
    pub url: String,
    /// WebSocket subprotocol to offer (`xmpp` and `sip` add protocol checks); default none.
    #[arg(long, value_name = "NAME")]
    pub subprotocol: Option<String>,
    /// XMPP domain for the `xmpp` <open/> and the BOSH session; default the URL's host.
    #[arg(long, value_name = "DOMAIN")]
    pub domain: Option<String>,
    /// WebSocket round trips: Ping→Pong (and SIP keepalives with `--subprotocol sip`).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub count: u32,
    #[command(flatten)]
    pub tls: TlsOptions,
    #[command(flatten)]
    pub proxy: ProxyOptions,
}
