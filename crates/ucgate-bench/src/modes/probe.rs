//! `ucgate-bench probe URL`: one connection to a gateway route, every step
//! timed and explained, for operators diagnosing a deployment.
//!
//! Steps: route (which proxy, and why), DNS, TCP, proxy TLS and CONNECT
//! (when a proxy is used), TLS (version, cipher, ALPN, chain), then
//!
//! * WebSocket (`ws://`, `wss://`): the handshake (status, subprotocol),
//!   for `--subprotocol xmpp` an RFC 7395 `<open/>` (time to the server's
//!   `<open`, whether `<stream:features>` came), for `--subprotocol sip`
//!   RFC 5626 `\r\n\r\n` keepalives answered by `\r\n`, `--count`
//!   Ping→Pong round trips, and a close with 1000;
//! * BOSH (`http://`, `https://`): session creation (XEP-0124/0206),
//!   the session attributes, stream features, and a terminate request.
//!
//! A human report goes to stderr (one line per step), one JSON line to
//! stdout. Exit 0: every step worked; 1: a step failed (the report says
//! which and why); 2: usage error. See `docs/probe.md`.

mod args;
mod bosh;
mod connect;
mod report;
mod text;
mod ws;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use url::Url;

use report::{ms, Probe, Report};

use crate::net::Dialer;

pub use args::Args;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let url = Url::parse(&args.url).with_context(|| format!("invalid URL {:?}", args.url))?;
    let kind = match url.scheme() {
        "ws" | "wss" => "websocket",
        "http" | "https" => "bosh",
        other => bail!("unsupported URL scheme {other:?}: want ws://, wss:// (WebSocket) or http://, https:// (BOSH)"),
    };
    let Some(host) = url.host_str() else {
        bail!("URL {url} has no host");
    };
    if kind == "bosh" && args.subprotocol.is_some() {
        bail!("--subprotocol is for ws:// and wss:// URLs (BOSH has none)");
    }
    let domain = args
        .domain
        .clone()
        .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
    let dialer = Dialer::new(&args.tls, &args.proxy)?;
    let mut p = Probe {
        report: Report {
            mode: "probe",
            target: url.to_string(),
            kind,
            ..Report::default()
        },
        timeout: dialer.timeout(),
    };
    let what = match (kind, &args.subprotocol) {
        ("bosh", _) => format!("BOSH, domain {domain}"),
        (_, Some(s)) => format!("WebSocket, subprotocol {s}"),
        _ => "WebSocket".to_string(),
    };
    p.line("probe", None, &format!("{url} ({what})"));
    let start = Instant::now();
    let result = if kind == "bosh" {
        p.bosh(&dialer, &url, &domain).await
    } else {
        p.websocket(&dialer, &url, &args, &domain).await
    };
    let total = start.elapsed();
    p.report.total_ms = ms(total);
    match result {
        Ok(()) => {
            p.report.ok = true;
            p.line("result", Some(total), "OK");
        }
        Err(f) => {
            p.failed_line(f.step, &f.message);
            p.line(
                "result",
                Some(total),
                &format!("FAILED at {}: {}", f.step, f.message),
            );
            p.report.failed_step = Some(f.step.to_string());
            p.report.error = Some(f.message);
        }
    }
    println!("{}", serde_json::to_string(&p.report)?);
    Ok(ExitCode::from(if p.report.ok { 0 } else { 1 }))
}
