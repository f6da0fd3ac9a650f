//! Configuration reading, error by error.

use super::route::parse_backend;
use super::*;
use ucgate_proto::origin::OriginPolicy;

#[test]
fn backends() {
    assert_eq!(
        parse_backend("127.0.0.1:7000").unwrap(),
        ("127.0.0.1".into(), 7000, false)
    );
    assert_eq!(
        parse_backend("[::1]:7000").unwrap(),
        ("::1".into(), 7000, false)
    );
    assert_eq!(
        parse_backend("tls://svc.internal:7001").unwrap(),
        ("svc.internal".into(), 7001, true)
    );
    assert!(parse_backend("svc").is_err());
    assert!(parse_backend("svc:0").is_err());
    assert!(parse_backend("http://svc:80").is_err());
    assert!(parse_backend("::1:80").is_err());
}

#[test]
fn embedded_default_is_valid_and_safe() {
    let c = Config::embedded_default();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:5290");
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9280");
    assert!(c.server.listen.ip().is_loopback());
    let loopback = |h: &str| h == "127.0.0.1" || h == "::1" || h == "localhost";
    for r in &c.routes {
        match &r.kind {
            RouteKind::Tcp(b) => assert!(loopback(&b.host)),
            RouteKind::XmppWebSocket | RouteKind::Bosh => assert!(r.kind.backend().is_none()),
            RouteKind::SipWebSocket(core) => assert!(loopback(&core.host)),
            RouteKind::Static(_) => panic!("the embedded default serves no files"),
        }
        assert_eq!(r.origins, OriginPolicy::SameOrigin);
    }
    assert!(c.routes.iter().any(|r| matches!(r.kind, RouteKind::Tcp(_))));
    assert!(c.routes.iter().any(|r| r.kind == RouteKind::XmppWebSocket));
    assert!(!c.xmpp.domains.is_empty());
    for d in c.xmpp.domains.values() {
        let (host, _) = d.address.as_ref().expect("no DNS in the default");
        assert!(loopback(host));
        assert_ne!(d.tls, XmppTls::None);
    }
    let d = &c.xmpp.domains["localhost"];
    assert_eq!(d.address, Some(("127.0.0.1".to_string(), 5222)));
    assert_eq!(d.tls, XmppTls::StartTls);
    assert_eq!(d.server_name, "localhost");
}

/// Errors as `LINE:COLUMN: key: message`.
fn errors(text: &str) -> Vec<String> {
    match Config::parse(text, "t.toml", Path::new("/nonexistent")) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .errors
            .iter()
            .map(|e| format!("{}:{}: {}: {}", e.line, e.column, e.key, e.message))
            .collect(),
    }
}

fn parse(text: &str) -> Config {
    Config::parse(text, "t.toml", Path::new("/base")).unwrap_or_else(|e| panic!("{e}"))
}

const XMPP_ROUTE: &str = "[[route]]\npath = \"/xmpp\"\nkind = \"xmpp-websocket\"\n";
const LOCALHOST: &str = "[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:5222\"\n";

#[test]
fn xmpp_defaults() {
    let c = parse("");
    assert_eq!(c.xmpp, XmppConfig::default());
    assert_eq!(c.xmpp.connect_timeout, Duration::from_secs(10));
    assert_eq!(c.xmpp.negotiation_timeout, Duration::from_secs(10));
    assert_eq!(c.xmpp.max_stanza_size, 256 * 1024);
    assert_eq!((c.xmpp.max_depth, c.xmpp.max_attributes), (32, 64));
    assert!(c.xmpp.domains.is_empty() && c.xmpp.websocket_url.is_none());

    let c = parse(&format!("{XMPP_ROUTE}{LOCALHOST}"));
    let r = &c.routes[0];
    assert_eq!(r.kind, RouteKind::XmppWebSocket);
    assert_eq!(r.kind.as_str(), "xmpp-websocket");
    assert_eq!(r.kind.backend(), None);
    assert_eq!(r.subprotocols, ["xmpp"]);
    assert!(r.require_subprotocol);
    assert_eq!(r.max_message_size, 256 * 1024);
    assert_eq!(r.max_frame_size, 256 * 1024);
    assert_eq!(r.connect_timeout, Duration::from_secs(10));
    let d = &c.xmpp.domains["localhost"];
    assert_eq!(
        *d,
        XmppDomain {
            name: "localhost".into(),
            address: Some(("127.0.0.1".into(), 5222)),
            tls: XmppTls::StartTls,
            ca_file: None,
            server_name: "localhost".into(),
        }
    );
}

