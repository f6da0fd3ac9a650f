//! Forwarding between cluster nodes (issue 17 item 2): a BOSH request that
//! reaches a node which does not own its session is forwarded to the owner
//! over the internal listener and the owner's answer comes back unchanged,
//! long polls included; a request for a node that is gone is
//! `item-not-found`; the internal listener serves only authenticated
//! requests for its own sessions, and never forwards again; an owner's
//! answer over the size bound is refused.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::bosh_client::*;
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use ucgate_proto::bosh::forward::{sign, Signed, AUTH_HEADER};
use ucgate_proto::bosh::sid::{ClusterSid, NodeName};

const SECRET: &str = "a shared secret of more than 32 characters";

/// Three nodes `gw-a`, `gw-b`, `gw-c` in front of one XMPP server.
struct Cluster {
    nodes: Vec<TestGateway>,
    internal: Vec<SocketAddr>,
}

async fn cluster(server: SocketAddr, ca: &std::path::Path) -> Cluster {
    cluster_with(server, ca, "").await
}

/// One node's configuration: a BOSH route in front of the scripted server
/// at `server`, `[cluster]` as `name` with `secret`, listening on
/// `listen`, with `keys` (more `[cluster]` lines) and `peers`; `tables`
/// (whole tables such as `[bosh]`) go at the end.
struct Node<'a> {
    name: &'a str,
    secret: &'a str,
    listen: SocketAddr,
    keys: &'a str,
    peers: Vec<(&'a str, SocketAddr)>,
    tables: &'a str,
}

impl Node<'_> {
    fn toml(&self, server: SocketAddr, ca: &std::path::Path) -> String {
        let peers: String = self
            .peers
            .iter()
            .map(|(n, a)| format!("{n} = \"{a}\"\n"))
            .collect();
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\nhandshake_timeout = \"1s\"\n\n\
             [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
             [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n\
             [cluster]\nnode = \"{}\"\nsecret = \"{}\"\nlisten = \"{}\"\n{}\
             [cluster.peers]\n{peers}\n{}",
            ca.display(),
            self.name,
            self.secret,
            self.listen,
            self.keys,
            self.tables,
        )
    }
}

/// [`cluster`] with more `[cluster]` keys on every node.
async fn cluster_with(server: SocketAddr, ca: &std::path::Path, extra: &str) -> Cluster {
    let names = ["gw-a", "gw-b", "gw-c"];
    let internal: Vec<SocketAddr> = (0..3).map(|_| free_addr("127.0.0.1")).collect();
    let keys = format!("forward_timeout = \"2s\"\n{extra}");
    let mut nodes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let node = Node {
            name,
            secret: SECRET,
            listen: internal[i],
            keys: &keys,
            peers: names
                .iter()
                .zip(&internal)
                .filter(|(n, _)| *n != name)
                .map(|(n, a)| (*n, *a))
                .collect(),
            tables: "",
        };
        nodes.push(TestGateway::start(&node.toml(server, ca)).await);
    }
    Cluster { nodes, internal }
}

/// `gw-a` alone, with one `peer` that is not a gateway (a test's stand-in),
/// more `[cluster]` `keys` and whole `tables`.
async fn lone_node(
    server: SocketAddr,
    ca: &std::path::Path,
    peer: (&str, SocketAddr),
    keys: &str,
    tables: &str,
) -> TestGateway {
    let toml = Node {
        name: "gw-a",
        secret: SECRET,
        listen: free_addr("127.0.0.1"),
        keys,
        peers: vec![peer],
        tables,
    }
    .toml(server, ca);
    TestGateway::start(&toml).await
}

/// A client's request to `gw` for a session that `node` owns: status and body.
async fn request_for_a_session_of(gw: &TestGateway, node: &str) -> (u16, String) {
    let sid = ClusterSid {
        node: NodeName::parse(node).unwrap(),
        start: 7,
        random: [7; 16],
    }
    .encode();
    Client::new(gw.addr, false)
        .await
        .post_raw(format!("<body xmlns='{NS}' rid='10' sid='{sid}'/>"))
        .await
}

fn is_item_not_found(status: u16, text: &str) -> bool {
    status == 200 && text.contains("type='terminate'") && text.contains("item-not-found")
}

