//! # ucgate-proto: the protocol decisions of ucgate, with no I/O
//!
//! Everything in this crate is a pure function or a state machine driven by
//! explicit inputs. The rule, enforced by this crate's dependency list (no
//! tokio, no sockets) and by `scripts/check-pure`:
//!
//! * no sockets, files, threads or async runtimes;
//! * no clock reads (`Instant::now`, `SystemTime::now`): time is an input;
//! * no randomness: ids and keys are inputs.
//!
//! Crate map:
//!
//! | module | owns |
//! |---|---|
//! | [`acme`] | ACME certificates (RFC 8555, RFC 8737): orderable names, renewal timing, retry back-off, TLS-ALPN-01 hello detection |
//! | [`certfile`] | what a PEM file holds and what is wrong with it for its purpose (DER, swapped certificate and key, CSR, encrypted key), in words |
//! | [`certs`] | certificate validity checks and the operator-facing explanation of a failed TLS handshake (server, expected name, presented names, key to change) |
//! | [`route`] | path → configured route lookup |
//! | [`origin`] | `Origin` header normalisation and allowlist / same-origin checks (RFC 6454); which configured `origins` entries can never match what browsers send, the `origins` line to write for a refused origin, the bounded record of refused origins |
//! | [`websocket`] | the server side of the WebSocket opening handshake over HTTP/1.1 (RFC 6455 §4.2) and HTTP/2 extended CONNECT (RFC 8441 §5): accept or refuse, and with which HTTP status |
//! | [`proxy_protocol`] | the PROXY protocol v1/v2 header a trusted load balancer sends first on a connection |
//! | [`forwarded`] | the client behind trusted HTTP proxies: `Forwarded` (RFC 7239) and `X-Forwarded-For/-Proto/-Host` |
//! | [`netset`] | sets of IP networks (addresses and CIDR ranges) and membership of a peer address |
//! | [`peers`] | a cluster node's peers: the static list and the SRV records found in DNS, merged |
//! | [`node`] | a cluster node's short name (in BOSH sids and SIP flow tokens) |
//! | [`side`] | the side a fault is attributed to (`ucgate_errors_total{side}`) |
//! | [`keepalive`] | WebSocket ping, dead-peer and idle timers |
//! | [`tunnel`] | the generic WebSocket ⇄ TCP tunnel's message policy; close causes, codes and end reasons of every WebSocket route |
//! | [`units`] | human-readable durations and byte sizes used in configuration |
//! | [`staticfiles`] | `static` routes: safe request paths (no way out of the directory), content types, precompressed siblings from `Accept-Encoding`, ETags and conditional requests |
//! | [`srv`] | DNS SRV answers: "no service", fallback, RFC 2782 priority and weighted ordering (randomness as input) |
//! | [`hostmeta`] | XEP-0156 host-meta documents (XRD and JRD) advertising the XMPP WebSocket and BOSH URLs |
//! | [`sip`] | SIP over WebSocket (RFC 7118) edge proxy: byte-preserving SIP scanner and editor, stream framing, RFC 5626 flow tokens, the client gate (rate window, CRLF keep-alive, unparseable messages, 503s), the edge's rewrites (Via, Max-Forwards, Route, Path, Record-Route) |
//! | [`bosh`] | BOSH (XEP-0124 / XEP-0206): request `<body/>` parsing, terminal conditions, and the session state machine (rid window, hold, acks, cache, pause, keys) with explicit time |
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod bosh;
pub mod certfile;
pub mod certs;
pub mod drain;
pub mod forwarded;
pub mod hostmeta;
pub mod keepalive;
pub mod netset;
pub mod node;
pub mod origin;
pub mod peers;
pub mod proxy_protocol;
pub mod recent;
pub mod route;
pub mod side;
pub mod sip;
pub mod srv;
pub mod staticfiles;
pub mod throttle;
pub mod tunnel;
pub mod units;
pub mod websocket;
pub mod xml;
pub mod xmpp_ws;