#[test]
fn xmpp_everything_set() {
    let c = parse(&format!(
        "{XMPP_ROUTE}subprotocols = [\"xmpp\"]\nrequire_subprotocol = true\n\
         [xmpp]\nwebsocket_url = \"wss://chat.example.org/xmpp-websocket\"\n\
         bosh_url = \"https://chat.example.org/http-bind\"\nconnect_timeout = \"3s\"\n\
         negotiation_timeout = \"20s\"\nmax_stanza_size = \"1MiB\"\nmax_depth = 10\n\
         max_attributes = 5\n\
         [xmpp.domains.\"Example.ORG\"]\ntls = \"direct\"\nserver_name = \"xmpp.example.net\"\n\
         [xmpp.domains.\"dev.example\"]\naddress = \"[::1]:5222\"\ntls = \"none\"\n\
         [xmpp.domains.\"lan.example\"]\naddress = \"10.0.0.5:5222\"\ntls = \"none\"\nallow_insecure = true\n"
    ));
    let x = &c.xmpp;
    assert_eq!(
        x.websocket_url.as_deref(),
        Some("wss://chat.example.org/xmpp-websocket")
    );
    assert_eq!(
        x.bosh_url.as_deref(),
        Some("https://chat.example.org/http-bind")
    );
    assert_eq!(x.connect_timeout, Duration::from_secs(3));
    assert_eq!(x.negotiation_timeout, Duration::from_secs(20));
    assert_eq!(
        (x.max_stanza_size, x.max_depth, x.max_attributes),
        (1 << 20, 10, 5)
    );
    // The route's message limit follows the stanza limit; its connect
    // deadline is the XMPP one.
    assert_eq!(c.routes[0].max_message_size, 1 << 20);
    assert_eq!(c.routes[0].connect_timeout, Duration::from_secs(3));
    assert_eq!(
        x.domains.keys().collect::<Vec<_>>(),
        ["dev.example", "example.org", "lan.example"]
    );
    let d = &x.domains["example.org"];
    assert_eq!((d.name.as_str(), d.address.as_ref()), ("example.org", None));
    assert_eq!(
        (d.tls, d.server_name.as_str()),
        (XmppTls::Direct, "xmpp.example.net")
    );
    assert_eq!(x.domains["dev.example"].address, Some(("::1".into(), 5222)));
    assert_eq!(x.domains["lan.example"].tls, XmppTls::None);
}