/// A POST to a node's internal listener (prior-knowledge HTTP/2), with the
/// given authentication header.
async fn post_internal(addr: SocketAddr, auth: Option<String>, body: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut s, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::post(format!("http://{addr}/http-bind"));
    if let Some(a) = auth {
        req = req.header(AUTH_HEADER, a);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let resp = s.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn signed(secret: &str, from: &str, body: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    sign(
        secret.as_bytes(),
        &NodeName::parse(from).unwrap(),
        now,
        &Signed {
            method: "POST",
            path: "/http-bind",
            body: body.as_bytes(),
        },
    )
}

#[tokio::test]
async fn any_node_serves_any_session_through_its_owner() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-fwd");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let cl = cluster(server, &ca).await;
        let addrs: Vec<SocketAddr> = cl.nodes.iter().map(|n| n.addr).collect();

        // A session created on gw-a, then served round-robin by all three.
        let mut c = login(&cl.nodes[0], false).await;
        assert_eq!(ClusterSid::parse(&c.sid).unwrap().node.as_str(), "gw-a");
        flood_through(&mut c, &addrs, 30).await;

        // A long poll held by the owner through gw-b is answered when a
        // later request (through gw-c) brings the server's data.
        let mut held = Client::new(addrs[1], false).await;
        held.sid = c.sid.clone();
        c.rid += 1;
        let held_rid = c.rid;
        let poll = tokio::spawn(async move { held.send_rid(held_rid, "", "").await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!poll.is_finished(), "the owner holds the forwarded poll");
        c.addr = addrs[2];
        let second = c.send("", "<message xmlns='jabber:client' to='bob@localhost' type='chat'><body>flood 3</body></message>").await;
        let first = poll.await.unwrap();
        let mut got = bodies(&first);
        got.extend(bodies(&second));
        let mut rounds = 0;
        while got.iter().filter(|b| b.starts_with('m')).count() < 3 {
            rounds += 1;
            assert!(rounds < 20, "{got:?}");
            c.addr = addrs[rounds % 3];
            got.extend(bodies(&c.send("", "").await));
        }
        let ms: Vec<&String> = got.iter().filter(|b| b.starts_with('m')).collect();
        assert_eq!(ms, ["m1", "m2", "m3"]);

        // Counted on both sides, by peer.
        for (i, from) in [(1, "gw-b"), (2, "gw-c")] {
            let fwd = cl.nodes[i]
                .metric(
                    "ucgate_cluster_forwards_total",
                    &[("peer", "gw-a"), ("result", "ok")],
                )
                .await;
            assert!(fwd >= 1.0, "{from} forwarded {fwd}");
            let got = cl.nodes[0]
                .metric(
                    "ucgate_cluster_received_total",
                    &[("peer", from), ("result", "ok")],
                )
                .await;
            assert_eq!(got, fwd, "gw-a received from {from} what it forwarded");
            let lat = cl.nodes[i]
                .metric("ucgate_cluster_forward_seconds_count", &[("peer", "gw-a")])
                .await;
            assert_eq!(lat, fwd, "one latency sample per forwarded request");
        }
        // Each node's own sessions are its own: gw-a created the only one.
        assert_eq!(
            cl.nodes[0].metric("ucgate_bosh_sessions_created_total", &[]).await,
            1.0
        );
        for n in &cl.nodes[1..] {
            assert_eq!(n.metric("ucgate_bosh_sessions_created_total", &[]).await, 0.0);
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn a_session_of_a_node_that_is_gone_is_item_not_found() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-gone");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let mut cl = cluster(server, &ca).await;
        let mut c = login(&cl.nodes[2], false).await;
        flood_through(&mut c, &[cl.nodes[0].addr], 3).await;
        cl.nodes[2].stop().await;
        c.rid += 1;
        let (status, text) = c
            .post_raw(format!(
                "<body xmlns='{NS}' rid='{}' sid='{}'/>",
                c.rid, c.sid
            ))
            .await;
        assert!(is_item_not_found(status, &text), "{status} {text}");
        assert_eq!(
            cl.nodes[0]
                .metric(
                    "ucgate_cluster_forwards_total",
                    &[("peer", "gw-c"), ("result", "unreachable")]
                )
                .await,
            1.0
        );
        // A node that is not a peer at all: answered without asking anyone.
        let stranger = ClusterSid {
            node: NodeName::parse("gw-x").unwrap(),
            ..ClusterSid::parse(&c.sid).unwrap()
        };
        let (status, text) = c
            .post_raw(format!(
                "<body xmlns='{NS}' rid='{}' sid='{}'/>",
                c.rid,
                stranger.encode()
            ))
            .await;
        assert!(is_item_not_found(status, &text), "{status} {text}");
        let m = cl.nodes[0].metrics().await;
        assert!(
            !m.contains("peer=\"gw-x\""),
            "an unknown node is never a peer: {m}"
        );
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn the_internal_listener_serves_only_authenticated_requests_for_its_own_sessions() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-auth");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let cl = cluster(server, &ca).await;
        let c = login(&cl.nodes[0], false).await;
        let internal_a = cl.internal[0];
        let body = |sid: &str| format!("<body xmlns='{NS}' rid='{}' sid='{sid}'/>", c.rid + 1);
        let own = body(&c.sid);

        // No header, a malformed one, another secret, a changed body, a
        // stale timestamp: 401, and the session is untouched.
        let stale = sign(
            SECRET.as_bytes(),
            &NodeName::parse("gw-b").unwrap(),
            1_000_000,
            &Signed {
                method: "POST",
                path: "/http-bind",
                body: own.as_bytes(),
            },
        );
        for auth in [
            None,
            Some("v1 gw-b".to_string()),
            Some(signed("another secret, also of 32 characters", "gw-b", &own)),
            Some(signed(SECRET, "gw-b", &body("x"))),
            Some(stale),
        ] {
            let (status, text) = post_internal(internal_a, auth.clone(), &own).await;
            assert_eq!(status, 401, "{auth:?}: {text}");
        }
        assert_eq!(
            cl.nodes[0]
                .metric(
                    "ucgate_cluster_received_total",
                    &[("peer", "unverified"), ("result", "refused")]
                )
                .await,
            5.0
        );

        // Authenticated, for another node's session: never a second hop.
        let of_b = ClusterSid {
            node: NodeName::parse("gw-b").unwrap(),
            ..ClusterSid::parse(&c.sid).unwrap()
        }
        .encode();
        let (status, text) =
            post_internal(internal_a, Some(signed(SECRET, "gw-c", &body(&of_b))), &body(&of_b)).await;
        assert!(is_item_not_found(status, &text), "{status} {text}");
        assert_eq!(
            cl.nodes[0].metric("ucgate_cluster_forwards_total", &[("peer", "gw-b"), ("result", "ok")]).await,
            0.0
        );
        // Authenticated, without a sid: forwarding never creates a session.
        let create = format!("<body xmlns='{NS}' rid='1' to='localhost' wait='5' hold='1' ver='1.11'/>");
        let (status, text) =
            post_internal(internal_a, Some(signed(SECRET, "gw-c", &create)), &create).await;
        assert!(status == 200 && text.contains("bad-request"), "{status} {text}");

        // Authenticated, for its own session: served (the session goes on
        // and the server's answer comes back).
        let flood = format!("<body xmlns='{NS}' rid='{}' sid='{}'><message xmlns='jabber:client' to='bob@localhost' type='chat'><body>flood 1</body></message></body>", c.rid + 1, c.sid);
        let (status, text) =
            post_internal(internal_a, Some(signed(SECRET, "gw-b", &flood)), &flood).await;
        assert_eq!(status, 200, "{text}");
        assert!(!text.contains("terminate"), "{text}");
        assert_eq!(bodies(&text), ["m1"], "{text}");
        assert_eq!(
            cl.nodes[0].metric("ucgate_bosh_sessions_created_total", &[]).await,
            1.0
        );
    })
    .await
    .expect("bounded in time");
}

/// An HTTP/2 connection to a node's internal listener.
async fn h2_to(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    s
}

/// An unauthenticated POST on `s`: its status (401) once served.
async fn status_on(
    s: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>,
    addr: SocketAddr,
) -> u16 {
    let req = http::Request::post(format!("http://{addr}/http-bind"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"<body/>",
        )))
        .unwrap();
    s.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_internal_listener_holds_at_most_cluster_max_connections() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-maxconn");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let cl = cluster_with(server, &ca, "max_connections = 1\n").await;
        let a = cl.internal[0];
        let mut first = h2_to(a).await;
        assert_eq!(status_on(&mut first, a).await, 401);
        // The second connection waits in the kernel's queue, unserved.
        let mut second = h2_to(a).await;
        let waiting = tokio::spawn(async move { status_on(&mut second, a).await });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiting.is_finished(),
            "a second connection is not served while the first is open"
        );
        // The first one closes: the second is served.
        drop(first);
        let status = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("served once the first connection is gone")
            .unwrap();
        assert_eq!(status, 401);
    })
    .await
    .expect("bounded in time");
}

