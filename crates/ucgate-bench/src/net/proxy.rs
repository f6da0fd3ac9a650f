//! Proxy selection and the HTTP CONNECT tunnel.
//!
//! * [`choose`]: which proxy (if any) a URL goes through, from the command
//!   line or from a snapshot of the environment variables (a plain map, so
//!   the rules are unit-tested without touching the process environment);
//! * [`no_proxy_match`]: the `NO_PROXY` rules;
//! * [`ProxyUrl`]: `http://[user:pass@]host[:port]` or `https://…`;
//! * [`connect_tunnel`]: `CONNECT host:port HTTP/1.1` over an open stream,
//!   keeping any bytes the proxy sent after its response head
//!   ([`Prefixed`]).
//!
//! The decisions are written down in `docs/probe.md`.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use url::Url;

/// Every environment variable proxy selection reads.
pub const ENV_VARS: &[&str] = &[
    "ws_proxy",
    "WS_PROXY",
    "wss_proxy",
    "WSS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// The proxy-related variables of the process environment.
pub fn env_snapshot() -> HashMap<String, String> {
    ENV_VARS
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// The variables consulted for a target URL scheme, in order: the first one
/// set to a non-empty value wins. Lowercase before uppercase (like curl).
pub fn candidate_vars(scheme: &str) -> &'static [&'static str] {
    match scheme {
        "ws" => &[
            "ws_proxy",
            "WS_PROXY",
            "http_proxy",
            "HTTP_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ],
        "wss" => &[
            "wss_proxy",
            "WSS_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ],
        "http" => &["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
        "https" => &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
        _ => &["all_proxy", "ALL_PROXY"],
    }
}

/// The first of `names` set to a non-empty value (after trimming).
fn first_set<'a>(
    env: &'a HashMap<String, String>,
    names: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    names.iter().find_map(|n| {
        env.get(*n)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(|v| (*n, v))
    })
}

/// A parsed proxy URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyUrl {
    /// `https://` proxy: TLS to the proxy itself.
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Percent-decoded credentials.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl ProxyUrl {
    /// Parses `http://[user:pass@]host[:port][/]` or `https://…`; a value
    /// without a scheme (`host:port`) is taken as `http://`. The default
    /// port is the scheme's: 80 for `http`, 443 for `https`.
    pub fn parse(text: &str) -> Result<ProxyUrl, String> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let u = Url::parse(&with_scheme).map_err(|e| format!("invalid proxy URL {text:?}: {e}"))?;
        let tls = match u.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(format!(
                    "unsupported proxy scheme {other:?} in {:?} (want http:// or https://)",
                    redact(text)
                ))
            }
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("proxy URL {:?} has no host", redact(text)))?
            .trim_matches(['[', ']'])
            .to_string();
        if !matches!(u.path(), "" | "/") || u.query().is_some() {
            return Err(format!(
                "proxy URL {:?} has a path or query: write only scheme://[user:pass@]host[:port]",
                redact(text)
            ));
        }
        let port = u.port_or_known_default().unwrap_or(80);
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| format!("proxy credentials in {:?} are not UTF-8", redact(text)))
        };
        let username = match u.username() {
            "" => None,
            s => Some(decode(s)?),
        };
        let password = match u.password() {
            None => None,
            Some(s) => Some(decode(s)?),
        };
        Ok(ProxyUrl {
            tls,
            host,
            port,
            username: username
                .clone()
                .or_else(|| password.as_ref().map(|_| String::new())),
            password,
        })
    }

    /// `scheme://host:port`, never the credentials.
    pub fn display(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// The `Proxy-Authorization` value when the URL has credentials.
    pub fn authorization(&self) -> Option<String> {
        let user = self.username.as_deref()?;
        let pass = self.password.as_deref().unwrap_or("");
        Some(format!(
            "Basic {}",
            base64(format!("{user}:{pass}").as_bytes())
        ))
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// A proxy URL text with any `user:pass@` replaced by `***@`, for messages.
pub fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &text[..s + 3], &text[at..]),
        (None, Some(at)) => format!("***{}", &text[at..]),
        _ => text.to_string(),
    }
}

