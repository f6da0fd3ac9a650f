-- Prosody for scripts/bench (template: scripts/bench replaces @@DIR@@,
-- @@C2S_PORT@@, @@HTTP_PORT@@ and @@DOMAIN@@ and runs `prosody -F --config
-- FILE` in the foreground, stopped by its PID; the system service is not used).
--
-- One private Prosody (Debian's 0.12) serves all three ways in that the
-- XMPP section compares, on loopback and in plain text:
--   * c2s over plain TCP (the baseline, and the server behind ucgate's
--     xmpp-websocket and bosh routes, which use tls = "none" toward it);
--   * its own mod_websocket  (ws://127.0.0.1:HTTP_PORT/xmpp-websocket);
--   * its own mod_bosh        (http://127.0.0.1:HTTP_PORT/http-bind).
-- No TLS anywhere (mod_tls is not loaded), so every path does the same XML
-- and SASL work and the comparison is about the transport alone.
--
-- Benchmark-specific settings, on purpose:
--   * c2s_require_encryption = false and allow_unencrypted_plain_auth = true:
--     SASL PLAIN over plain loopback TCP;
--   * consider_websocket_secure / consider_bosh_secure: the HTTP endpoints
--     count as secure, so SASL PLAIN is offered there too;
--   * no rate limits: mod_limits is NOT loaded, so `limits` below (which
--     would otherwise throttle c2s to the Debian example's 10kb/s) has no
--     effect; it is written out only to make the intent explicit;
--   * listen backlog 4096 (network_settings.tcp_backlog; default 128), as
--     ucgate's, so that thousands of connections opened at once for the idle
--     memory test are not dropped and retried by the kernel;
--   * logging at "warn" only (Prosody logs every connection at "info");
--   * no offline storage, no MAM, no carbons: a message to oneself goes
--     straight back to the sending session.
run_as_root = true
pidfile = "@@DIR@@/prosody.pid"
data_path = "@@DIR@@/data"
certificates = "@@DIR@@/certs" -- an empty directory: no TLS
plugin_paths = {}
log = { { levels = { min = "warn" }, to = "file", filename = "@@DIR@@/prosody.log" } }

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { @@C2S_PORT@@ }
c2s_direct_tls_ports = {}
s2s_ports = {}
s2s_direct_tls_ports = {}
http_interfaces = { "127.0.0.1" }
http_ports = { @@HTTP_PORT@@ }
https_ports = {}
component_ports = {}
http_default_host = "@@DOMAIN@@"

modules_enabled = {
  "roster"; "saslauth"; "disco"; "ping"; "posix"; "presence"; "message"; "iq";
  "websocket"; "bosh";
}
modules_disabled = { "s2s"; "offline"; "tls"; "limits"; "c2s_limits"; }

network_settings = { tcp_backlog = 4096; }

limits = { c2s = { rate = "1000mb/s" }; }

c2s_require_encryption = false
allow_unencrypted_plain_auth = true
consider_websocket_secure = true
consider_bosh_secure = true
-- ucgate's BOSH route and Prosody's mod_bosh are both asked for wait=60.
bosh_max_inactivity = 60

allow_registration = false
authentication = "internal_hashed"
storage = "internal"

VirtualHost "@@DOMAIN@@"
