//! The steps to a connection: route, DNS, TCP, proxy, TLS.

use url::Url;

use super::report::{failed, ms, Failed, Probe};
use super::text::tls_summary;

use crate::net::{Connection, DialError, Dialer, Direct, Route, Timings, TlsInfo};

impl Probe {
    fn route(&mut self, url: &Url, route: &Route) {
        let target = url.host_str().unwrap_or("");
        let r = &mut self.report.route;
        r.description = route.describe(target);
        match route {
            Route::Proxy { proxy, source } => {
                r.mode = "proxy";
                r.proxy = Some(proxy.display());
                r.chosen_by = Some(source.clone());
            }
            Route::Direct(d) => {
                r.mode = "direct";
                r.direct_reason = Some(match d {
                    Direct::NoProxyVariable => "no_proxy_variable",
                    Direct::NoProxyOption => "no_proxy_option",
                    Direct::Excluded { .. } => "excluded",
                });
                if let Direct::Excluded {
                    variable,
                    entry,
                    proxy_variable,
                } = d
                {
                    r.no_proxy_variable = Some(variable.clone());
                    r.no_proxy_entry = Some(entry.clone());
                    r.proxy_variable = Some(proxy_variable.clone());
                }
            }
        }
        let d = self.report.route.description.clone();
        self.line("route", None, &d);
    }

    /// Reports the dial steps that happened (all of them, or those before
    /// a failure).
    fn dial_steps(
        &mut self,
        timings: &Timings,
        addresses: &[std::net::SocketAddr],
        peer: Option<std::net::SocketAddr>,
        proxy_tls: Option<&TlsInfo>,
        proxied: bool,
    ) {
        let r = &mut self.report;
        r.dns_ms = timings.dns.map(ms);
        r.tcp_ms = timings.tcp.map(ms);
        r.proxy_tls_ms = timings.proxy_tls.map(ms);
        r.proxy_connect_ms = timings.proxy_connect.map(ms);
        r.tls_ms = timings.tls.map(ms);
        r.addresses = addresses.iter().map(|a| a.to_string()).collect();
        r.peer = peer.map(|p| p.to_string());
        r.proxy_tls = proxy_tls.cloned();
        let whose = if proxied { " (proxy)" } else { "" };
        if let Some(d) = timings.dns {
            self.line(
                "dns",
                Some(d),
                &format!("{}{whose}", self.report.addresses.join(", ")),
            );
        }
        if let (Some(d), Some(p)) = (timings.tcp, peer) {
            self.line("tcp", Some(d), &format!("connected to {p}{whose}"));
        }
        if let (Some(d), Some(info)) = (timings.proxy_tls, proxy_tls) {
            self.line("proxy-tls", Some(d), &tls_summary(info));
            self.chain(info);
        }
    }

    fn chain(&self, info: &TlsInfo) {
        for (i, c) in info.chain.iter().enumerate() {
            self.line(&format!("  cert {i}"), None, c);
        }
    }

    /// Route, DNS, TCP, proxy, TLS.
    pub(super) async fn connect(
        &mut self,
        dialer: &Dialer,
        url: &Url,
    ) -> Result<Connection, Failed> {
        let target = format!(
            "{}:{}",
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        match dialer.connect(url).await {
            Ok(c) => {
                self.route(url, &c.route);
                let proxied = c.proxy.is_some();
                self.dial_steps(
                    &c.timings,
                    &c.addresses,
                    Some(c.peer),
                    c.proxy_tls.as_ref(),
                    proxied,
                );
                if let (Some(d), Some(reply)) = (c.timings.proxy_connect, &c.proxy_reply) {
                    self.line("proxy", Some(d), &format!("CONNECT {target}: {reply}"));
                    self.report.proxy_reply = Some(reply.clone());
                }
                if let (Some(d), Some(info)) = (c.timings.tls, &c.tls) {
                    self.line("tls", Some(d), &tls_summary(info));
                    self.chain(info);
                    self.report.tls = Some(info.clone());
                }
                Ok(c)
            }
            Err(e) => match e.downcast_ref::<DialError>() {
                Some(d) => {
                    let proxied = matches!(d.route, Some(Route::Proxy { .. }));
                    if let Some(r) = &d.route {
                        self.route(url, r);
                    }
                    self.dial_steps(
                        &d.timings,
                        &d.addresses,
                        d.peer,
                        d.proxy_tls.as_ref(),
                        proxied,
                    );
                    self.report.proxy_status = d.proxy_status;
                    Err(failed(d.step.name(), d.message.clone()))
                }
                None => Err(failed("tcp", format!("{e:#}"))),
            },
        }
    }
}
