//! The Debian package's configuration and unit (packaging/) agree with the
//! binary and with each other. scripts/test-deb installs and runs them; this
//! catches a drift at `cargo test` time.

use std::path::{Path, PathBuf};
use std::time::Duration;

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

/// The unit's `KEY=value` lines of `[Service]`, in order.
fn service_keys() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(packaging("ucgate.service")).unwrap();
    let mut in_service = false;
    let mut keys = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.starts_with('#') {
            if let Some((k, v)) = line.split_once('=') {
                keys.push((k.to_string(), v.to_string()));
            }
        }
    }
    keys
}

fn key(keys: &[(String, String)], name: &str) -> String {
    keys.iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("the unit has no {name}="))
        .1
        .clone()
}

#[test]
fn the_packaged_config_loads_and_stays_on_loopback() {
    let c = ucgate::Config::load(&packaging("ucgate.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.server.listen.ip().is_loopback(), "{}", c.server.listen);
    assert!(c.admin.listen.ip().is_loopback(), "{}", c.admin.listen);
    assert!(!c.routes.is_empty());
    for (domain, d) in &c.xmpp.domains {
        let (host, _) = d.address.as_ref().expect("a fixed address, not DNS");
        let ip: std::net::IpAddr = host.parse().expect("an IP literal");
        assert!(ip.is_loopback(), "{domain}: {host}");
    }
}

#[test]
fn the_unit_runs_the_packaged_config_and_outlasts_its_drain() {
    let keys = service_keys();
    let c = ucgate::Config::load(&packaging("ucgate.toml")).unwrap();
    assert_eq!(key(&keys, "Type"), "notify");
    assert_eq!(
        key(&keys, "ExecStart"),
        "/usr/bin/ucgate run --config /etc/ucgate/ucgate.toml"
    );
    assert_eq!(key(&keys, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(key(&keys, "User"), "ucgate");
    let stop = key(&keys, "TimeoutStopSec");
    let stop = Duration::from_secs(
        stop.strip_suffix('s')
            .unwrap_or(&stop)
            .parse()
            .expect("TimeoutStopSec in seconds"),
    );
    assert!(
        stop > c.server.shutdown_delay + c.server.drain_timeout,
        "TimeoutStopSec {stop:?} would cut the drain"
    );
    let nofile: usize = key(&keys, "LimitNOFILE").parse().unwrap();
    assert!(
        nofile >= 2 * c.server.max_connections + 1024,
        "LimitNOFILE {nofile} is short of two descriptors per connection"
    );
}
