//! A gateway for the bench crate's tests, in process.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ucgate::{Config, Control, Listeners, Phase};

/// A running gateway.
pub struct Gateway {
    pub addr: SocketAddr,
    control: Control,
}

impl Gateway {
    /// Starts a gateway from TOML text (without `[server]`: plain HTTP on
    /// 127.0.0.1:0; with it, as given).
    pub async fn start(toml: &str) -> Gateway {
        let mut text = toml.to_string();
        if !text.contains("[server]") {
            text = format!("[server]\nlisten = \"127.0.0.1:0\"\n{text}");
        }
        text.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
        let config = Config::parse(&text, "test.toml", Path::new("."))
            .unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.main_addr();
        let control = Control::new();
        let mut phase = control.phase();
        tokio::spawn(ucgate::run(config, listeners, control.clone()));
        tokio::time::timeout(
            Duration::from_secs(10),
            phase.wait_for(|p| *p == Phase::Running),
        )
        .await
        .expect("gateway running in time")
        .expect("phase channel");
        Gateway { addr, control }
    }

    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.control.shutdown.cancel();
    }
}