/// Standard base64 with padding (RFC 4648 §4), for Basic credentials.
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Where proxy settings come from.
#[derive(Clone, Debug)]
pub enum Mode {
    /// `--no-proxy`: always direct.
    Off,
    /// `--proxy URL`: always this proxy (the environment, `NO_PROXY`
    /// included, is not read).
    Fixed(ProxyUrl),
    /// The proxy variables (a snapshot, see [`env_snapshot`]).
    Env(HashMap<String, String>),
}

/// Why a connection goes direct.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Direct {
    /// No proxy variable for this scheme is set.
    NoProxyVariable,
    /// `--no-proxy` was given.
    NoProxyOption,
    /// A `NO_PROXY` entry excludes the target.
    Excluded {
        /// `no_proxy` or `NO_PROXY`.
        variable: String,
        /// The matching entry, as written.
        entry: String,
        /// The variable that would have chosen a proxy.
        proxy_variable: String,
    },
}

/// How one URL is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Direct(Direct),
    Proxy {
        proxy: ProxyUrl,
        /// `--proxy` or the environment variable that chose it.
        source: String,
    },
}

impl Route {
    /// One line for reports: `direct (…)` or `proxy http://h:p (from VAR)`.
    pub fn describe(&self, target: &str) -> String {
        match self {
            Route::Proxy { proxy, source } => format!("proxy {proxy} (from {source})"),
            Route::Direct(Direct::NoProxyVariable) => "direct (no proxy variable set)".into(),
            Route::Direct(Direct::NoProxyOption) => "direct (--no-proxy)".into(),
            Route::Direct(Direct::Excluded {
                variable,
                entry,
                proxy_variable,
            }) => format!(
                "direct ({variable} entry {entry:?} excludes {target}; {proxy_variable} is set)"
            ),
        }
    }
}

/// Chooses the route for `target` (a ws, wss, http or https URL).
pub fn choose(target: &Url, mode: &Mode) -> Result<Route, String> {
    let env = match mode {
        Mode::Off => return Ok(Route::Direct(Direct::NoProxyOption)),
        Mode::Fixed(p) => {
            return Ok(Route::Proxy {
                proxy: p.clone(),
                source: "--proxy".into(),
            })
        }
        Mode::Env(env) => env,
    };
    let Some((var, value)) = first_set(env, candidate_vars(target.scheme())) else {
        return Ok(Route::Direct(Direct::NoProxyVariable));
    };
    let host = target.host_str().unwrap_or("");
    let port = target.port_or_known_default().unwrap_or(0);
    if let Some((nvar, list)) = first_set(env, &["no_proxy", "NO_PROXY"]) {
        if let Some(entry) = no_proxy_match(list, host, port) {
            return Ok(Route::Direct(Direct::Excluded {
                variable: nvar.into(),
                entry,
                proxy_variable: var.into(),
            }));
        }
    }
    let proxy = ProxyUrl::parse(value).map_err(|e| format!("{var}: {e}"))?;
    Ok(Route::Proxy {
        proxy,
        source: var.into(),
    })
}

