//! Helpers for the mode tests: run the `ucgate-bench` binary, a real
//! gateway in-process, and faulty echo servers.
#![allow(dead_code)]

pub mod sip;
pub mod xmpp;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const BIN: &str = env!("CARGO_BIN_EXE_ucgate-bench");

/// What a run of the binary produced.
pub struct Run {
    pub code: i32,
    pub json: serde_json::Value,
    pub stderr: String,
}

impl Run {
    pub fn u(&self, key: &str) -> u64 {
        self.json[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} missing in {}", self.json))
    }
    pub fn kind(&self, kind: &str) -> u64 {
        self.json["error_kinds"][kind].as_u64().unwrap_or(0)
    }
}

/// Runs `ucgate-bench ARGS` (bounded to 60 s) and parses its JSON line.
pub async fn bench(args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("ucgate-bench finished in time")
    .expect("ucgate-bench ran");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    let json = if lines.len() == 1 {
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("bad JSON {e}: {stdout}\nstderr: {stderr}"))
    } else {
        serde_json::Value::Null
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// Asserts a clean run and the common JSON fields.
pub fn assert_clean(r: &Run, mode: &str) {
    assert_eq!(r.code, 0, "exit 0 expected: {}\n{}", r.json, r.stderr);
    assert_eq!(r.json["mode"], mode, "{}", r.json);
    assert_eq!(r.u("errors"), 0, "{}", r.json);
    assert!(r.json["error_kinds"].as_object().unwrap().is_empty());
    for k in ["duration_s", "rate", "throughput_bytes_s"] {
        assert!(r.json[k].is_number(), "{k} in {}", r.json);
    }
    for k in ["p50", "p90", "p99", "max"] {
        assert!(r.json["latency_us"][k].is_u64(), "{k} in {}", r.json);
    }
}

// One gateway helper for every test of the crate (support/gateway.rs).
#[path = "../support/mod.rs"]
pub mod support;
#[allow(unused_imports)] // not every test crate that includes this uses it
pub use support::Gateway;

/// The binary's own echo server, killed on drop.
pub struct EchoServer {
    pub addr: String,
    _child: tokio::process::Child,
}

pub async fn own_echo_server() -> EchoServer {
    let mut child = tokio::process::Command::new(BIN)
        .args(["tcp-echo-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tcp-echo-server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("listening line in time")
        .unwrap()
        .expect("a line");
    let addr = line
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    EchoServer {
        addr,
        _child: child,
    }
}

/// How a faulty echo server misbehaves, on every connection, at byte
/// offsets of the echoed stream.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Flip a bit of the byte at this offset.
    Corrupt(usize),
    /// Drop `len` bytes from this offset.
    Drop(usize, usize),
    /// Swap the two `len`-byte blocks starting at this offset.
    Swap(usize, usize),
    /// Close the connection after this many bytes.
    CloseAfter(usize),
    /// Stop echoing for this many milliseconds once this offset is reached.
    Stall(usize, u64),
}

/// An echo server on 127.0.0.1:0 with one fault.
pub async fn faulty_echo(fault: Fault) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut off = 0usize; // offset of the next input byte
                let mut held: Vec<u8> = Vec::new();
                let mut buf = vec![0u8; 16 * 1024];
                let mut stalled = false;
                loop {
                    if let Fault::Stall(at, ms) = fault {
                        if off >= at && !stalled {
                            stalled = true;
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                    }
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let mut out = Vec::with_capacity(n);
                    for &b in &buf[..n] {
                        let i = off;
                        off += 1;
                        match fault {
                            Fault::Corrupt(at) if i == at => out.push(b ^ 1),
                            Fault::Drop(at, len) if (at..at + len).contains(&i) => {}
                            Fault::Swap(at, len) if (at..at + len).contains(&i) => held.push(b),
                            Fault::Swap(at, len) if i == at + 2 * len - 1 => {
                                out.push(b);
                                out.append(&mut held);
                            }
                            Fault::CloseAfter(at) if i >= at => {
                                let _ = s.write_all(&out).await;
                                return;
                            }
                            _ => out.push(b),
                        }
                    }
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

pub fn tunnel_route(path: &str, backend: SocketAddr) -> String {
    format!("[[route]]\npath = \"{path}\"\nkind = \"tcp\"\nbackend = \"{backend}\"\n")
}
