-- Prosody (Debian's 0.12) behind ucgate: what matters is c2s with
-- encryption required (ucgate does STARTTLS toward it, as a native client
-- would) and the VirtualHost's certificate (the one ucgate's `ca_file`
-- trusts). No mod_bosh, no mod_websocket, no HTTP listener: ucgate serves
-- BOSH and XMPP over WebSocket itself. s2s stays as in any federated server.
--
-- ucgate's side (ucgate.toml):
--   [xmpp.domains."chat.example.com"]
--   address = "127.0.0.1:5222"
--   tls = "starttls"
--   ca_file = "/etc/ucgate/prosody-ca.crt"   -- the CA of the certificate below
--
-- Replace @DOMAIN@ with the XMPP domain, @CERT_FILE@/@KEY_FILE@ with its
-- certificate chain and key, @C2S_PORT@ with 5222 and @S2S_PORT@ with 5269.
-- This very file is what e2e/tests/ejabberd.test.mjs runs
-- (startProsody({ pairing: true }) in e2e/lib/prosody.mjs, free loopback
-- ports; the harness puts its pidfile, data and log paths in front of it).

-- ucgate connects from its own host: c2s on loopback only.
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_direct_tls_ports = {}
s2s_ports = { @S2S_PORT@ }
http_ports = {}
https_ports = {}

modules_enabled = {
  "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "posix";
  "blocklist"; -- XEP-0191: Converse.js waits for it before opening a chat
}
modules_disabled = { "offline"; }

-- Every client login must go through TLS: for ucgate, its STARTTLS.
c2s_require_encryption = true
s2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"

VirtualHost "@DOMAIN@"
  ssl = { certificate = "@CERT_FILE@"; key = "@KEY_FILE@"; }