#[test]
fn xmpp_route_errors() {
    assert_eq!(
        errors(XMPP_ROUTE),
        ["3:8: route[0].kind: an XMPP route (`xmpp-websocket`, `bosh`) needs at least one XMPP domain: add a `[xmpp.domains.\"example.org\"]` table (the servers clients may reach, chosen by the `to` of their `<open/>`)"]
    );
    let e = errors(&format!(
        "{XMPP_ROUTE}backend = \"127.0.0.1:5222\"\nbackend_server_name = \"x\"\n\
         backend_ca_file = \"ca.pem\"\nsubprotocols = [\"xmpp\", \"binary\"]\n\
         require_subprotocol = false\nconnect_timeout = \"1s\"\n{LOCALHOST}"
    ));
    assert_eq!(
        e,
        [
            "4:11: route[0].backend: not allowed for an `xmpp-websocket` route: the XMPP server is chosen by the `to` domain of the client's `<open/>` from `[xmpp.domains]`",
            "5:23: route[0].backend_server_name: not allowed for an `xmpp-websocket` route: set `server_name` per domain in `[xmpp.domains.\"…\"]`",
            "6:19: route[0].backend_ca_file: not allowed for an `xmpp-websocket` route: set `ca_file` per domain in `[xmpp.domains.\"…\"]`",
            "7:25: route[0].subprotocols[1]: an `xmpp-websocket` route accepts exactly the `xmpp` subprotocol (RFC 7395 §3.1): write `subprotocols = [\"xmpp\"]` or leave the key out",
            "8:23: route[0].require_subprotocol: an `xmpp-websocket` route always requires the `xmpp` subprotocol (RFC 7395 §3.1): leave the key out or set it to true",
            "9:19: route[0].connect_timeout: not used by an `xmpp-websocket` route: set `xmpp.connect_timeout` in `[xmpp]`",
        ]
    );
    let e = errors(&format!("{XMPP_ROUTE}subprotocols = []\n{LOCALHOST}"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("4:16: route[0].subprotocols: an `xmpp-websocket` route accepts exactly"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{XMPP_ROUTE}subprotocols = [\"XMPP\"]\n{LOCALHOST}"
    ));
    assert!(
        e[0].starts_with("4:17: route[0].subprotocols[0]: "),
        "{e:?}"
    );
    // An unknown kind is the route's error (not also a missing `tcp`
    // backend); the kind list names every kind.
    let e = errors("[[route]]\npath = \"/a\"\nkind = \"sip\"\n");
    assert_eq!(
        e,
        [
            "3:8: route[0].kind: unknown route kind `sip`; expected one of: \"tcp\", \"xmpp-websocket\", \"bosh\", \"sip-websocket\", \"static\"",
        ]
    );
}

#[test]
fn xmpp_section_errors() {
    let e = errors(
        "[xmpp]\nwebsocket_url = \"https://x.example/ws\"\nbosh_url = \"ws://x.example/b\"\n\
         connect_timeout = \"0s\"\nnegotiation_timeout = 5\nmax_stanza_size = \"512\"\n\
         max_depth = 1\nmax_attributes = 0\ncolour = 1\n",
    );
    assert_eq!(
        e,
        [
            "2:17: xmpp.websocket_url: the scheme `https://` is not allowed here; expected an absolute ws:// or wss:// URL such as \"wss://chat.example.org/xmpp-websocket\"",
            "3:12: xmpp.bosh_url: the scheme `ws://` is not allowed here; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\"",
            "4:19: xmpp.connect_timeout: expected a duration from 10ms to 10m",
            "5:23: xmpp.negotiation_timeout: expected a duration such as \"10s\" or \"250ms\", found an integer",
            "6:19: xmpp.max_stanza_size: expected a size from 1024 to 16777216 bytes (an integer, or a string such as \"64KiB\")",
            "7:13: xmpp.max_depth: expected an integer from 2 to 1000",
            "8:18: xmpp.max_attributes: expected an integer from 1 to 10000",
            "9:1: xmpp.colour: unknown key; expected one of: `websocket_url`, `bosh_url`, `connect_timeout`, `negotiation_timeout`, `max_stanza_size`, `max_depth`, `max_attributes`, `drain_close_stream`, `domains`",
        ]
    );
}

#[test]
fn xmpp_domain_errors() {
    let e = errors(
        "[xmpp.domains.\"a..b\"]\n\
         [xmpp.domains.\"Example.org\"]\n\
         [xmpp.domains.\"example.ORG\"]\n\
         [xmpp.domains.\"c.example\"]\naddress = \"tls://c.example:5223\"\ntls = \"quic\"\nport = 1\n\
         [xmpp.domains.\"d.example\"]\ntls = \"none\"\nca_file = \"ca.pem\"\nserver_name = \"d\"\n\
         [xmpp.domains.\"e.example\"]\naddress = \"192.0.2.1:5222\"\ntls = \"none\"\n\
         [xmpp.domains.\"f.example\"]\nallow_insecure = true\nca_file = \"missing.pem\"\nserver_name = \"bad name\"\n",
    );
    assert_eq!(
        e,
        [
            "1:15: xmpp.domains.\"a..b\": `a..b` is not a valid DNS name (labels of 1 to 63 letters, digits or `-`, separated by single dots, no trailing dot); expected a DNS name such as \"example.org\" or \"localhost\"",
            "3:15: xmpp.domains.\"example.ORG\": the domain `example.org` is already configured as `xmpp.domains.\"Example.org\"` (domain names are compared in lower case)",
            "5:11: xmpp.domains.\"c.example\".address: no scheme (`tls://`) here: TLS is chosen by `tls`; expected \"host:port\" (e.g. \"127.0.0.1:5222\", \"[::1]:5222\", \"xmpp.example.org:5222\")",
            "6:7: xmpp.domains.\"c.example\".tls: unknown TLS mode `quic`; expected \"starttls\", \"direct\" or \"none\"",
            "7:1: xmpp.domains.\"c.example\".port: unknown key; expected one of: `address`, `tls`, `ca_file`, `server_name`, `allow_insecure`",
            "9:7: xmpp.domains.\"d.example\".tls: `tls = \"none\"` sends passwords in clear text: only allowed when `address` is a loopback address (127.0.0.0/8, ::1 or localhost), or with `allow_insecure = true`",
            "10:11: xmpp.domains.\"d.example\".ca_file: `/nonexistent/ca.pem` does not exist",
            "10:11: xmpp.domains.\"d.example\".ca_file: only meaningful with `tls = \"starttls\"` or `tls = \"direct\"`",
            "11:15: xmpp.domains.\"d.example\".server_name: only meaningful with `tls = \"starttls\"` or `tls = \"direct\"`",
            "14:7: xmpp.domains.\"e.example\".tls: `tls = \"none\"` sends passwords in clear text: only allowed when `address` is a loopback address (127.0.0.0/8, ::1 or localhost), or with `allow_insecure = true`",
            "16:18: xmpp.domains.\"f.example\".allow_insecure: only meaningful with `tls = \"none\"`",
            "17:11: xmpp.domains.\"f.example\".ca_file: `/nonexistent/missing.pem` does not exist",
            "18:15: xmpp.domains.\"f.example\".server_name: expected a DNS name or IP address for certificate verification",
        ]
    );
    // Loopback addresses may go without TLS.
    for addr in [
        "127.0.0.1:5222",
        "127.9.9.9:5222",
        "[::1]:5222",
        "localhost:5222",
        "LOCALHOST:5222",
    ] {
        let t = format!("[xmpp.domains.\"x.example\"]\naddress = \"{addr}\"\ntls = \"none\"\n");
        assert!(errors(&t).is_empty(), "{addr}: {:?}", errors(&t));
    }
    // A domain entry that is not a table.
    let e = errors("[xmpp.domains]\n\"x.example\" = \"127.0.0.1:5222\"\n");
    assert_eq!(
        e,
        ["2:15: xmpp.domains.\"x.example\": expected a table, found a string"]
    );
}

#[test]
fn every_key_is_listed() {
    let keys = all_keys();
    for k in [
        "xmpp.websocket_url",
        "xmpp.bosh_url",
        "xmpp.connect_timeout",
        "xmpp.negotiation_timeout",
        "xmpp.max_stanza_size",
        "xmpp.max_depth",
        "xmpp.max_attributes",
        "xmpp.domains",
        "xmpp.domains.address",
        "xmpp.domains.tls",
        "xmpp.domains.ca_file",
        "xmpp.domains.server_name",
        "xmpp.domains.allow_insecure",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k}");
    }
}

#[test]
fn route_kind_carries_what_the_kind_needs() {
    let c = parse("[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:7000\"\n");
    assert_eq!(
        c.routes[0].kind,
        RouteKind::Tcp(Backend {
            host: "127.0.0.1".into(),
            port: 7000,
            tls: None,
        })
    );
    assert_eq!(c.routes[0].kind.as_str(), "tcp");
    assert!(c.routes[0].kind.core().is_none());
}

const SIP_ROUTE: &str =
    "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5070;transport=udp\"\n";
const SIP_KEY: &str = "[sip]\nflow_token_key = \"0123456789abcdef\"\n";

#[test]
fn sip_route() {
    let c = parse(&format!("{SIP_ROUTE}{SIP_KEY}"));
    let r = &c.routes[0];
    assert!(matches!(r.kind, RouteKind::SipWebSocket(_)));
    assert_eq!(r.kind.as_str(), "sip-websocket");
    assert!(r.kind.is_websocket() && r.kind.backend().is_none());
    assert_eq!(
        r.kind.core(),
        Some(&SipCore {
            host: "127.0.0.1".into(),
            port: 5070,
            transport: SipTransport::Udp,
            tls: None,
        })
    );
    assert_eq!(
        (r.subprotocols.as_slice(), r.require_subprotocol),
        (&["sip".to_string()][..], true)
    );
    let s = &c.sip;
    assert_eq!(
        (s.udp_threshold, s.flow_gone, s.require_path_support),
        (1300, 430, false)
    );
    assert_eq!((s.max_messages_per_second, s.max_garbage), (20, 5));
    assert_eq!(
        s.flow_token_key.as_ref().unwrap().expose(),
        b"0123456789abcdef"
    );
    assert!(
        !format!("{c:?}").contains("0123456789abcdef"),
        "the key never prints"
    );
    let c = parse(&format!(
        "{SIP_ROUTE}{SIP_KEY}advertised_host = \"gw.example\"\nudp_threshold = 1200\nflow_gone = \"480\"\nrequire_path_support = true\nmax_messages_per_second = 5\nmax_garbage = 2\n"
    ));
    assert_eq!(c.sip.advertised_host.as_deref(), Some("gw.example"));
    assert_eq!(
        (
            c.sip.udp_threshold,
            c.sip.flow_gone,
            c.sip.require_path_support
        ),
        (1200, 480, true)
    );
    assert_eq!((c.sip.max_messages_per_second, c.sip.max_garbage), (5, 2));
}

#[test]
fn sip_core_port_settings() {
    let s = parse(&format!("{SIP_ROUTE}{SIP_KEY}")).sip;
    assert_eq!(s.core_sources, None, "default: the core's addresses");
    assert_eq!(s.core_max_connections, 64);
    assert_eq!(s.core_idle_timeout, Duration::from_secs(180));
    let s = parse(&format!(
        "{SIP_ROUTE}{SIP_KEY}core_sources = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\ncore_max_connections = 8\ncore_idle_timeout = \"2m\"\n"
    ))
    .sip;
    assert_eq!(
        s.core_sources.unwrap().to_string(),
        "10.0.0.0/8, 192.0.2.7, 2001:db8::/32"
    );
    assert_eq!(s.core_max_connections, 8);
    assert_eq!(s.core_idle_timeout, Duration::from_secs(120));
    let e = errors(&format!(
        "{SIP_ROUTE}{SIP_KEY}core_sources = [\"10.0.0.0/8\", \"core.example\", \"10.1.2.3/8\", 7]\n"
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("sip.core_sources[1]: expected an IP address or a CIDR range")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.contains("sip.core_sources[2]: bits are set after the prefix length: did you mean \"10.0.0.0/8\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.contains("sip.core_sources[3]: expected a string")),
        "{e:?}"
    );
    let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}core_max_connections = 0\n"));
    assert!(
        e.iter().any(|e| e.contains("sip.core_max_connections")),
        "{e:?}"
    );
    let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}core_idle_timeout = \"0s\"\n"));
    assert!(
        e.iter().any(|e| e.contains("sip.core_idle_timeout")),
        "{e:?}"
    );
}

