//! `[cluster]` (issue 17, items 1 and 2): a node's BOSH sids name the node
//! and its start value, sessions work as on a single node, and sids that
//! are forged, of an unknown node or of a previous life of the node are
//! `item-not-found`. Without `[cluster]` the sid keeps its single-node form.
//! Forwarding between nodes: cluster_forward.rs.

mod common;

use std::time::Duration;

use common::bosh_client::*;
use common::tls::*;
use common::xmpp_server::*;
use common::*;
use ucgate_proto::bosh::sid::ClusterSid;

const SECRET: &str = "a shared secret of more than 32 characters";

fn config(server: std::net::SocketAddr, ca: &std::path::Path, cluster: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nh2c = true\ndrain_timeout = \"1s\"\n\n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\n\
         [xmpp.domains.\"localhost\"]\naddress = \"{server}\"\ntls = \"starttls\"\nca_file = \"{}\"\n\n{cluster}",
        ca.display()
    )
}

fn cluster(node: &str) -> String {
    format!(
        "[cluster]\nnode = \"{node}\"\nsecret = \"{SECRET}\"\nlisten = \"{}\"\n\
         [cluster.peers]\nother = \"{}\"\n",
        free_addr("127.0.0.1"),
        // no request here names `other`: nothing is forwarded
        free_addr("127.0.0.1"),
    )
}

async fn is_item_not_found(gw: &TestGateway, sid: &str) -> bool {
    let c = Client::new(gw.addr, false).await;
    let (status, text) = c
        .post_raw(format!("<body xmlns='{NS}' rid='4100' sid='{sid}'/>"))
        .await;
    status == 200 && text.contains("type='terminate'") && text.contains("item-not-found")
}

#[tokio::test]
async fn a_node_names_its_sessions_and_refuses_foreign_and_stale_sids() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-sid");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let mut gw = TestGateway::start(&config(server, &ca, &cluster("gw-b"))).await;

        let mut a = login(&gw, false).await;
        let sa = ClusterSid::parse(&a.sid).unwrap_or_else(|e| panic!("{}: {e}", a.sid));
        assert_eq!(sa.node.as_str(), "gw-b");
        flood_through(&mut a, &[gw.addr], 20).await;
        let b = login(&gw, true).await;
        let sb = ClusterSid::parse(&b.sid).unwrap();
        assert_eq!(
            (sb.node, sb.start),
            (sa.node.clone(), sa.start),
            "one start value per process"
        );
        assert_ne!(sb.random, sa.random);

        // Forged: another node, another start value, other random bits, garbage.
        let forged = [
            ClusterSid {
                node: ucgate_proto::bosh::sid::NodeName::parse("gw-z").unwrap(),
                ..sa.clone()
            },
            ClusterSid {
                start: sa.start.wrapping_add(1),
                ..sa.clone()
            },
            ClusterSid {
                random: [0x5a; 16],
                ..sa.clone()
            },
        ];
        for f in &forged {
            assert!(is_item_not_found(&gw, &f.encode()).await, "{f:?}");
        }
        for garbage in [
            "nope",
            "gw-b",
            "gw-b..",
            &a.sid.to_uppercase(),
            &format!("{}0", a.sid),
        ] {
            assert!(is_item_not_found(&gw, garbage).await, "{garbage}");
        }
        // The real session is untouched by all that.
        flood_through(&mut a, &[gw.addr], 5).await;
        let sid = a.sid.clone();
        gw.stop().await;

        // The same node started again: a new start value, and the sids of
        // its previous life are stale.
        let gw2 = TestGateway::start(&config(server, &ca, &cluster("gw-b"))).await;
        let c = login(&gw2, false).await;
        let sc = ClusterSid::parse(&c.sid).unwrap();
        assert_eq!(sc.node.as_str(), "gw-b");
        assert_ne!(
            sc.start, sa.start,
            "a restarted node draws a new start value"
        );
        assert!(is_item_not_found(&gw2, &sid).await);
    })
    .await
    .expect("bounded in time");
}

#[tokio::test]
async fn without_cluster_the_sid_keeps_its_single_node_form() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = TempDir::new("cluster-none");
        let (ca, tls) = ca_and_server(dir.path(), &["localhost"]);
        let (server, _seen) = scripted_server(tls).await;
        let gw = TestGateway::start(&config(server, &ca, "")).await;
        let mut c = login(&gw, false).await;
        assert_eq!(c.sid.len(), 32, "{}", c.sid);
        assert!(
            c.sid
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{}",
            c.sid
        );
        assert!(ClusterSid::parse(&c.sid).is_err());
        flood_through(&mut c, &[gw.addr], 5).await;
    })
    .await
    .expect("bounded in time");
}
