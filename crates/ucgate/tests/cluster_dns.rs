//! Peers found in DNS (`cluster.peers_srv`, issue 17 item 1), against a
//! real DNS server (Debian's dnsmasq, serving SRV and address records on a
//! loopback port): a node with no static peers learns the others from the
//! SRV records (the target's first label is the node's name), skips its own
//! record and a record that names no node, forwards to what it found, and
//! keeps what it knows while DNS fails; a DNS server that never answers
//! fails each lookup within its deadline.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::bosh_client::*;
use common::tls::*;
use common::xmpp_server::*;
use common::*;

const SECRET: &str = "a shared secret of more than 32 characters";
const SRV: &str = "_cluster._tcp.peers.test";

/// dnsmasq in the foreground on `port`, answering only from its arguments.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(port: u16, records: &[(&str, SocketAddr)]) -> Dnsmasq {
    let bin = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("dnsmasq is installed (Debian package dnsmasq-base; scripts/install-deps)");
    let mut args = vec![
        "--keep-in-foreground".to_string(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--conf-file=/dev/null".into(),
        "--pid-file=".into(),
        "--bind-interfaces".into(),
        "--listen-address=127.0.0.1".into(),
        "--user=root".into(),
        format!("--port={port}"),
    ];
    for (target, addr) in records {
        args.push(format!("--srv-host={SRV},{target},{}", addr.port()));
        args.push(format!("--host-record={target},{}", addr.ip()));
    }
    let child = Command::new(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    Dnsmasq(child)
}

/// A port free for both UDP and TCP on 127.0.0.1.
fn free_dns_port() -> u16 {
    loop {
        let port = free_addr("127.0.0.1").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn wait_for(gw: &TestGateway, name: &str, labels: &[(&str, &str)], at_least: f64) {
    for _ in 0..200 {
        if gw.metric(name, labels).await >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name}{labels:?} never reached {at_least}");
}

#[tokio::test]
async fn a_node_learns_its_peers_from_srv_records_and_forwards_to_them() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-dns");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let (internal_a, internal_b) = (free_addr("127.0.0.1"), free_addr("127.0.0.1"));
        let dns_port = free_dns_port();
        let dns = dnsmasq(
            dns_port,
            &[
                ("gw-a.peers.test", internal_a),
                ("gw-b.peers.test", internal_b),
                ("not_a_node.peers.test", internal_b),
            ],
        );
        let node = |name: &str, listen: SocketAddr, cluster_extra: String| {
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n\n\
                 [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
                 [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n\
                 [cluster]\nnode = \"{name}\"\nsecret = \"{SECRET}\"\nlisten = \"{listen}\"\n{cluster_extra}",
                ca.display()
            )
        };
        let a = TestGateway::start(&node(
            "gw-a",
            internal_a,
            format!("peers_srv = \"{SRV}\"\ndns_server = \"127.0.0.1:{dns_port}\"\npeers_refresh = \"1s\"\n"),
        ))
        .await;
        let b = TestGateway::start(&node(
            "gw-b",
            internal_b,
            format!("[cluster.peers]\ngw-a = \"{internal_a}\"\n"),
        ))
        .await;
        wait_for(&a, "ucgate_cluster_peer_lookups_total", &[("result", "ok")], 1.0).await;
        // gw-b only: its own record is not a peer, `not_a_node` names none.
        assert_eq!(a.metric("ucgate_cluster_peers", &[]).await, 1.0);

        // A session of gw-b, served through gw-a, which found gw-b in DNS.
        let mut c = login(&b, false).await;
        flood_through(&mut c, &[a.addr], 2).await;
        assert!(
            a.metric("ucgate_cluster_forwards_total", &[("peer", "gw-b"), ("result", "ok")])
                .await
                >= 1.0
        );

        // DNS gone: lookups fail, and what gw-a knew is kept.
        drop(dns);
        wait_for(&a, "ucgate_cluster_peer_lookups_total", &[("result", "error")], 1.0).await;
        assert_eq!(a.metric("ucgate_cluster_peers", &[]).await, 1.0);
        flood_through(&mut c, &[a.addr], 1).await;
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn a_dns_server_that_never_answers_fails_each_lookup_in_time_and_the_static_peers_stay() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-dns-mute");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        // A "DNS server" that takes every query (UDP and TCP) and never
        // answers.
        let port = free_dns_port();
        let udp = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await.unwrap();
        let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while udp.recv_from(&mut buf).await.is_ok() {}
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = tcp.accept().await {
                held.push(s);
            }
        });
        let peer = free_addr("127.0.0.1");
        let gw = TestGateway::start(&format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"1s\"\n\n\
             [[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
             [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n\
             [cluster]\nnode = \"gw-a\"\nsecret = \"{SECRET}\"\nlisten = \"{}\"\n\
             peers_srv = \"{SRV}\"\ndns_server = \"127.0.0.1:{port}\"\npeers_refresh = \"1s\"\n\
             [cluster.peers]\ngw-b = \"{peer}\"\n",
            ca.display(),
            free_addr("127.0.0.1"),
        ))
        .await;
        let started = std::time::Instant::now();
        wait_for(&gw, "ucgate_cluster_peer_lookups_total", &[("result", "error")], 1.0).await;
        let took = started.elapsed();
        // the lookup's own deadline (3 s), not a hang
        assert!(took < Duration::from_secs(8), "first failed lookup after {took:?}");
        assert_eq!(
            gw.metric("ucgate_cluster_peer_lookups_total", &[("result", "ok")]).await,
            0.0
        );
        // the static peer is still known, and the node still serves
        assert_eq!(gw.metric("ucgate_cluster_peers", &[]).await, 1.0);
        let c = Client::new(gw.addr, false).await;
        let (status, _) = c.post_raw(format!("<body xmlns='{NS}' rid='1' to='localhost' wait='1' hold='1' ver='1.11'/>")).await;
        assert_eq!(status, 200);
    })
    .await
    .expect("bounded in time");
}
