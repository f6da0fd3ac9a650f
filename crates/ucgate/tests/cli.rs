//! The `ucgate` binary: help, version, check-config on fixtures, and the
//! real process lifecycle (SIGTERM drains and exits 0; a second signal exits
//! at once).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::process::{self, bin, signal, wait_ready, KillOnDrop};
use common::*;
use futures_util::StreamExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config")
}

#[test]
fn version_and_help() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ucgate {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(bin()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "check-config",
        "--config",
        "--log-format",
        "Examples:",
        "SIGHUP",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
}

#[test]
fn valid_fixtures_pass_check_config() {
    let mut n = 0;
    for entry in std::fs::read_dir(fixtures().join("valid")).unwrap() {
        let path = entry.unwrap().path();
        let out = Command::new(bin())
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": OK ("));
        n += 1;
    }
    assert!(n >= 2);
}

#[test]
fn invalid_fixtures_report_every_error_with_position() {
    let dir = fixtures().join("invalid");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = Command::new(bin())
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let shown = String::from_utf8_lossy(&out.stderr)
            .replace(&path.display().to_string(), "FILE")
            .replace(&format!("{}/", dir.display()), "DIR/");
        let expected = std::fs::read_to_string(path.with_extension("expected")).unwrap();
        assert_eq!(shown.trim_end(), expected.trim_end(), "{}", path.display());
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn check_config_lists_each_listener_certificate_with_its_names_and_end() {
    let dir = common::tls::TempDir::new("cli-certs");
    let certs = fixtures().join("invalid/certs");
    let file = dir.path().join("tls.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:8443\"\n[[server.tls.certificate]]\ncert = \"{}\"\nkey = \"{}\"\n",
            certs.join("good.crt").display(),
            certs.join("good.key").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("server.tls.certificate[0]: "))
        .unwrap_or_else(|| panic!("no certificate line: {stdout}"));
    assert!(
        line.contains(&format!(
            "`{}` for `chat.example.org`; valid until 21",
            certs.join("good.crt").display()
        )),
        "{line}"
    );
}

#[test]
fn a_ca_file_with_no_valid_certificate_is_a_warning() {
    let dir = common::tls::TempDir::new("cli-ca-warn");
    let expired = fixtures().join("invalid/certs/expired.crt");
    let file = dir.path().join("ca.toml");
    std::fs::write(
        &file,
        format!(
            "[xmpp.domains.\"example.org\"]\naddress = \"127.0.0.1:5223\"\ntls = \"direct\"\nca_file = \"{}\"\n",
            expired.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "{}:4:11: `xmpp.domains.\"example.org\".ca_file`: warning: no certificate in `{}` is valid now (the last expired on 2021-01-01 00:00:00 UTC): every TLS connection through it will fail; put the server's current CA (or certificate) there",
            file.display(),
            expired.display()
        )
    );
}

/// A key the service user may not read: the message names the user. As
/// root (CI), check-config runs as `nobody` through `setpriv`.
#[test]
fn an_unreadable_key_names_the_user_that_runs_ucgate() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = common::tls::TempDir::new("cli-perm");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    common::tls::write_cert(dir.path(), "gw", &["localhost"]);
    let key = dir.path().join("gw.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).unwrap();
    let file = dir.path().join("perm.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:8443\"\n[[server.tls.certificate]]\ncert = \"gw.crt\"\nkey = \"gw.key\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("gw.crt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    let (mut cmd, user) = if root {
        let nobody = |exe: &Path| {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
                .arg(exe);
            c
        };
        // `nobody` may not reach the build directory (e.g. under /root):
        // then a link (or copy) of the binary in the 0755 test directory.
        let mut exe = PathBuf::from(bin());
        if !nobody(&exe)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            let local = dir.path().join("ucgate");
            if std::fs::hard_link(&exe, &local).is_err() {
                std::fs::copy(&exe, &local).unwrap();
            }
            exe = local;
        }
        let c = nobody(&exe);
        (c, "user `nobody` (uid 65534)".to_string())
    } else {
        let uid = std::fs::metadata("/proc/self").unwrap().uid();
        (Command::new(bin()), format!("(uid {uid})"))
    };
    let out = cmd.arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!(
        "{}:5:7: `server.tls.certificate[0].key`: `{}` cannot be read: permission denied to ",
        file.display(),
        key.display()
    );
    assert!(stderr.starts_with(&want), "{stderr}");
    assert!(stderr.contains(&user), "{stderr}");
    assert!(
        stderr.contains("which runs ucgate; let it read the file (e.g. `chgrp "),
        "{stderr}"
    );
}

#[test]
fn the_issue_example_and_the_shipped_example_load() {
    ucgate::Config::load(&fixtures().join("valid/minimal.toml")).unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/ucgate.example.toml");
    let c = ucgate::Config::load(&example).unwrap_or_else(|e| panic!("{e}"));
    assert!(!c.routes.is_empty());
}

type Spawned = (
    std::process::Child,
    std::net::SocketAddr,
    std::net::SocketAddr,
);

/// Starts the binary on ephemeral ports; returns the child and both addresses.
fn spawn_gateway(config: &str, dir: &Path) -> Spawned {
    spawn_gateway_with(config, dir, &[])
}

/// Like `spawn_gateway`, with a wrapper command in front (e.g. `prlimit`).
fn spawn_gateway_with(config: &str, dir: &Path, wrapper: &[&str]) -> Spawned {
    let s = process::spawn(config, dir, wrapper, &[], process::Stderr::Collect);
    (s.child, s.main, s.admin)
}

#[tokio::test]
async fn sigterm_drains_with_1001_and_exits_0() {
    let dir = common::tls::TempDir::new("cli");
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "")
    );
    let (mut child, addr, admin) = spawn_gateway(&cfg, dir.path());
    let _guard = KillOnDrop(child.id());
    wait_ready(admin).await;
    let (mut ws, _) = ws_connect(&format!("ws://{addr}/echo"), None, None)
        .await
        .unwrap();
    signal(&child, "-TERM");
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Away);
    while ws.next().await.is_some() {}
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let dir = common::tls::TempDir::new("cli2");
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndrain_timeout = \"60s\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "close_timeout = \"60s\"")
    );
    let (mut child, addr, admin) = spawn_gateway(&cfg, dir.path());
    let _guard = KillOnDrop(child.id());
    wait_ready(admin).await;
    // a client that never answers the close keeps the drain waiting
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf).await.unwrap();
    signal(&child, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited before the drain deadline"
    );
    signal(&child, "-INT");
    let start = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn a_bad_config_starts_nothing() {
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(fixtures().join("invalid/everything-wrong.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was started"));
    assert!(err.contains("`server.lisen`: unknown key"));
}