/// One parsed `NO_PROXY` entry.
#[derive(Debug, PartialEq, Eq)]
enum Pattern {
    All,
    /// Lowercase, without leading `.`/`*.` or trailing `.`.
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

fn parse_entry(entry: &str) -> Option<(Pattern, Option<u16>)> {
    if entry == "*" {
        return Some((Pattern::All, None));
    }
    // [v6], [v6]:port, [v6]/len
    if let Some(rest) = entry.strip_prefix('[') {
        let (addr, after) = rest.split_once(']')?;
        let ip: IpAddr = addr.parse().ok()?;
        return match after {
            "" => Some((Pattern::Ip(ip), None)),
            a if a.starts_with(':') => Some((Pattern::Ip(ip), Some(a[1..].parse().ok()?))),
            a if a.starts_with('/') => cidr(ip, &a[1..]).map(|p| (p, None)),
            _ => None,
        };
    }
    if let Some((addr, len)) = entry.split_once('/') {
        return cidr(addr.parse().ok()?, len).map(|p| (p, None));
    }
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some((Pattern::Ip(ip), None));
    }
    let (name, port) = match entry.rsplit_once(':') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (n, Some(p.parse().ok()?))
        }
        _ => (entry, None),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some((Pattern::Ip(ip), port));
    }
    if name.contains(':') {
        return None;
    }
    let name = name
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.');
    if name.is_empty() {
        return None;
    }
    Some((Pattern::Domain(name.to_ascii_lowercase()), port))
}

fn cidr(ip: IpAddr, len: &str) -> Option<Pattern> {
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some(Pattern::Cidr(ip, len))
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The first entry of a `NO_PROXY` list that excludes `host:port`, as
/// written. The list is separated by commas and/or white space. Entries:
/// `*` (everything); a host name, matching itself and every name below it
/// (`example.com`, `.example.com` and `*.example.com` all match
/// `example.com` and `a.example.com`); an IP address (`127.0.0.1`, `::1`,
/// `[::1]`); a CIDR block (`127.0.0.0/8`, `::1/128`); any but a CIDR block
/// with `:port` to match that port only. Names are compared
/// case-insensitively and never resolved: an IP entry matches only a URL
/// written with that IP address.
pub fn no_proxy_match(list: &str, host: &str, port: u16) -> Option<String> {
    let host = host
        .trim_matches(['[', ']'])
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
        .find(|entry| {
            let Some((pattern, want_port)) = parse_entry(entry) else {
                return false;
            };
            if want_port.is_some_and(|p| p != port) {
                return false;
            }
            match (pattern, host_ip) {
                (Pattern::All, _) => true,
                (Pattern::Ip(ip), Some(h)) => ip == h,
                (Pattern::Cidr(net, len), Some(h)) => in_cidr(h, net, len),
                (Pattern::Domain(d), None) => {
                    host == d || (host.ends_with(&d) && host[..host.len() - d.len()].ends_with('.'))
                }
                _ => false,
            }
        })
        .map(str::to_string)
}

/// What the proxy answered to CONNECT.
#[derive(Clone, Debug)]
pub struct ConnectReply {
    /// The status line as sent (`HTTP/1.1 200 Connection established`).
    pub status_line: String,
}

/// Why a CONNECT tunnel was not opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{status_line} from {proxy} ({}; challenge: {})",
        match user { None => "no credentials sent".to_string(), Some(u) => format!("credentials for user {u:?} were refused") },
        if challenge.is_empty() { "none".to_string() } else { challenge.join(", ") })]
    AuthRequired {
        /// `407 Proxy Authentication Required` (code and reason phrase; or
        /// 401, which tinyproxy sends for wrong credentials).
        status_line: String,
        proxy: String,
        /// The user name sent, if any.
        user: Option<String>,
        /// The `Proxy-Authenticate` values.
        challenge: Vec<String>,
    },
    #[error("{proxy} refused CONNECT {target}: {status_line}")]
    Refused {
        status: u16,
        status_line: String,
        proxy: String,
        target: String,
    },
    #[error("{proxy} sent an invalid answer to CONNECT {target}: {detail}")]
    Malformed {
        proxy: String,
        target: String,
        detail: String,
    },
    #[error("{proxy} closed the connection before answering CONNECT {target}")]
    Closed { proxy: String, target: String },
    #[error("talking to {proxy}: {source}")]
    Io {
        proxy: String,
        #[source]
        source: std::io::Error,
    },
}