/// Reads `tcp` until the node closes it; how long that took.
async fn closed_after(mut tcp: tokio::net::TcpStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn the_internal_listener_closes_connections_that_do_not_speak_http2_in_time() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-preface");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let cl = cluster(server, &ca).await;
        let a = cl.internal[0];
        // Silent: closed at server.handshake_timeout (1 s here), not held.
        let silent = tokio::net::TcpStream::connect(a).await.unwrap();
        let took = closed_after(silent).await;
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // Not HTTP/2: closed as soon as the first 24 bytes are read.
        use tokio::io::AsyncWriteExt;
        let mut h1 = tokio::net::TcpStream::connect(a).await.unwrap();
        h1.write_all(b"POST /http-bind HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let took = closed_after(h1).await;
        assert!(took < Duration::from_millis(900), "{took:?}");
        // A real HTTP/2 client is still served.
        let mut ok = h2_to(a).await;
        assert_eq!(status_on(&mut ok, a).await, 401);
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn an_owner_that_never_answers_is_remote_connection_failed_after_the_wait_and_forward_timeout(
) {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-fwd-timeout");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        // A "peer" that accepts and then says nothing at all.
        let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mute_addr = mute.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = mute.accept().await {
                held.push(s);
            }
        });
        let gw = lone_node(
            server,
            &ca,
            ("gw-m", mute_addr),
            "forward_timeout = \"200ms\"\n",
            "[bosh]\nmax_wait = \"1s\"\n",
        )
        .await;
        let started = std::time::Instant::now();
        let (status, text) = request_for_a_session_of(&gw, "gw-m").await;
        let took = started.elapsed();
        assert!(
            status == 200 && text.contains("remote-connection-failed"),
            "{status} {text}"
        );
        assert!(
            took >= Duration::from_millis(1100) && took < Duration::from_secs(5),
            "bosh.max_wait + cluster.forward_timeout, then the answer: {took:?}"
        );
        assert_eq!(
            gw.metric(
                "ucgate_cluster_forwards_total",
                &[("peer", "gw-m"), ("result", "timeout")]
            )
            .await,
            1.0
        );
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn a_peer_with_another_secret_refuses_and_the_client_gets_remote_connection_failed() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-fwd-secret");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let (internal_a, internal_b) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        let node = |name, secret, listen, peer| {
            Node {
                name,
                secret,
                listen,
                keys: "",
                peers: vec![peer],
                tables: "",
            }
            .toml(server, &ca)
        };
        let a = TestGateway::start(&node("gw-a", SECRET, internal_a, ("gw-b", internal_b))).await;
        let b = TestGateway::start(&node(
            "gw-b",
            "another secret, also more than 32 characters",
            internal_b,
            ("gw-a", internal_a),
        ))
        .await;
        let mut c = login(&b, false).await;
        c.addr = a.addr;
        c.rid += 1;
        let (status, text) = c
            .post_raw(format!(
                "<body xmlns='{NS}' rid='{}' sid='{}'/>",
                c.rid, c.sid
            ))
            .await;
        assert!(
            status == 200 && text.contains("remote-connection-failed"),
            "{status} {text}"
        );
        assert_eq!(
            a.metric(
                "ucgate_cluster_forwards_total",
                &[("peer", "gw-b"), ("result", "refused")]
            )
            .await,
            1.0
        );
        assert_eq!(
            b.metric(
                "ucgate_cluster_received_total",
                &[("peer", "unverified"), ("result", "refused")]
            )
            .await,
            1.0
        );
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn an_owners_answer_over_the_size_bound_is_remote_connection_failed() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-fwd-big");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        // A "peer" speaking HTTP/2 that answers every request with 2 MiB,
        // over the bound of `bosh.max_pending_bytes` (1 KiB here) + 1 MiB.
        let big = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let big_addr = big.local_addr().unwrap();
        tokio::spawn(async move {
            use hyper_util::rt::{TokioExecutor, TokioIo};
            while let Ok((s, _)) = big.accept().await {
                let service = hyper::service::service_fn(|_req| async {
                    let body = bytes::Bytes::from(vec![b'x'; 2 << 20]);
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("content-type", "text/xml; charset=utf-8")
                            .body(http_body_util::Full::new(body))
                            .unwrap(),
                    )
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), service),
                );
            }
        });
        let gw = lone_node(
            server,
            &ca,
            ("gw-big", big_addr),
            "forward_timeout = \"2s\"\n",
            "[bosh]\nmax_wait = \"1s\"\nmax_pending_bytes = 1024\n",
        )
        .await;
        let (status, text) = request_for_a_session_of(&gw, "gw-big").await;
        assert!(
            status == 200 && text.contains("remote-connection-failed") && text.len() < 1024,
            "{status} {} bytes: {}",
            text.len(),
            &text[..text.len().min(200)]
        );
        assert_eq!(
            gw.metric(
                "ucgate_cluster_forwards_total",
                &[("peer", "gw-big"), ("result", "failed")]
            )
            .await,
            1.0
        );
    })
    .await
    .expect("bounded in time");
}
