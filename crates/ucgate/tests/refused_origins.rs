//! A browser refused for its Origin (issue 16 item 3): the log line says
//! which `origins` line to write, for a WebSocket and a BOSH route, and the
//! admin listener lists the refused origins per route.

mod common;

use std::time::Duration;

use common::process::{self, signal, wait_exit, wait_ready, KillOnDrop, Stderr};
use common::tls::TempDir;
use common::*;

/// The `hint` field of a JSON log line, wherever the formatter put it.
fn hint(line: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let h = v.get("hint").or_else(|| v.get("fields")?.get("hint"))?;
    h.as_str().map(str::to_string)
}

#[tokio::test]
async fn a_refused_origin_is_logged_with_the_line_to_add_and_listed() {
    let dir = TempDir::new("refused-origins");
    let echo = echo_backend().await;
    // Line numbers matter: the hint names them.
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n\
         [[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"{echo}\"\n\
         origins = [\"https://good.example\"]\n\
         \n[[route]]\npath = \"/http-bind\"\nkind = \"bosh\"\n\
         \n[xmpp.domains.\"localhost\"]\naddress = \"127.0.0.1:9\"\ntls = \"none\"\n"
    );
    let s = process::spawn(&cfg, dir.path(), &[], &[], Stderr::Collect);
    let _guard = KillOnDrop(s.child.id());
    wait_ready(s.admin).await;

    let url = format!("ws://{}/echo", s.main);
    for origin in ["https://Chat.Example:443", "https://chat.example", "null"] {
        let e = ws_connect(&url, Some(origin), None).await.unwrap_err();
        assert!(e.to_string().contains("403"), "{origin}: {e}");
    }
    for _ in 0..2 {
        let raw = raw_request(
            s.main,
            &format!(
                "POST /http-bind HTTP/1.1\r\nHost: {}\r\nOrigin: https://app.example\r\nContent-Type: text/xml\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                s.main
            ),
        )
        .await;
        assert!(raw.starts_with("HTTP/1.1 403"), "{raw}");
    }

    let (status, body) = http_get(s.admin, "/refused-origins").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let routes = v["routes"].as_array().unwrap();
    let list = |i: usize| -> Vec<(String, u64)> {
        routes[i]["refused_origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let (first, last) = (o["first_seen_unix"].as_u64(), o["last_seen_unix"].as_u64());
                assert!(first.unwrap() > 1_700_000_000 && first <= last, "{o}");
                (
                    o["origin"].as_str().unwrap().to_string(),
                    o["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(routes.len(), 2, "{body}");
    assert_eq!(routes[0]["route"], "/echo");
    assert_eq!(
        list(0),
        [
            ("null".to_string(), 1),
            ("https://chat.example".to_string(), 1),
            ("https://Chat.Example:443".to_string(), 1),
        ]
    );
    assert_eq!(routes[1]["route"], "/http-bind");
    assert_eq!(list(1), [("https://app.example".to_string(), 2)]);

    signal(&s.child, "-TERM");
    let (code, _) = wait_exit(s.child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    let log = s.log.lock().unwrap().join("\n");
    let hints: Vec<String> = log
        .lines()
        .filter(|l| l.contains("origin_forbidden"))
        .filter_map(hint)
        .collect();
    let ws = "add \"https://chat.example\" to `origins` of the [[route]] with path = \"/echo\" (config line 9): origins = [\"https://good.example\", \"https://chat.example\"]";
    let null = "the Origin `null` (a file:// page, a sandboxed iframe) cannot be allowed by name on the [[route]] with path = \"/echo\": serve the page from http(s):// (only origins = [\"*\"], which lets every page in, would allow it)";
    let own = format!("http://{}", s.main);
    let bosh = format!("set `origins` of the [[route]] with path = \"/http-bind\" (config line 11): origins = [\"{own}\", \"https://app.example\"] (a list replaces the same-origin default, so it keeps the gateway's own \"{own}\")");
    // The two spellings of chat.example are two lines (the log keys on what
    // the browser sent); the second BOSH refusal is within the minute.
    assert_eq!(hints, [ws, ws, null, &bosh], "{log}");
}