#[test]
fn sip_route_errors() {
    // Without a key the route is valid: each process draws its own.
    assert!(parse(SIP_ROUTE).sip.flow_token_key.is_none());
    let e = errors(&format!("{SIP_ROUTE}[sip]\nflow_token_key = \"short\"\n"));
    assert!(e.iter().any(|e| e.contains("too short")), "{e:?}");
    assert!(
        !e.iter().any(|e| e.contains("\"short\"")),
        "the key is not echoed: {e:?}"
    );
    let e = errors(&format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\n{SIP_KEY}"
    ));
    assert!(
        e.iter().any(|e| e.contains("route[0].core: missing")),
        "{e:?}"
    );
    let e = errors(&format!("{SIP_ROUTE}backend = \"127.0.0.1:1\"\n{SIP_KEY}"));
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].backend: not allowed")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{SIP_ROUTE}subprotocols = [\"binary\"]\n{SIP_KEY}"
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("exactly the `sip` subprotocol")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{SIP_ROUTE}require_subprotocol = false\n{SIP_KEY}"
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("exactly the `sip` subprotocol")),
        "{e:?}"
    );
    let e = errors("[[route]]\npath = \"/a\"\nkind = \"sip-websocket\"\ncore = \"sip:h:5060;transport=sctp\"\n[sip]\nflow_token_key = \"0123456789abcdef\"\n");
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].core: unknown transport")),
        "{e:?}"
    );
    let e = errors(
        "[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:1\"\ncore = \"sip:h\"\n",
    );
    assert!(
        e.iter().any(|e| e.contains("route[0].core: only used")),
        "{e:?}"
    );
    let e = errors(&format!("{SIP_ROUTE}{SIP_KEY}flow_gone = \"404\"\n"));
    assert!(e.iter().any(|e| e.contains("sip.flow_gone")), "{e:?}");
    // TLS settings only with a TLS core; a TLS core needs [server.tls].
    let e = errors(&format!(
        "{SIP_ROUTE}core_server_name = \"core.example\"\n{SIP_KEY}"
    ));
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].core_server_name: only meaningful with a TLS core")),
        "{e:?}"
    );
    let tls_route = "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:core.example;transport=tls\"\n";
    let e = errors(&format!("{tls_route}{SIP_KEY}"));
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].core: a `transport=tls` core needs a certificate")),
        "{e:?}"
    );
    // sip.tls_cert and sip.tls_key: together, and loadable.
    let e = errors(&format!("{tls_route}{SIP_KEY}tls_cert = \"gw.crt\"\n"));
    assert!(
        e.iter()
            .any(|e| e.contains("sip.tls_cert: `tls_cert` and `tls_key` go together")),
        "{e:?}"
    );
    let e = errors(&format!(
        "{tls_route}{SIP_KEY}tls_cert = \"/nonexistent/gw.crt\"\ntls_key = \"/nonexistent/gw.key\"\n"
    ));
    assert!(e.iter().any(|e| e.contains("sip.tls_cert:")), "{e:?}");
    // A TLS core whose CA bundle cannot be read, and a bad server name.
    let e = errors(&format!(
        "{tls_route}core_ca_file = \"/nonexistent/ca.pem\"\ncore_server_name = \"not a name\"\n{SIP_KEY}"
    ));
    assert!(
        e.iter().any(|e| e.contains("route[0].core_ca_file:")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].core_server_name: expected a DNS name or IP address")),
        "{e:?}"
    );
    let e = errors(
        "[[route]]\npath = \"/a\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:1\"\ncore_ca_file = \"x.pem\"\n",
    );
    assert!(
        e.iter()
            .any(|e| e.contains("route[0].core_ca_file: only used by a `sip-websocket` route")),
        "{e:?}"
    );
}

