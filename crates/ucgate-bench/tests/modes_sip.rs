//! `sip-ws` through the gateway's sip-websocket route in front of an
//! in-test UDP SIP core: REGISTER, MESSAGE to oneself and back, digest
//! authentication, and core faults that must make the run fail.

mod modes_common;

use modes_common::sip::{sip_core, SFault};
use modes_common::*;

async fn gateway(fault: SFault) -> Gateway {
    let core = sip_core(fault).await;
    Gateway::start(&format!(
        "[[route]]\npath = \"/sip\"\nkind = \"sip-websocket\"\ncore = \"sip:{core};transport=udp\"\n\n[sip]\nflow_token_key = \"a test key shared by every node\"\nmax_messages_per_second = 100000\n"
    ))
    .await
}

fn args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "sip-ws",
        url,
        "--domain",
        "localhost",
        "--duration",
        "1",
        "--warmup",
        "0.2",
    ];
    v.extend_from_slice(extra);
    v
}

fn assert_sip_clean(r: &Run, clients: u64) {
    assert_clean(r, "sip-ws");
    assert_eq!(r.u("clients"), clients);
    assert_eq!(r.u("registered"), clients, "{}", r.json);
    assert!(
        r.json["register_rate"].as_f64().unwrap() > 0.0,
        "{}",
        r.json
    );
    assert!(r.json["register_latency_us"]["p50"].as_u64().unwrap() > 0);
    assert!(r.u("messages") > 0, "{}", r.json);
    assert!(r.json["latency_us"]["p50"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_ws_register_and_messages_through_the_gateway() {
    let gw = gateway(SFault::None).await;
    let url = gw.url("ws", "/sip");
    let r = bench(&args(&url, &["--clients", "3", "--window", "2"])).await;
    assert_sip_clean(&r, 3);
    assert!(r.u("messages") > 20, "{}", r.json);
    let r = bench(&args(
        &url,
        &["--clients", "2", "--rate", "60", "--size", "16"],
    ))
    .await;
    assert_sip_clean(&r, 2);
    assert!((58..=62).contains(&r.u("messages")), "{}", r.json);
    assert_eq!(r.u("bytes"), r.u("messages") * 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_ws_digest_authentication() {
    let gw = gateway(SFault::Challenge).await;
    let url = gw.url("ws", "/sip");
    let r = bench(&args(&url, &["--clients", "2", "--password", "secret"])).await;
    assert_sip_clean(&r, 2);
    let r = bench(&args(&url, &["--clients", "2", "--password", "wrong"])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.kind("register"), 2, "{}", r.json);
    let r = bench(&args(&url, &["--clients", "1"])).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.kind("register"), 1, "{}", r.json);
    assert!(r.stderr.contains("no --password"), "{}", r.stderr);
}

async fn faulty(fault: SFault, extra: &[&str]) -> Run {
    let gw = gateway(fault).await;
    let url = gw.url("ws", "/sip");
    let mut a = vec!["--clients", "1", "--timeout", "1"];
    a.extend_from_slice(extra);
    let r = bench(&args(&url, &a)).await;
    assert_eq!(r.code, 1, "{fault:?} must fail: {}\n{}", r.json, r.stderr);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_ws_detects_lost_corrupted_duplicated_reordered() {
    let r = faulty(SFault::Drop(4), &[]).await;
    assert_eq!(r.kind("lost"), 1, "{}", r.json);
    let r = faulty(SFault::Corrupt(4), &[]).await;
    assert_eq!(r.kind("corrupted"), 1, "{}", r.json);
    let r = faulty(SFault::Duplicate(4), &[]).await;
    assert_eq!(r.kind("duplicated"), 1, "{}", r.json);
    let r = faulty(SFault::Swap(4), &["--window", "4"]).await;
    assert_eq!(r.kind("reordered"), 1, "{}", r.json);
}