impl ConnectError {
    /// The proxy's status code, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectError::AuthRequired { status_line, .. } => status_line.get(..3)?.parse().ok(),
            ConnectError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Longest CONNECT response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Sends `CONNECT target HTTP/1.1` (target is `host:port`, IPv6 in
/// brackets) over `stream` and reads the answer. A 2xx opens the tunnel:
/// the returned stream starts with whatever the proxy sent after its
/// response head. No timeout here: the caller bounds the whole step.
pub async fn connect_tunnel<S>(
    mut stream: S,
    proxy: &ProxyUrl,
    target: &str,
) -> Result<(Prefixed<S>, ConnectReply), ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = proxy.display();
    let io = |source| ConnectError::Io {
        proxy: name.clone(),
        source,
    };
    let mut req = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: ucgate-bench/{}\r\nProxy-Connection: Keep-Alive\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(auth) = proxy.authorization() {
        req.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    stream.flush().await.map_err(io)?;

    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = find_head_end(&buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(ConnectError::Malformed {
                proxy: name,
                target: target.into(),
                detail: format!("response head longer than {MAX_HEAD} bytes"),
            });
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err(ConnectError::Closed {
                proxy: name,
                target: target.into(),
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let rest = buf.split_off(head_end);
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("").trim().to_string();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    let (true, Some(status)) = (version.starts_with("HTTP/"), code) else {
        return Err(ConnectError::Malformed {
            proxy: name,
            target: target.into(),
            detail: format!("status line {status_line:?}"),
        });
    };
    let reason = parts.next().unwrap_or("").trim();
    let header_values = |want: &str| -> Vec<String> {
        head.lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(want))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    };
    match status {
        200..=299 => Ok((Prefixed::new(rest, stream), ConnectReply { status_line })),
        // 401 is not a proxy's status, but tinyproxy answers wrong
        // credentials with it (and WWW-Authenticate): the same diagnosis.
        407 | 401 => Err(ConnectError::AuthRequired {
            status_line: if reason.is_empty() {
                format!("{status}")
            } else {
                format!("{status} {reason}")
            },
            proxy: name,
            user: proxy.username.clone(),
            challenge: match header_values("proxy-authenticate") {
                c if c.is_empty() => header_values("www-authenticate"),
                c => c,
            },
        }),
        _ => Err(ConnectError::Refused {
            status,
            status_line,
            proxy: name,
            target: target.into(),
        }),
    }
}

/// End of the response head (index after the blank line): `\r\n\r\n`, or
/// `\n\n` from a lax proxy.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A stream that first yields `prefix`, then reads from `inner`; writes go
/// to `inner`. Keeps the bytes a proxy sent right after its CONNECT answer.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn route(url: &str, pairs: &[(&str, &str)]) -> Route {
        choose(&Url::parse(url).unwrap(), &Mode::Env(env(pairs))).unwrap()
    }

    fn source(url: &str, pairs: &[(&str, &str)]) -> Option<String> {
        match route(url, pairs) {
            Route::Proxy { source, .. } => Some(source),
            Route::Direct(_) => None,
        }
    }

    #[test]
    fn ws_uses_ws_proxy_then_http_proxy_then_all_proxy() {
        let all = [
            ("ws_proxy", "http://a:1"),
            ("WS_PROXY", "http://b:1"),
            ("http_proxy", "http://c:1"),
            ("HTTP_PROXY", "http://d:1"),
            ("all_proxy", "http://e:1"),
            ("ALL_PROXY", "http://f:1"),
        ];
        let expect = [
            "ws_proxy",
            "WS_PROXY",
            "http_proxy",
            "HTTP_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ];
        for i in 0..all.len() {
            assert_eq!(source("ws://gw/x", &all[i..]).as_deref(), Some(expect[i]));
        }
        // the https family is not consulted for ws://
        assert_eq!(
            source(
                "ws://gw/x",
                &[("https_proxy", "http://p:1"), ("wss_proxy", "http://p:1")]
            ),
            None
        );
    }

    #[test]
    fn wss_uses_wss_proxy_then_https_proxy_then_all_proxy() {
        let all = [
            ("wss_proxy", "http://a:1"),
            ("WSS_PROXY", "http://b:1"),
            ("https_proxy", "http://c:1"),
            ("HTTPS_PROXY", "http://d:1"),
            ("all_proxy", "http://e:1"),
            ("ALL_PROXY", "http://f:1"),
        ];
        let expect = [
            "wss_proxy",
            "WSS_PROXY",
            "https_proxy",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        ];
        for i in 0..all.len() {
            assert_eq!(source("wss://gw/x", &all[i..]).as_deref(), Some(expect[i]));
        }
        assert_eq!(
            source(
                "wss://gw/x",
                &[("http_proxy", "http://p:1"), ("ws_proxy", "http://p:1")]
            ),
            None
        );
    }

    #[test]
    fn bosh_urls_use_http_and_https_proxy() {
        let e = [
            ("http_proxy", "http://h:1"),
            ("https_proxy", "http://s:1"),
            ("ws_proxy", "http://w:1"),
            ("wss_proxy", "http://x:1"),
        ];
        assert_eq!(
            source("http://gw/http-bind", &e).as_deref(),
            Some("http_proxy")
        );
        assert_eq!(
            source("https://gw/http-bind", &e).as_deref(),
            Some("https_proxy")
        );
        assert_eq!(source("http://gw/", &[("ws_proxy", "http://w:1")]), None);
        assert_eq!(
            source("https://gw/", &[("ALL_PROXY", "http://w:1")]).as_deref(),
            Some("ALL_PROXY")
        );
    }

    #[test]
    fn lowercase_wins_and_empty_means_unset() {
        let r = route(
            "ws://gw/",
            &[
                ("http_proxy", "http://low:1"),
                ("HTTP_PROXY", "http://up:2"),
            ],
        );
        let Route::Proxy { proxy, source } = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            (proxy.host.as_str(), proxy.port, source.as_str()),
            ("low", 1, "http_proxy")
        );
        assert_eq!(source_of_empty(), Some("HTTP_PROXY".into()));
        assert_eq!(
            route("ws://gw/", &[("http_proxy", "  ")]),
            Route::Direct(Direct::NoProxyVariable)
        );
        assert_eq!(
            route("ws://gw/", &[]),
            Route::Direct(Direct::NoProxyVariable)
        );
    }

    fn source_of_empty() -> Option<String> {
        source(
            "ws://gw/",
            &[
                ("ws_proxy", ""),
                ("http_proxy", ""),
                ("HTTP_PROXY", "http://up:2"),
            ],
        )
    }

    #[test]
    fn no_proxy_excludes_and_names_the_entry() {
        let r = route(
            "wss://chat.example.com/ws",
            &[
                ("https_proxy", "http://p:3128"),
                ("NO_PROXY", "localhost, .example.com"),
            ],
        );
        assert_eq!(
            r,
            Route::Direct(Direct::Excluded {
                variable: "NO_PROXY".into(),
                entry: ".example.com".into(),
                proxy_variable: "https_proxy".into(),
            })
        );
        assert!(r
            .describe("chat.example.com")
            .contains("\".example.com\" excludes chat.example.com"));
        // lowercase no_proxy wins over NO_PROXY; an empty one is unset
        let r = route(
            "ws://a.test/",
            &[
                ("http_proxy", "p:1"),
                ("no_proxy", "b.test"),
                ("NO_PROXY", "a.test"),
            ],
        );
        assert!(matches!(r, Route::Proxy { .. }), "{r:?}");
        let r = route(
            "ws://a.test/",
            &[
                ("http_proxy", "p:1"),
                ("no_proxy", ""),
                ("NO_PROXY", "a.test"),
            ],
        );
        assert!(matches!(r, Route::Direct(Direct::Excluded { .. })), "{r:?}");
    }

    #[test]
    fn options_override_the_environment() {
        let u = Url::parse("ws://gw/").unwrap();
        assert_eq!(
            choose(&u, &Mode::Off).unwrap(),
            Route::Direct(Direct::NoProxyOption)
        );
        let p = ProxyUrl::parse("http://fixed:9").unwrap();
        let Route::Proxy { proxy, source } = choose(&u, &Mode::Fixed(p)).unwrap() else {
            panic!()
        };
        assert_eq!((proxy.host.as_str(), source.as_str()), ("fixed", "--proxy"));
    }

    #[test]
    fn bad_proxy_variable_is_an_error_naming_it() {
        let e = choose(
            &Url::parse("ws://gw/").unwrap(),
            &Mode::Env(env(&[("http_proxy", "socks5://u:secret@p:1080")])),
        )
        .unwrap_err();
        assert!(
            e.starts_with("http_proxy: unsupported proxy scheme \"socks5\""),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("http://proxy.example:3128").unwrap();
        assert_eq!(
            (p.tls, p.host.as_str(), p.port, p.username.clone()),
            (false, "proxy.example", 3128, None)
        );
        assert_eq!(p.authorization(), None);
        assert_eq!(ProxyUrl::parse("http://p").unwrap().port, 80);
        assert_eq!(ProxyUrl::parse("https://p").unwrap().port, 443);
        assert!(ProxyUrl::parse("https://p:8443/").unwrap().tls);
        assert_eq!(
            ProxyUrl::parse("p:8080").unwrap().display(),
            "http://p:8080"
        );
        let v6 = ProxyUrl::parse("http://[::1]:3128").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.display()),
            ("::1", "http://[::1]:3128".to_string())
        );
        let c = ProxyUrl::parse("http://us%40er:p%3As%20s@127.0.0.1:1").unwrap();
        assert_eq!(c.username.as_deref(), Some("us@er"));
        assert_eq!(c.password.as_deref(), Some("p:s s"));
        assert_eq!(c.display(), "http://127.0.0.1:1");
        assert_eq!(
            c.authorization().unwrap(),
            format!("Basic {}", base64(b"us@er:p:s s"))
        );
        let u = ProxyUrl::parse("http://user@p:1").unwrap();
        assert_eq!(
            u.authorization().unwrap(),
            format!("Basic {}", base64(b"user:"))
        );
        assert!(ProxyUrl::parse("socks5://p:1").is_err());
        assert!(ProxyUrl::parse("http://p:1/path").is_err());
        assert!(ProxyUrl::parse("http://").is_err());
    }

    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("http://u:p@h:1"), "http://***@h:1");
        assert_eq!(redact("u:p@h:1"), "***@h:1");
        assert_eq!(redact("http://h:1"), "http://h:1");
    }

    fn m(list: &str, host: &str, port: u16) -> Option<String> {
        no_proxy_match(list, host, port)
    }

    #[test]
    fn no_proxy_star_and_empty() {
        assert_eq!(m("*", "anything.example", 443).as_deref(), Some("*"));
        assert_eq!(m("a.test, *", "127.0.0.1", 1).as_deref(), Some("*"));
        assert_eq!(m("", "a.test", 80), None);
        assert_eq!(m(" , ,", "a.test", 80), None);
    }

    #[test]
    fn no_proxy_domains_match_exactly_or_as_suffix() {
        for entry in [
            "example.com",
            ".example.com",
            "*.example.com",
            "EXAMPLE.com",
            "example.com.",
        ] {
            assert_eq!(
                m(entry, "example.com", 80).as_deref(),
                Some(entry),
                "{entry}"
            );
            assert_eq!(
                m(entry, "a.example.com", 80).as_deref(),
                Some(entry),
                "{entry}"
            );
            assert_eq!(
                m(entry, "b.A.Example.COM", 80).as_deref(),
                Some(entry),
                "{entry}"
            );
            assert_eq!(m(entry, "notexample.com", 80), None, "{entry}");
            assert_eq!(m(entry, "example.com.evil", 80), None, "{entry}");
            assert_eq!(m(entry, "com", 80), None, "{entry}");
        }
        assert_eq!(
            m("localhost", "localhost", 5280).as_deref(),
            Some("localhost")
        );
        assert_eq!(
            m("localhost", "127.0.0.1", 5280),
            None,
            "names are not resolved"
        );
        assert_eq!(m("a.test", "example.com.", 80), None);
        assert_eq!(
            m("example.com", "example.com.", 80).as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn no_proxy_separators() {
        let list = "a.test,b.test  c.test\t d.test ,e.test";
        for h in ["a.test", "b.test", "c.test", "d.test", "e.test"] {
            assert_eq!(m(list, h, 80).as_deref(), Some(h));
        }
        assert_eq!(m(list, "f.test", 80), None);
    }

    #[test]
    fn no_proxy_ip_addresses() {
        assert_eq!(
            m("127.0.0.1", "127.0.0.1", 80).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(m("127.0.0.1", "127.0.0.2", 80), None);
        assert_eq!(m("::1", "[::1]", 80).as_deref(), Some("::1"));
        assert_eq!(m("[::1]", "[::1]", 80).as_deref(), Some("[::1]"));
        assert_eq!(m("::1", "::2", 80), None);
        // an IP entry is not a domain suffix of a name
        assert_eq!(m("0.0.1", "127.0.0.1", 80), None);
        assert_eq!(m("10.0.0.1", "host.10.0.0.1", 80), None);
    }

    #[test]
    fn no_proxy_cidr() {
        assert_eq!(
            m("127.0.0.0/8", "127.1.2.3", 80).as_deref(),
            Some("127.0.0.0/8")
        );
        assert_eq!(m("127.0.0.0/8", "128.0.0.1", 80), None);
        assert_eq!(
            m("10.1.0.0/16", "10.1.255.255", 80).as_deref(),
            Some("10.1.0.0/16")
        );
        assert_eq!(m("10.1.0.0/16", "10.2.0.0", 80), None);
        assert_eq!(
            m("0.0.0.0/0", "192.0.2.1", 80).as_deref(),
            Some("0.0.0.0/0")
        );
        assert_eq!(
            m("192.0.2.7/32", "192.0.2.7", 80).as_deref(),
            Some("192.0.2.7/32")
        );
        assert_eq!(m("192.0.2.7/32", "192.0.2.8", 80), None);
        assert_eq!(m("::1/128", "[::1]", 80).as_deref(), Some("::1/128"));
        assert_eq!(m("::1/128", "[::2]", 80), None);
        assert_eq!(
            m("[fd00::]/8", "[fd12::1]", 80).as_deref(),
            Some("[fd00::]/8")
        );
        assert_eq!(m("fd00::/8", "[fe80::1]", 80), None);
        // families never mix, names never match a CIDR
        assert_eq!(m("::/0", "127.0.0.1", 80), None);
        assert_eq!(m("127.0.0.0/8", "localhost", 80), None);
        // invalid blocks are ignored, not fatal
        assert_eq!(m("127.0.0.0/33, 10.0.0.0/x", "127.0.0.1", 80), None);
    }

    #[test]
    fn no_proxy_ports() {
        assert_eq!(
            m("gw.test:8443", "gw.test", 8443).as_deref(),
            Some("gw.test:8443")
        );
        assert_eq!(m("gw.test:8443", "gw.test", 443), None);
        assert_eq!(m(".test:80", "a.gw.test", 80).as_deref(), Some(".test:80"));
        assert_eq!(
            m("127.0.0.1:5280", "127.0.0.1", 5280).as_deref(),
            Some("127.0.0.1:5280")
        );
        assert_eq!(m("127.0.0.1:5280", "127.0.0.1", 5281), None);
        assert_eq!(
            m("[::1]:5280", "[::1]", 5280).as_deref(),
            Some("[::1]:5280")
        );
        assert_eq!(m("[::1]:5280", "[::1]", 80), None);
        // the first matching entry is reported
        assert_eq!(
            m("gw.test:1, gw.test", "gw.test", 2).as_deref(),
            Some("gw.test")
        );
    }

    #[tokio::test]
    async fn connect_keeps_bytes_after_the_head() {
        let (client, mut server) = tokio::io::duplex(4096);
        let p = ProxyUrl::parse("http://u%3Ax:pw@proxy.test:3128").unwrap();
        let srv = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while find_head_end(&got).is_none() {
                let n = server.read(&mut b).await.unwrap();
                got.extend_from_slice(&b[..n]);
            }
            server
                .write_all(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nEARLY BYTES")
                .await
                .unwrap();
            let mut echo = [0u8; 4];
            server.read_exact(&mut echo).await.unwrap();
            server.write_all(&echo).await.unwrap();
            String::from_utf8(got).unwrap()
        });
        let (mut s, reply) = connect_tunnel(client, &p, "gw.test:443").await.unwrap();
        assert_eq!(reply.status_line, "HTTP/1.1 200 Connection established");
        let mut early = [0u8; 11];
        s.read_exact(&mut early).await.unwrap();
        assert_eq!(&early, b"EARLY BYTES");
        s.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");
        let req = srv.await.unwrap();
        assert!(
            req.starts_with("CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n"),
            "{req}"
        );
        assert!(
            req.contains(&format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64(b"u:x:pw")
            )),
            "{req}"
        );
    }

    async fn answer(head: &'static [u8], p: &ProxyUrl) -> ConnectError {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let mut b = [0u8; 1024];
            let _ = server.read(&mut b).await;
            server.write_all(head).await.unwrap();
        });
        match connect_tunnel(client, p, "gw.test:80").await {
            Ok(_) => panic!("tunnel opened"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn connect_errors_are_clear() {
        let anon = ProxyUrl::parse("http://127.0.0.1:8888").unwrap();
        let e = answer(b"HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"tinyproxy\"\r\n\r\n", &anon).await;
        assert_eq!(e.status(), Some(407));
        assert_eq!(
            e.to_string(),
            "407 Proxy Authentication Required from http://127.0.0.1:8888 (no credentials sent; challenge: Basic realm=\"tinyproxy\")"
        );
        let auth = ProxyUrl::parse("http://bob:bad@127.0.0.1:8888").unwrap();
        let e = answer(b"HTTP/1.1 407 Auth\r\nproxy-authenticate: Basic realm=\"a\"\r\nProxy-Authenticate: Negotiate\r\n\r\n", &auth).await;
        assert_eq!(
            e.to_string(),
            "407 Auth from http://127.0.0.1:8888 (credentials for user \"bob\" were refused; challenge: Basic realm=\"a\", Negotiate)"
        );
        let e = answer(
            b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\n\r\n",
            &auth,
        )
        .await;
        assert_eq!(e.status(), Some(401));
        assert_eq!(
            e.to_string(),
            "401 Unauthorized from http://127.0.0.1:8888 (credentials for user \"bob\" were refused; challenge: Basic realm=\"Tinyproxy\")"
        );
        let e = answer(b"HTTP/1.1 403 Forbidden\r\n\r\n", &anon).await;
        assert_eq!(e.status(), Some(403));
        assert_eq!(
            e.to_string(),
            "http://127.0.0.1:8888 refused CONNECT gw.test:80: HTTP/1.1 403 Forbidden"
        );
        let e = answer(b"SSH-2.0-OpenSSH\r\n\r\n", &anon).await;
        assert!(e.to_string().contains("invalid answer"), "{e}");
        let e = answer(b"HTTP/1.1 200 OK\r\n", &anon).await;
        assert!(
            e.to_string()
                .contains("closed the connection before answering"),
            "{e}"
        );
    }
}