#[test]
fn sip_listen_is_one_address_for_one_sip_route() {
    let one = "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5070\"\n[sip]\nlisten = \"127.0.0.1:5065\"\n";
    let c = Config::parse(one, "t.toml", Path::new(".")).unwrap();
    assert_eq!(c.sip.listen, Some("127.0.0.1:5065".parse().unwrap()));
    let two = "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5070\"\n[[route]]\npath = \"/sip2\"\nkind = \"sip-websocket\"\ncore = \"sip:127.0.0.1:5071\"\n[sip]\nlisten = \"127.0.0.1:5065\"\n";
    let e = Config::parse(two, "t.toml", Path::new(".")).unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].key, "sip.listen");
    assert_eq!(e.errors[0].line, 10);
    assert!(
        e.errors[0].message.contains("2 `sip-websocket` routes"),
        "{e}"
    );
    let bad = "[sip]\nlisten = \"localhost:5065\"\n";
    let e = Config::parse(bad, "t.toml", Path::new(".")).unwrap_err();
    assert_eq!(e.errors[0].key, "sip.listen");
}

#[test]
fn trusted_proxies_and_proxy_protocol() {
    let s = parse("").server;
    assert!(s.trusted_proxies.is_empty(), "nobody is trusted by default");
    assert!(!s.proxy_protocol);
    let s = parse(
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\nproxy_protocol = true\n",
    )
    .server;
    assert_eq!(
        s.trusted_proxies.to_string(),
        "127.0.0.1, 10.0.0.0/8, fd00::/8"
    );
    assert!(s.proxy_protocol);
    let e = errors("[server]\ntrusted_proxies = [\"lb.example\", \"10.1.2.3/8\"]\n");
    assert!(
        e.iter().any(
            |e| e.contains("server.trusted_proxies[0]: expected an IP address or a CIDR range")
        ),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e.contains("server.trusted_proxies[1]: bits are set")),
        "{e:?}"
    );
    let e = errors("[server]\nproxy_protocol = true\n");
    assert!(
        e.iter().any(|e| e.contains("server.proxy_protocol")
            && e.contains("`server.trusted_proxies`, which is empty")),
        "{e:?}"
    );
}

