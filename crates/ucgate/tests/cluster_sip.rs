//! SIP flows across the nodes of a cluster (issue 17 item 3): each node's
//! Path, Record-Route and Via name its own `sip.advertised_host`; its flow
//! tokens name the node and its start value under the cluster key; a token
//! of another node, or of a previous start of the same node, gets `430 Flow
//! Failed` from whoever receives it; a forged token is refused (403) on
//! every node. Two gateway nodes in front of one stub core.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::sip::*;
use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::Message;
use ucgate_proto::sip::flow_token::{cluster_key, verify_cluster, NodeFlow};

const SECRET: &str = "a shared secret of more than 32 characters";

/// A TCP port free on 127.0.0.1 now (for `cluster.listen`).
fn free_tcp_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A port free on both UDP and TCP (for a pinned `sip.listen`).
async fn free_sip_port() -> u16 {
    Core::start().await.addr.port()
}

struct Node {
    name: &'static str,
    host: &'static str,
    cluster_port: u16,
}

/// Node `me` of the two, its SIP core-facing port pinned to `sip_port`.
fn node_config(core: SocketAddr, me: &Node, peer: &Node, sip_port: u16) -> String {
    format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core};transport=udp\"\nclose_timeout = \"300ms\"\n\n\
         [sip]\nadvertised_host = \"{}\"\nlisten = \"127.0.0.1:{sip_port}\"\n\n\
         [cluster]\nnode = \"{}\"\nsecret = \"{SECRET}\"\nlisten = \"127.0.0.1:{}\"\n\
         [cluster.peers]\n{} = \"127.0.0.1:{}\"\n",
        me.host, me.name, me.cluster_port, peer.name, peer.cluster_port
    )
}

/// Registers through a node; returns the Path URI and the node's UDP
/// address, after checking that Path and our Via name `host:port`.
async fn register_at(ws: &mut Ws, core: &Core, host: &str, user: &str) -> (String, SocketAddr) {
    send(
        ws,
        &REGISTER
            .replace("alice", user)
            .replace("reg-call-1", &format!("reg-{user}")),
    )
    .await;
    let (req, gw) = core.recv().await;
    assert!(req.starts_with("REGISTER "), "{req}");
    let own = format!("{host}:{}", gw.port());
    let vias = headers(&req, "Via");
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {own};branch=z9hG4bK")),
        "our Via names this node: {req}"
    );
    let path = headers(&req, "Path");
    assert_eq!(path.len(), 1, "{req}");
    let uri = path[0].trim_start_matches('<').split('>').next().unwrap();
    assert!(
        uri.ends_with(&format!("@{own};transport=udp;lr;ob")),
        "Path names this node: {uri}"
    );
    core.send(&response(&req, "200 OK"), gw).await;
    let ok = next_text(ws).await;
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    (uri.to_string(), gw)
}

/// The token in a Path URI, read with the cluster key.
fn token_of(uri: &str) -> NodeFlow {
    let user = uri.trim_start_matches("sip:").split('@').next().unwrap();
    verify_cluster(&cluster_key(SECRET.as_bytes()), user.as_bytes())
        .unwrap_or_else(|| panic!("not a cluster token: {uri}"))
}

/// `uri` with its `host:port` replaced by `to`.
fn readdressed(uri: &str, to: &str) -> String {
    let (user, rest) = uri.split_once('@').unwrap();
    let params = rest.split_once(';').map_or("", |(_, p)| p);
    format!("{user}@{to};{params}")
}

/// `uri` with one character of its token changed.
fn forged(uri: &str) -> String {
    let mut b = uri.as_bytes().to_vec();
    b[10] = if b[10] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// What the core gets back for a MESSAGE routed by `route` and sent to `to`.
async fn answer_to(core: &Core, route: &str, to: SocketAddr, cseq: u32) -> String {
    core.send(&core_message(core, route, cseq), to).await;
    let (resp, from) = core.recv().await;
    assert_eq!(from, to);
    resp
}

/// Nothing but pings and pongs arrives on `ws` for a while.
async fn quiet(ws: &mut Ws) {
    let end = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected nothing, got {other:?}"),
        }
    }
}

async fn flow_gone(gw: &TestGateway) -> f64 {
    gw.metric("ucgate_sip_flow_gone_total", &[("route", "/sip")])
        .await
}

