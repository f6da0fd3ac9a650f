// End-to-end: SIP over WebSocket (RFC 7118) through ucgate to a private
// Kamailio over **TLS** (lib/kamailio.mjs `tls: true`: a test CA, a server
// certificate for localhost / 127.0.0.1, `-A WITH_TLS`). The gateway's route
// has `core = "sip:127.0.0.1:TLSPORT;transport=tls"`, verifies Kamailio's
// certificate (`core_server_name = "localhost"`, `core_ca_file` = the test
// CA) and answers the TLS connections Kamailio opens to its SIP port with
// `[sip] tls_cert`/`tls_key` (a second, self-signed certificate, which
// Kamailio does not verify); its public listener stays plain ws://.
//
// JsSIP and SIP.js users register, MESSAGE and call both ways; the Path and
// Record-Route say `transport=tls`, Kamailio's log shows every request from
// the gateway on `tls:` and every relay toward a WebSocket user to a
// `transport=tls` URI; the SIP metrics count the connections both ways. A
// second gateway whose `core_ca_file` does not match answers REGISTER 503.
//
// SKIPPED (with the reason) while `$UCGATE_BIN check-config` rejects the
// TLS route.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkConfig, startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeCert, makeTempDir, metricValue, scrapeMetrics, sleep, withTimeout } from '../lib/harness.mjs';
import { makeSipTestCA, startKamailio } from '../lib/kamailio.mjs';
import { callAndHangUp, messageBothWays, startAgents } from '../lib/sip-flows.mjs';
import { ensureWebSocket, rawWsClient, startJssip } from '../lib/sipua.mjs';

const ROUTE = '/sip';
const FLOW_TOKEN_KEY = 'ucgate e2e flow token key (TLS core)';

function gatewayConfig({ port, adminPort, tlsPort, caFile, certFile, keyFile }) {
  return `# written by e2e/tests/sip-tls.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "sip-websocket"
core = ${toml(`sip:127.0.0.1:${tlsPort};transport=tls`)}
core_server_name = "localhost"
core_ca_file = ${toml(caFile)}

[sip]
flow_token_key = ${toml(FLOW_TOKEN_KEY)}
tls_cert = ${toml(certFile)}
tls_key = ${toml(keyFile)}
`;
}