#[test]
fn the_admin_listen_clash_is_reported_where_the_address_is_written() {
    let text = "[server]\nlisten = \"127.0.0.1:5290\"\n\n[admin]\n  listen = \"127.0.0.1:5290\"\n";
    assert_eq!(
        errors(text),
        ["5:12: admin.listen: the admin listener must not use the same address as server.listen (127.0.0.1:5290); change one of them"]
    );
    // admin.listen left at its default: the clash is at server.listen
    assert_eq!(
        errors("[server]\nlisten = \"127.0.0.1:9280\"\n"),
        ["2:10: server.listen: the admin listener must not use the same address as server.listen (127.0.0.1:9280); change one of them"]
    );
}

#[test]
fn a_bad_value_in_the_only_xmpp_domain_is_the_only_error() {
    let e = errors(&format!(
        "{XMPP_ROUTE}\n[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:5222\"\ntls = \"sometimes\"\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("7:7: xmpp.domains.\"localhost\".tls: "),
        "{e:?}"
    );
}

#[test]
fn a_fraction_is_refused_as_a_fraction() {
    let e = errors("[server]\nidle_timeout = \"0.5s\"\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("2:16: server.idle_timeout: "), "{e:?}");
    assert!(
        e[0].contains("fractions are not accepted (`0.5s`)") && !e[0].contains("unknown unit"),
        "{e:?}"
    );
}

#[test]
fn an_unknown_route_kind_is_the_only_error_of_its_route() {
    assert_eq!(
        errors("[[route]]\npath = \"/vnc\"\nkind = \"udp\"\n"),
        ["3:8: route[0].kind: unknown route kind `udp`; expected one of: \"tcp\", \"xmpp-websocket\", \"bosh\", \"sip-websocket\", \"static\""]
    );
}

#[test]
fn drain_spread_is_a_part_of_the_drain() {
    assert_eq!(parse("").server.drain_spread, Duration::ZERO);
    let c = parse("[server]\ndrain_timeout = \"20s\"\ndrain_spread = \"10s\"\n");
    assert_eq!(c.server.drain_spread, Duration::from_secs(10));
    assert_eq!(
        errors("[server]\ndrain_timeout = \"5s\"\ndrain_spread = \"6s\"\n"),
        ["3:16: server.drain_spread: 6s is longer than server.drain_timeout (5s): the last WebSockets would be cut before their turn; make it at most the drain timeout (half of it leaves time for the goodbyes)"]
    );
}

#[test]
fn bosh_drain_see_other_uri_is_an_http_url() {
    assert_eq!(parse("").bosh.drain_see_other_uri, None);
    let c = parse("[bosh]\ndrain_see_other_uri = \"https://b.example.org:8443/http-bind?x=1\"\n");
    assert_eq!(
        c.bosh.drain_see_other_uri.as_deref(),
        Some("https://b.example.org:8443/http-bind?x=1")
    );
    assert_eq!(
        errors("[bosh]\ndrain_see_other_uri = \"wss://b.example.org/ws\"\n"),
        ["2:23: bosh.drain_see_other_uri: the scheme `wss://` is not allowed here; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\", where the clients log in again"]
    );
    assert_eq!(
        errors("[bosh]\ndrain_see_other_uri = \"https://b/a b\"\n"),
        ["2:23: bosh.drain_see_other_uri: the URL holds ' ', which must be percent-encoded; expected an absolute http:// or https:// URL such as \"https://chat.example.org/http-bind\", where the clients log in again"]
    );
    assert_eq!(errors("[bosh]\ndrain_see_other_uri = 3\n").len(), 1);
}

#[test]
fn admin_token_and_probe_interval_limits() {
    let c = Config::parse(
        "[admin]\ntoken = \"0123456789abcdef\"\nprobe_interval = \"0s\"\n[[route]]\npath = \"/e\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:7\"\n",
        "t.toml",
        Path::new("."),
    )
    .unwrap();
    assert_eq!(c.admin.token.as_deref(), Some("0123456789abcdef"));
    assert!(c.admin.probe_interval.is_zero());
    for bad in [
        "short",
        "has a space in it ok",
        "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
    ] {
        let e = errors(&format!("[admin]\ntoken = \"{bad}\"\n"));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("2:9: admin.token: expected 16 to 512"),
            "{e:?}"
        );
    }
    let e = errors(&format!("[admin]\ntoken = \"{}\"\n", "x".repeat(513)));
    assert_eq!(e.len(), 1, "{e:?}");
    let e = errors("[admin]\nprobe_interval = \"25h\"\n");
    assert!(e[0].contains("admin.probe_interval"), "{e:?}");
}
