//! The real `ucgate` binary as a child process: start on ephemeral ports
//! (read from its JSON start-up line), signals, and its log lines.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ucgate")
}

/// What to do with the child's stderr once its start-up line is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// Keep reading every line into [`Spawned::log`].
    Collect,
    /// Close the pipe: the child's later writes fail (EPIPE).
    Close,
    /// Keep the pipe open and never read it again: it fills up.
    Stall,
}

pub struct Spawned {
    pub child: Child,
    pub main: SocketAddr,
    pub admin: SocketAddr,
    /// Every stderr line read so far (with [`Stderr::Collect`]).
    pub log: Arc<Mutex<Vec<String>>>,
    /// The unread pipe (with [`Stderr::Stall`]).
    pub stalled: Option<ChildStderr>,
}

/// Starts the binary with `config` written to `dir/ucgate.toml`, JSON logs
/// and `extra` arguments, with `wrapper` in front (e.g. `prlimit`).
#[allow(clippy::zombie_processes)] // the callers wait() on the child
pub fn spawn(config: &str, dir: &Path, wrapper: &[&str], extra: &[&str], mode: Stderr) -> Spawned {
    let file = dir.join("ucgate.toml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(bin());
            c
        }
        None => Command::new(bin()),
    };
    let mut child = cmd
        .args(["run", "--config"])
        .arg(&file)
        .args(["--log-format", "json"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let field = |line: &str, key: &str| -> Option<SocketAddr> {
        let i = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
        line[i..].split('"').next()?.parse().ok()
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(15);
    let (main, admin) = loop {
        assert!(Instant::now() < deadline, "no start-up line in 15 s");
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("gateway stderr");
        assert!(
            n > 0,
            "the gateway exited before starting: {:?}",
            log.lock().unwrap()
        );
        let line = line.trim_end().to_string();
        log.lock().unwrap().push(line.clone());
        assert!(line.starts_with('{'), "not JSON: {line}");
        if line.contains("ucgate starting") {
            break (
                field(&line, "listen").unwrap(),
                field(&line, "admin").unwrap(),
            );
        }
    };
    let stalled = match mode {
        Stderr::Collect => {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in reader.lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
            None
        }
        Stderr::Close => None,
        Stderr::Stall => Some(reader.into_inner()),
    };
    Spawned {
        child,
        main,
        admin,
        log,
        stalled,
    }
}

/// Kills the process if a test fails before it has waited for it.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

pub async fn wait_ready(admin: SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(admin).await.is_ok()
            && super::http_get(admin, "/ready").await.0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not ready");
}

/// Waits for the child to exit, at most `limit`; its exit code and how long it took.
pub async fn wait_exit(mut child: Child, limit: Duration) -> (Option<i32>, Duration) {
    let start = Instant::now();
    let status = tokio::task::spawn_blocking(move || loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    })
    .await
    .unwrap();
    let took = start.elapsed();
    assert!(
        status.is_some(),
        "the gateway did not exit within {limit:?}"
    );
    (status.and_then(|s| s.code()), took)
}
