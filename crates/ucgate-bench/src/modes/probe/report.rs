//! The report: the JSON one (stdout), the human lines (stderr), and a
//! failed step.

use std::time::Duration;

use serde::Serialize;

use crate::net::TlsInfo;

/// The JSON report (stdout), with every fact of the human one.
#[derive(Serialize, Default)]
pub(super) struct Report {
    /// Always `probe` (like the other modes' `mode`).
    pub(super) mode: &'static str,
    /// The URL probed.
    pub(super) target: String,
    /// `websocket` or `bosh`.
    pub(super) kind: &'static str,
    pub(super) ok: bool,
    /// The step that failed (`route`, `dns`, `tcp`, `proxy-tls`, `proxy`,
    /// `tls`, `handshake`, `xmpp`, `sip`, `ping`, `close`, `http`,
    /// `session`, `features`, `terminate`).
    pub(super) failed_step: Option<String>,
    pub(super) error: Option<String>,
    pub(super) warnings: Vec<String>,
    pub(super) route: RouteReport,
    /// Addresses DNS gave (the proxy's when there is one).
    pub(super) addresses: Vec<String>,
    /// Where TCP connected.
    pub(super) peer: Option<String>,
    pub(super) dns_ms: Option<f64>,
    pub(super) tcp_ms: Option<f64>,
    pub(super) proxy_tls_ms: Option<f64>,
    pub(super) proxy_connect_ms: Option<f64>,
    pub(super) tls_ms: Option<f64>,
    /// The proxy's answer to CONNECT.
    pub(super) proxy_reply: Option<String>,
    pub(super) proxy_status: Option<u16>,
    pub(super) proxy_tls: Option<TlsInfo>,
    pub(super) tls: Option<TlsInfo>,
    pub(super) websocket: Option<WsReport>,
    pub(super) bosh: Option<BoshReport>,
    pub(super) total_ms: f64,
}

#[derive(Serialize, Default)]
pub(super) struct RouteReport {
    /// `direct` or `proxy`.
    pub(super) mode: &'static str,
    /// The proxy, without credentials.
    pub(super) proxy: Option<String>,
    /// `--proxy` or the variable that chose the proxy.
    pub(super) chosen_by: Option<String>,
    /// Why direct: `no_proxy_variable`, `no_proxy_option`, `excluded`.
    pub(super) direct_reason: Option<&'static str>,
    /// `no_proxy` or `NO_PROXY`, and the entry that excluded the host.
    pub(super) no_proxy_variable: Option<String>,
    pub(super) no_proxy_entry: Option<String>,
    /// The variable that would have chosen a proxy.
    pub(super) proxy_variable: Option<String>,
    /// The human line.
    pub(super) description: String,
}

#[derive(Serialize, Default)]
pub(super) struct WsReport {
    pub(super) handshake_ms: Option<f64>,
    pub(super) status: Option<u16>,
    pub(super) subprotocol_offered: Option<String>,
    pub(super) subprotocol: Option<String>,
    pub(super) ping_ms: Vec<f64>,
    pub(super) ping_avg_ms: Option<f64>,
    pub(super) xmpp: Option<XmppReport>,
    pub(super) sip: Option<SipReport>,
    pub(super) close_ms: Option<f64>,
    /// The code of the server's close frame.
    pub(super) close_code: Option<u16>,
}

#[derive(Serialize, Default)]
pub(super) struct XmppReport {
    pub(super) domain: String,
    /// Time from sending `<open/>` to the server's `<open`.
    pub(super) open_ms: Option<f64>,
    /// The server's `<open …/>`.
    pub(super) open: Option<String>,
    pub(super) features: bool,
    pub(super) features_ms: Option<f64>,
    /// The server answered our `<close/>` with its own.
    pub(super) closed: bool,
}

#[derive(Serialize, Default)]
pub(super) struct SipReport {
    pub(super) keepalive_ms: Vec<f64>,
}

#[derive(Serialize, Default)]
pub(super) struct BoshReport {
    pub(super) domain: String,
    pub(super) rid: u64,
    pub(super) session_ms: Option<f64>,
    pub(super) status: Option<u16>,
    pub(super) sid: Option<String>,
    pub(super) wait: Option<String>,
    pub(super) hold: Option<String>,
    pub(super) requests: Option<String>,
    pub(super) inactivity: Option<String>,
    pub(super) polling: Option<String>,
    pub(super) ver: Option<String>,
    pub(super) features: bool,
    pub(super) features_ms: Option<f64>,
    pub(super) terminate_ms: Option<f64>,
    pub(super) terminate_status: Option<u16>,
}

/// A failed step: its name and why.
pub(super) struct Failed {
    pub(super) step: &'static str,
    pub(super) message: String,
}

pub(super) fn failed(step: &'static str, message: impl Into<String>) -> Failed {
    Failed {
        step,
        message: message.into(),
    }
}

pub(super) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// The probe in progress: the report, and the human lines as they come.
pub(super) struct Probe {
    pub(super) report: Report,
    pub(super) timeout: Duration,
}

impl Probe {
    /// One aligned human line on stderr: step name, time, detail.
    pub(super) fn line(&self, name: &str, took: Option<Duration>, detail: &str) {
        let t = took
            .map(|d| format!("{:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        eprintln!("{name:<11}{t:>12}  {detail}");
    }

    pub(super) fn failed_line(&self, name: &str, detail: &str) {
        eprintln!("{name:<11}{:>12}  {detail}", "FAILED");
    }

    pub(super) fn warn(&mut self, w: String) {
        eprintln!("{:<11}{:>12}  {w}", "warning", "");
        self.report.warnings.push(w);
    }
}