#[test]
fn an_acme_state_dir_that_cannot_be_made_stops_the_start_in_words() {
    let dir = common::tls::TempDir::new("acme-state");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let config = dir.path().join("ucgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.acme]\ndomains = [\"chat.example.com\"]\n\
             state_dir = \"{}/acme\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
            file.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway started although its ACME state directory cannot be made");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot create the ACME state directory")
            && err.contains("server.acme.state_dir"),
        "{err}"
    );
}

#[tokio::test]
async fn out_of_file_descriptors_backs_off_and_recovers() {
    // The gateway runs with a tiny descriptor limit; a burst of connections
    // exhausts it (EMFILE). The accept loop must back off instead of
    // spinning, keep the process alive, and serve again once descriptors
    // are free.
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit not available; skipping");
        return;
    }
    let dir = common::tls::TempDir::new("emfile");
    let echo = echo_backend().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tunnel_route("/echo", echo, "")
    );
    let (mut child, addr, admin) =
        spawn_gateway_with(&cfg, dir.path(), &["prlimit", "--nofile=48:48", "--"]);
    let _guard = KillOnDrop(child.id());
    wait_ready(admin).await;
    let mut hogs = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = tokio::net::TcpStream::connect(addr).await {
            hogs.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(hogs);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // (the admin listener shares the descriptor limit, so scrape afterwards)
    let metrics = http_get(admin, "/metrics").await.1;
    let errors = metric_value(
        &metrics,
        "ucgate_accept_errors_total",
        &[("listener", "main")],
    )
    .unwrap_or(0.0);
    assert!(
        errors >= 1.0,
        "no accept error counted with 80 connections and 48 descriptors:\n{metrics}"
    );
    // A spinning accept loop would have counted a huge number of errors.
    assert!(errors < 200.0, "accept loop spun: {errors} errors");
    let (mut ws, _) = ws_connect(&format!("ws://{addr}/echo"), None, None)
        .await
        .expect("served again after descriptors were freed");
    use futures_util::SinkExt;
    ws.send(Message::Text("back".into())).await.unwrap();
    assert_eq!(read_ws_bytes(&mut ws, 4).await, b"back");
    signal(&child, "-TERM");
    while ws.next().await.is_some() {}
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// CPU time (user + system, in clock ticks) the process has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[tokio::test]
async fn sip_listener_backs_off_when_out_of_file_descriptors() {
    // The SIP route's core-facing listener shares the accept helper: with
    // its descriptors exhausted by connections from the core's address it
    // must not spin (it did: a whole core busy with `ulimit -n 128`).
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit not available; skipping");
        return;
    }
    use common::sip::{config, core_message, next_text, register, Core};
    use tokio::io::AsyncWriteExt;
    let dir = common::tls::TempDir::new("sip-emfile");
    let core = Core::start().await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        config(core.addr)
    );
    let (mut child, addr, admin) =
        spawn_gateway_with(&cfg, dir.path(), &["prlimit", "--nofile=48:48", "--"]);
    let _guard = KillOnDrop(child.id());
    wait_ready(admin).await;
    let (mut ws, _) = ws_connect(&format!("ws://{addr}/sip"), None, Some("sip"))
        .await
        .unwrap();
    let (path, sip_port) = register(&mut ws, &core).await;
    let mut hogs = Vec::new();
    for _ in 0..80 {
        if let Ok(s) = tokio::net::TcpStream::connect(sip_port).await {
            hogs.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = cpu_ticks(child.id());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = cpu_ticks(child.id()) - before;
    // A loop retrying at once uses about 100 ticks a second.
    assert!(
        used < 30,
        "{used} ticks of CPU in 1 s while out of descriptors"
    );
    drop(hogs);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let metrics = http_get(admin, "/metrics").await.1;
    let errors = metric_value(
        &metrics,
        "ucgate_accept_errors_total",
        &[("listener", "sip:/sip")],
    )
    .unwrap_or(0.0);
    assert!(
        (1.0..50.0).contains(&errors),
        "{errors} accept errors counted on the SIP listener:\n{metrics}"
    );
    // Serving again: a connection from the core reaches the client.
    let mut s = tokio::net::TcpStream::connect(sip_port).await.unwrap();
    s.write_all(core_message(&core, &path, 1).as_bytes())
        .await
        .unwrap();
    assert!(next_text(&mut ws).await.starts_with("MESSAGE "));
    signal(&child, "-TERM");
    while ws.next().await.is_some() {}
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sighup_reloads_certificates_in_the_running_binary() {
    use common::tls::*;
    let dir = TempDir::new("hup");
    let old = write_cert(dir.path(), "a", &["localhost"]);
    let echo = echo_backend().await;
    let cfg = format!(
        "{}[admin]\nlisten = \"127.0.0.1:0\"\n{}",
        tls_section(dir.path(), &["a"]),
        tunnel_route("/echo", echo, "")
    );
    let (mut child, addr, admin) = spawn_gateway(&cfg, dir.path());
    let _guard = KillOnDrop(child.id());
    wait_ready(admin).await;
    let presented = || async {
        let (cfg, rec) = recording_client(&[b"http/1.1"]);
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio_rustls::TlsConnector::from(cfg)
            .connect(
                rustls::pki_types::ServerName::try_from("localhost").unwrap(),
                tcp,
            )
            .await
            .unwrap();
        let der = rec.seen.lock().unwrap().clone().unwrap();
        der.to_vec()
    };
    assert_eq!(presented().await, old.to_vec());
    let new = write_cert(dir.path(), "a", &["localhost"]);
    signal(&child, "-HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        let m = http_get(admin, "/metrics").await.1;
        if metric_value(&m, "ucgate_tls_reloads_total", &[("result", "ok")]) == Some(1.0) {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reloaded, "SIGHUP did not reload");
    assert_eq!(presented().await, new.to_vec());
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the gateway"
    );
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn completions_and_manual_pages_come_from_the_command_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(bin())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["check-config", "completions", "log-format"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let page = |args: &[&str]| {
        let out = Command::new(bin())
            .arg("manpage")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, main) = page(&[]);
    assert_eq!(code, Some(0));
    assert!(main.contains(".TH ucgate 1"), "{main}");
    assert!(main.contains("check\\-config"), "{main}");
    let (code, sub) = page(&["check-config"]);
    assert_eq!(code, Some(0));
    assert!(sub.contains(".TH ucgate-check-config 1"), "{sub}");
    assert_eq!(page(&["nope"]).0, Some(2));
}

/// Human logs carry colour codes only on a terminal: piped (as under
/// systemd or a log collector) they are plain text.
#[test]
fn human_logs_on_a_pipe_have_no_colour_codes() {
    let dir = common::tls::TempDir::new("nocolour");
    let file = dir.path().join("ucgate.toml");
    std::fs::write(
        &file,
        "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    for no_color in [None, Some("1")] {
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config"])
            .arg(&file)
            .args(["--log-format", "human"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        match no_color {
            Some(v) => cmd.env("NO_COLOR", v),
            None => cmd.env_remove("NO_COLOR"),
        };
        let mut child = cmd.spawn().unwrap();
        let _guard = KillOnDrop(child.id());
        let mut lines =
            std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
        let first = lines.next().unwrap().unwrap();
        assert!(first.contains("ucgate starting"), "{first}");
        assert!(
            !first.contains('\u{1b}'),
            "colour codes on a pipe: {first:?}"
        );
        signal(&child, "-TERM");
        let _ = child.wait();
    }
}

#[test]
fn a_taken_port_is_named_with_the_key_to_change() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = common::tls::TempDir::new("taken-port");
    for (section, config) in [
        (
            "server",
            format!("[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"),
        ),
        (
            "admin",
            format!("[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:{port}\"\n"),
        ),
    ] {
        let path = dir.0.join(format!("{section}.toml"));
        std::fs::write(
            &path,
            format!(
                "{config}[[route]]\npath = \"/echo\"\nkind = \"tcp\"\nbackend = \"127.0.0.1:7\"\n"
            ),
        )
        .unwrap();
        let out = Command::new(bin())
            .args(["run", "--log-format", "json", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{section}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("port {port} is already in use"))
                && err.contains(&format!("change `listen` in [{section}]")),
            "{section}: {err}"
        );
    }
}

/// The fenced block of `doc` that follows `opening` (its first line).
fn block_after<'d>(doc: &'d str, opening: &str) -> &'d str {
    let start = doc
        .find(opening)
        .unwrap_or_else(|| panic!("docs/config.md lacks {opening:?}"))
        + opening.len();
    &doc[start..start + doc[start..].find("```").unwrap()]
}

#[test]
fn the_check_config_outputs_in_docs_config_md_are_the_binarys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/config.md")).unwrap();
    let out = Command::new(bin())
        .args(["check-config", "config/ucgate.example.toml"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        block_after(
            &doc,
            "```console\n$ ucgate check-config config/ucgate.example.toml\n"
        ),
        String::from_utf8_lossy(&out.stdout)
    );
    let dir = fixtures().join("docs");
    let bad = std::fs::read_to_string(dir.join("bad.toml")).unwrap();
    assert_eq!(block_after(&doc, "For this `bad.toml`:\n\n```toml\n"), bad);
    let out = Command::new(bin())
        .args(["check-config", "bad.toml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        block_after(&doc, "```console\n$ ucgate check-config bad.toml\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The runtime's worker threads of a running gateway (Tokio names them
/// `tokio-rt-worker`).
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "tokio-rt-worker")
        .count()
}

#[tokio::test]
async fn server_worker_threads_sets_the_runtime_threads() {
    let dir = common::tls::TempDir::new("cli-workers");
    for (setting, want) in [("worker_threads = 1\n", 1), ("worker_threads = 3\n", 3)] {
        let cfg = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{setting}[admin]\nlisten = \"127.0.0.1:0\"\n"
        );
        let (child, _, admin) = spawn_gateway(&cfg, dir.path());
        let _guard = KillOnDrop(child.id());
        wait_ready(admin).await;
        assert_eq!(worker_threads(child.id()), want, "{setting}");
    }
}