/** Why the suite must be skipped (the gateway rejects the config), or null. */
async function unsupportedReason() {
  if (!fs.existsSync(UCGATE_BIN)) return `gateway binary ${UCGATE_BIN} not found (cargo build)`;
  const dir = makeTempDir('ucgate-e2e-sip-tls-check-');
  try {
    const file = path.join(dir, 'ucgate.toml');
    const [port, adminPort, tlsPort] = await freePorts(3);
    const { caFile } = await makeSipTestCA(path.join(dir, 'ca'));
    const { cert, key } = await makeCert(dir);
    fs.writeFileSync(file, gatewayConfig({ port, adminPort, tlsPort, caFile, certFile: cert, keyFile: key }));
    const out = await checkConfig(file);
    if (out.startsWith('exit 0\n')) return null;
    return `ucgate does not accept a sip-websocket route with a TLS core (check-config: ${out.replace(/\s+/g, ' ').trim().slice(0, 300)})`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SKIP = await unsupportedReason();
if (SKIP) console.error(`[e2e] sip-tls: SKIPPED: ${SKIP}`);

/** Path header URI from a REGISTER 200: { token, hostport, params }. */
function pathOf(reply) {
  const value = reply.headerAll('path').join(',');
  const m = /<sip:([^@>]+)@([^;>]+)([^>]*)>/.exec(value);
  assert.ok(m, `REGISTER 200 carries the gateway's Path with a flow token: ${reply.headers.map((h) => h.join(': ')).join(' | ')}`);
  return { token: m[1], hostport: m[2], params: m[3] };
}

/** Wait until `metricValue(...)` satisfies `ok`, for at most `ms`; returns the last samples. */
async function waitMetric(adminPort, name, labels, ok, ms = 5_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const { samples, text } = await scrapeMetrics(adminPort);
    const v = metricValue(samples, name, labels);
    if (ok(v)) return v;
    if (Date.now() > deadline) {
      const lines = text.split('\n').filter((l) => l.startsWith('ucgate_sip_')).join('\n');
      assert.fail(`${name}${JSON.stringify(labels)} = ${v}, not as expected, after ${ms} ms:\n${lines}`);
    }
    await sleep(100);
  }
}

describe(`SIP over WebSocket through ucgate to Kamailio over TLS (${UCGATE_BIN})`, { skip: SKIP ?? false, timeout: 180_000 }, () => {
  const env = { teardown: [], failed: false };
  const cleanup = [];

  before(async () => {
    try {
      await ensureWebSocket();
      env.dir = makeTempDir('ucgate-e2e-sip-tls-');
      env.teardown.push(() => {
        if (env.failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${env.dir}`);
        else fs.rmSync(env.dir, { recursive: true, force: true });
      });
      env.kam = await startKamailio({ tls: true });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] kamailio log (tail):\n${env.kam.log().split('\n').slice(-150).join('\n')}`);
        await env.kam.stop();
      });
      // The gateway's own certificate for the TLS connections Kamailio opens
      // to its SIP port (self-signed; Kamailio does not verify it).
      const gwCertDir = path.join(env.dir, 'gw-cert');
      fs.mkdirSync(gwCertDir);
      env.gwCert = await makeCert(gwCertDir);
      [env.port, env.adminPort] = await freePorts(2);
      const gwDir = path.join(env.dir, 'gw');
      fs.mkdirSync(gwDir);
      env.gateway = await startGateway({
        dir: gwDir,
        adminPort: env.adminPort,
        config: gatewayConfig({
          port: env.port,
          adminPort: env.adminPort,
          tlsPort: env.kam.tlsPort,
          caFile: env.kam.caFile,
          certFile: env.gwCert.cert,
          keyFile: env.gwCert.key,
        }),
      });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] gateway log (tail):\n${env.gateway.log().split('\n').slice(-120).join('\n')}`);
        await env.gateway.close();
      });
      env.wsUrl = `ws://127.0.0.1:${env.port}${ROUTE}`;
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 60_000 });

  after(async () => {
    for (const f of cleanup.reverse()) await withTimeout(Promise.resolve().then(f), 10_000, 'client close').catch(() => {});
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  });

  const step = (name, fn) =>
    it(name, { timeout: 60_000 }, async () => {
      try {
        if (env.gateway) await env.gateway.abortCheck();
        await fn();
        if (env.gateway) await env.gateway.abortCheck();
      } catch (e) {
        env.failed = true;
        throw e;
      }
    });

  step('a raw WS client registers over plain ws://: 200 with the gateway Path (transport=tls), REGISTER reached Kamailio over TLS', async () => {
    const before = env.kam.log().length;
    const c = await rawWsClient(env.wsUrl);
    cleanup.push(async () => c.close());
    assert.equal(c.protocol, 'sip');
    const reg = await c.register('raw-tls', '127.0.0.1');
    assert.equal(reg.status, 200, reg.startLine);
    const p = pathOf(reg);
    assert.match(p.params, /;transport=tls\b/i, `Path names the TLS transport: ${p.params}`);
    assert.match(p.params, /;lr\b/, 'Path is loose-routing');
    const log = env.kam.log().slice(before);
    assert.match(log, /REQ REGISTER sip:127\.0\.0\.1 from tls:127\.0\.0\.1:/, `Kamailio got the REGISTER over TLS:\n${log.slice(-3000)}`);
    c.close();
  });

  step('JsSIP: alice and bob register, MESSAGE both ways, call and BYE both ways; Kamailio relays to them over TLS', async () => {
    const before = env.kam.log().length;
    const { alice, bob } = await startAgents(env.wsUrl, { alice: 'jssip', bob: 'jssip' }, cleanup);
    await messageBothWays(alice, bob, 'jssip/tls');
    const { incoming } = await callAndHangUp(alice, bob, { hangupBy: 'caller' });
    // bob's route set: the gateway's WS-facing and TLS core-facing entries,
    // Kamailio's TLS Record-Route, and alice's side of the gateway again.
    const rr = incoming.request.getHeaders('Record-Route').join(', ');
    assert.match(rr, /transport=wss?/i, `Record-Route toward the WS client: ${rr}`);
    assert.match(rr, new RegExp(`<sip:127\\.0\\.0\\.1:${env.kam.tlsPort};transport=tls;lr`, 'i'), `Kamailio's Record-Route names its TLS listener: ${rr}`);
    assert.ok((rr.match(/transport=tls/gi) ?? []).length >= 3, `gateway and Kamailio Record-Routes over TLS: ${rr}`);
    await callAndHangUp(bob, alice, { hangupBy: 'callee' });

    const log = env.kam.log().slice(before);
    const from = [...log.matchAll(/REQ (\S+) \S+ from (\w+):/g)];
    assert.ok(from.length >= 10, `Kamailio saw the requests:\n${log.slice(-3000)}`);
    for (const [line, , proto] of from) assert.equal(proto, 'tls', `every request from the gateway arrives over TLS: ${line}`);
    for (const method of ['REGISTER', 'MESSAGE', 'INVITE', 'ACK', 'BYE']) {
      assert.match(log, new RegExp(`REQ ${method} \\S+ from tls:`), `${method} reached Kamailio over TLS`);
    }
    // Initial requests toward WS users follow the Path; in-dialog ones (ACK,
    // BYE) follow the Record-Route by loose_route(): both to a transport=tls URI.
    const relays = [...log.matchAll(/RELAY (\S+) (\S+) via (\S+)/g)];
    for (const method of ['MESSAGE', 'INVITE', 'ACK', 'BYE']) {
      const rs = relays.filter((r) => r[1] === method);
      assert.ok(rs.length >= 2, `Kamailio relayed ${method} both ways:\n${relays.map((r) => r[0]).join('\n')}`);
      for (const r of rs) assert.match(r[3], /;transport=tls/i, `${method} relayed toward ucgate over TLS: ${r[0]}`);
    }
  });

  step('SIP.js: carol registers, MESSAGE and calls both ways with a JsSIP peer', async () => {
    const { carol, dave } = await startAgents(env.wsUrl, { carol: 'sipjs', dave: 'jssip' }, cleanup);
    await messageBothWays(carol, dave, 'sipjs/tls');
    await callAndHangUp(carol, dave, { hangupBy: 'caller' });
    await callAndHangUp(dave, carol, { hangupBy: 'callee' });
  });

  step('metrics: the gateway opened its TLS connection to the core, Kamailio opened its own to the gateway', async () => {
    const labels = { route: ROUTE };
    await waitMetric(env.adminPort, 'ucgate_sip_core_connects_total', { ...labels, result: 'ok' }, (v) => v >= 1);
    const errors = metricValue((await scrapeMetrics(env.adminPort)).samples, 'ucgate_sip_core_connects_total', { ...labels, result: 'error' }) ?? 0;
    assert.equal(errors, 0, 'no failed connection attempt to the core');
    await waitMetric(env.adminPort, 'ucgate_sip_core_connections', { ...labels, opened_by: 'gateway' }, (v) => v === 1);
    // Requests for WebSocket users: Kamailio cannot reuse the gateway's
    // connection (it comes from an ephemeral port, the Path names the
    // gateway's SIP port), so it opens a TLS connection there.
    await waitMetric(env.adminPort, 'ucgate_sip_core_connections', { ...labels, opened_by: 'core' }, (v) => v >= 1);
    const { samples } = await scrapeMetrics(env.adminPort);
    assert.ok(metricValue(samples, 'ucgate_sip_messages_total', { ...labels, from: 'core', type: 'request' }) >= 1, 'requests from the core counted');
  });

  step('a gateway whose core_ca_file does not match Kamailio\'s certificate answers REGISTER with 503', async () => {
    const dir = path.join(env.dir, 'bad-ca');
    const registersBefore = (env.kam.log().match(/REQ REGISTER /g) ?? []).length;
    const other = await makeSipTestCA(path.join(dir, 'ca'), { cn: 'some other CA' });
    const [port, adminPort] = await freePorts(2);
    const gw = await startGateway({
      dir,
      adminPort,
      config: gatewayConfig({ port, adminPort, tlsPort: env.kam.tlsPort, caFile: other.caFile, certFile: env.gwCert.cert, keyFile: env.gwCert.key }),
    });
    try {
      const wsUrl = `ws://127.0.0.1:${port}${ROUTE}`;
      const c = await rawWsClient(wsUrl);
      cleanup.push(async () => c.close());
      const reg = await c.register('untrusted', '127.0.0.1');
      assert.equal(reg.status, 503, `REGISTER through a gateway that cannot verify the core: ${reg.startLine}`);
      c.close();
      // JsSIP sees the same: registrationFailed with the 503.
      const ua = await startJssip({ wsUrl, aor: 'sip:untrusted-jssip@127.0.0.1' });
      cleanup.push(() => ua.close({ unregister: false }));
      await assert.rejects(ua.ready(), /registration failed: .* 503/);
      await ua.close({ unregister: false });
      await waitMetric(adminPort, 'ucgate_sip_core_connects_total', { route: ROUTE, result: 'error' }, (v) => v >= 1);
      const ok = metricValue((await scrapeMetrics(adminPort)).samples, 'ucgate_sip_core_connects_total', { route: ROUTE, result: 'ok' }) ?? 0;
      assert.equal(ok, 0, 'no connection to the core succeeded');
      const registers = (env.kam.log().match(/REQ REGISTER /g) ?? []).length;
      assert.equal(registers, registersBefore, 'no REGISTER reached Kamailio');
      await gw.abortCheck();
    } catch (e) {
      console.error(`[e2e] bad-CA gateway log (tail):\n${gw.log().split('\n').slice(-60).join('\n')}`);
      throw e;
    } finally {
      await gw.close();
    }
  });
});