#[tokio::test]
async fn each_node_names_itself_and_a_token_of_another_node_gets_430() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let core = Core::start().await;
        let a = Node {
            name: "gw-a",
            host: "node-a.test",
            cluster_port: free_tcp_port(),
        };
        let b = Node {
            name: "gw-b",
            host: "node-b.test",
            cluster_port: free_tcp_port(),
        };
        let mut gw_a =
            TestGateway::start(&node_config(core.addr, &a, &b, free_sip_port().await)).await;
        let mut gw_b =
            TestGateway::start(&node_config(core.addr, &b, &a, free_sip_port().await)).await;

        let mut alice = open(&gw_a).await;
        let (alice_path, a_udp) = register_at(&mut alice, &core, a.host, "alice").await;
        let mut bob = open(&gw_b).await;
        let (bob_path, b_udp) = register_at(&mut bob, &core, b.host, "bob").await;
        let (ta, tb) = (token_of(&alice_path), token_of(&bob_path));
        assert_eq!((ta.node.as_str(), tb.node.as_str()), ("gw-a", "gw-b"));
        assert_ne!(ta.start, tb.start);

        // Through its own node, alice's Path reaches her.
        core.send(&core_message(&core, &alice_path, 1), a_udp).await;
        let got = next_text(&mut alice).await;
        assert!(got.starts_with("MESSAGE "), "{got}");
        assert!(
            headers(&got, "Via")[0].starts_with(&format!("SIP/2.0/WS node-a.test:{}", a_udp.port())),
            "{got}"
        );

        // Alice's token sent to node b (as when b took a's address over, or
        // the core reaches every node at one name): 430 from b, and nothing
        // reaches bob, whose flow id may be the same number.
        let at_b = readdressed(&alice_path, &format!("{}:{}", b.host, b_udp.port()));
        let resp = answer_to(&core, &at_b, b_udp, 2).await;
        assert!(resp.starts_with("SIP/2.0 430 Flow Failed\r\n"), "{resp}");
        assert_eq!(flow_gone(&gw_b).await, 1.0);
        quiet(&mut bob).await;
        // And bob's token at node a.
        let at_a = readdressed(&bob_path, &format!("{}:{}", a.host, a_udp.port()));
        let resp = answer_to(&core, &at_a, a_udp, 3).await;
        assert!(resp.starts_with("SIP/2.0 430 Flow Failed\r\n"), "{resp}");
        assert_eq!(flow_gone(&gw_a).await, 1.0);
        quiet(&mut alice).await;

        // A forged token is refused on both nodes.
        for (path, to) in [(&alice_path, a_udp), (&at_b, b_udp), (&bob_path, b_udp), (&at_a, a_udp)] {
            let resp = answer_to(&core, &forged(path), to, 4).await;
            assert!(resp.starts_with("SIP/2.0 403 Forbidden\r\n"), "{resp}");
        }
        quiet(&mut alice).await;
        quiet(&mut bob).await;

        // A call from alice: the Record-Route pair names node a.
        send(
            &mut alice,
            "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKinv1\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=a9\r\nCall-ID: call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:x1@df7jal23ls0d.invalid;transport=ws;ob>\r\nContent-Length: 0\r\n\r\n",
        )
        .await;
        let (inv, from) = core.recv().await;
        assert_eq!(from, a_udp);
        let rr = headers(&inv, "Record-Route");
        let own = format!("node-a.test:{}", a_udp.port());
        assert!(
            rr[0].starts_with(&format!("<sip:{own};transport=udp;lr>, <sip:"))
                && rr[0].ends_with(&format!("@{own};transport=ws;lr>")),
            "{inv}"
        );
        gw_a.stop().await;
        gw_b.stop().await;
    })
    .await
    .expect("the test took too long");
}

#[tokio::test]
async fn a_token_of_the_previous_start_of_a_node_gets_430() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let core = Core::start().await;
        let a = Node {
            name: "gw-a",
            host: "127.0.0.1",
            cluster_port: free_tcp_port(),
        };
        let b = Node {
            name: "gw-b",
            host: "127.0.0.1",
            cluster_port: free_tcp_port(),
        };
        let config = node_config(core.addr, &a, &b, free_sip_port().await);
        let mut first = TestGateway::start(&config).await;
        let mut alice = open(&first).await;
        let (old_path, old_udp) = register_at(&mut alice, &core, a.host, "alice").await;
        drop(alice);
        first.stop().await;

        // The same node, restarted on the same address: flow ids start at
        // 1 again, so bob's flow has alice's old id.
        let mut gw = TestGateway::start(&config).await;
        let mut bob = open(&gw).await;
        let (new_path, udp) = register_at(&mut bob, &core, a.host, "bob").await;
        assert_eq!(udp, old_udp);
        let (old, new) = (token_of(&old_path), token_of(&new_path));
        assert_eq!((old.node, old.flow), (new.node, new.flow));
        assert_ne!(old.start, new.start);

        let resp = answer_to(&core, &old_path, udp, 1).await;
        assert!(resp.starts_with("SIP/2.0 430 Flow Failed\r\n"), "{resp}");
        assert_eq!(flow_gone(&gw).await, 1.0);
        quiet(&mut bob).await;
        let resp = answer_to(&core, &forged(&old_path), udp, 2).await;
        assert!(resp.starts_with("SIP/2.0 403 Forbidden\r\n"), "{resp}");
        // Bob's own token still reaches him.
        core.send(&core_message(&core, &new_path, 3), udp).await;
        assert!(next_text(&mut bob).await.starts_with("MESSAGE "));
        gw.stop().await;
    })
    .await
    .expect("the test took too long");
}
