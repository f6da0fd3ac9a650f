// End-to-end: XMPP over WebSocket (RFC 7395) with @xmpp/client through the
// ucgate binary to a real Prosody over TCP. Prosody requires encryption on
// c2s and the clients speak plain ws:// to the gateway, so every successful
// login proves the gateway's STARTTLS (verified against the test CA).
//
//   UCGATE_BIN=/path/to/ucgate npm test      (default: <repo>/target/debug/ucgate)
//
// Needs Debian's prosody (scripts/install-deps). See lib/prosody.mjs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Parser } from '@xmpp/xml';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, metricValue, scrapeMetrics, sleep, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { ensureWebSocket, expectLoginFailure, login, makeClient, sendChat } from '../lib/xmpp.mjs';

const ROUTE = '/xmpp-websocket';
const REL_WEBSOCKET = 'urn:xmpp:alt-connections:websocket';
const NS_XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';
const NS_STREAMS = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

function gatewayConfig({ port, adminPort, prosodyPort, caFile }) {
  const domain = (name) => `
[xmpp.domains.${toml(name)}]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
  return `# written by e2e/tests/xmpp-websocket.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "xmpp-websocket"

[xmpp]
websocket_url = ${toml(`ws://127.0.0.1:${port}${ROUTE}`)}
${domain('localhost')}${domain('example.test')}`;
}

/** Parse an XRD document with xmpp.js's XML parser: { root, links: [{rel, href, ...}] }. */
function parseXrd(text) {
  const parser = new Parser();
  let root = null;
  let ended = false;
  const children = [];
  const errors = [];
  parser.on('start', (el) => {
    root = el;
  });
  parser.on('element', (el) => children.push(el));
  parser.on('end', () => {
    ended = true;
  });
  parser.on('error', (e) => errors.push(e));
  parser.write(text.replace(/^\s*<\?xml[^?]*\?>/, ''));
  assert.deepEqual(errors, [], `XRD does not parse: ${text}`);
  assert.ok(root && ended, `XRD is not a complete document: ${text}`);
  return { root, links: children.filter((c) => c.name === 'Link').map((c) => c.attrs) };
}

describe(`XMPP over WebSocket through ucgate to Prosody (${UCGATE_BIN})`, { timeout: 240_000 }, () => {
  const env = { teardown: [], failed: false };
  const clients = [];

  before(async () => {
    try {
      await setup();
    } catch (e) {
      env.failed = true; // teardown prints the logs
      throw e;
    }
  }, { timeout: 90_000 });

  async function setup() {
    env.wsImpl = await ensureWebSocket();
    env.dir = makeTempDir('ucgate-e2e-xmpp-');
    env.teardown.push(() => {
      if (env.failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${env.dir}`);
      else fs.rmSync(env.dir, { recursive: true, force: true });
    });
    env.prosody = await startProsody();
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-80).join('\n')}`);
      await env.prosody.stop();
    });
    [env.port, env.adminPort] = await freePorts(2);
    env.gateway = await startGateway({
      dir: env.dir,
      adminPort: env.adminPort,
      config: gatewayConfig({
        port: env.port,
        adminPort: env.adminPort,
        prosodyPort: env.prosody.port,
        caFile: env.prosody.caFile,
      }),
    });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] gateway log (tail):\n${env.gateway.log().split('\n').slice(-80).join('\n')}`);
      await env.gateway.close();
    });
    env.service = `ws://127.0.0.1:${env.port}${ROUTE}`;
    env.domain = env.prosody.domain; // "localhost"
  }

  after(async () => {
    for (const c of clients) await c.stop().catch(() => {});
    const errors = [];
    for (const fn of env.teardown.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step');
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  }, { timeout: 60_000 });

  /**
   * Run a test body `fn(track)`; `track(client)` registers a client that is
   * stopped when the body ends, however it ends. On failure the env is
   * marked so that teardown prints the logs.
   */
  const step = async (fn) => {
    const mine = [];
    const track = (c) => {
      mine.push(c);
      clients.push(c);
      return c;
    };
    try {
      await env.gateway.abortCheck();
      try {
        await fn(track);
      } finally {
        for (const c of mine) await c.stop().catch(() => {});
      }
      await env.gateway.abortCheck(); // the gateway survived whatever the test did
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  const user = (name, extra = {}) => ({
    service: env.service,
    domain: env.domain,
    username: env.prosody.users[name].username,
    password: env.prosody.users[name].password,
    ...extra,
  });

  /** Poll the route's active-connection gauge until it is `want` (5 s). */
  async function expectActiveConnections(want) {
    const deadline = Date.now() + 5_000;
    let value;
    for (;;) {
      const { samples } = await scrapeMetrics(env.adminPort);
      value = metricValue(samples, 'ucgate_route_connections_active', { route: ROUTE });
      if (value === want || (want === 0 && value === undefined)) return;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    assert.fail(`ucgate_route_connections_active{route="${ROUTE}"} is ${value}, expected ${want}`);
  }

  it('serves XEP-0156 host-meta (XRD and JRD) advertising the WebSocket URL to any origin', async () => {
    await step(async () => {
      const wsUrl = `ws://127.0.0.1:${env.port}${ROUTE}`;

      const xrdRes = await fetch(`http://127.0.0.1:${env.port}/.well-known/host-meta`, {
        headers: { origin: 'https://client.example' },
        signal: AbortSignal.timeout(5_000),
      });
      const xrdText = await xrdRes.text();
      assert.equal(xrdRes.status, 200, xrdText);
      assert.equal(xrdRes.headers.get('access-control-allow-origin'), '*');
      assert.match(xrdRes.headers.get('content-type') ?? '', /xml/);
      const xrd = parseXrd(xrdText);
      assert.equal(xrd.root.name, 'XRD');
      assert.equal(xrd.root.attrs.xmlns, NS_XRD);
      const xrdWs = xrd.links.filter((l) => l.rel === REL_WEBSOCKET);
      assert.equal(xrdWs.length, 1, xrdText);
      assert.equal(xrdWs[0].href, wsUrl);

      const jrdRes = await fetch(`http://127.0.0.1:${env.port}/.well-known/host-meta.json`, {
        headers: { origin: 'https://client.example' },
        signal: AbortSignal.timeout(5_000),
      });
      const jrdText = await jrdRes.text();
      assert.equal(jrdRes.status, 200, jrdText);
      assert.equal(jrdRes.headers.get('access-control-allow-origin'), '*');
      assert.match(jrdRes.headers.get('content-type') ?? '', /json/);
      const jrd = JSON.parse(jrdText);
      assert.ok(Array.isArray(jrd.links), jrdText);
      const jrdWs = jrd.links.filter((l) => l.rel === REL_WEBSOCKET);
      assert.equal(jrdWs.length, 1, jrdText);
      assert.equal(jrdWs[0].href, wsUrl);
    });
  });

  it('alice and bob log in over ws://, exchange messages both ways and disconnect cleanly', async () => {
    await step(async (track) => {
      const a = track(makeClient(user('alice', { resource: 'ws-a' })));
      const features = [];
      a.xmpp.on('nonza', (el) => {
        if (el.is('features', NS_STREAMS)) features.push(el);
      });
      await a.start();
      const b = track(await login(user('bob', { resource: 'ws-b' })));

      assert.equal(a.xmpp.jid.toString(), `alice@${env.domain}/ws-a`);
      assert.equal(b.xmpp.jid.toString(), `bob@${env.domain}/ws-b`);
      // RFC 7395 §3.4: no STARTTLS over WebSocket; the gateway did it.
      assert.ok(features.length >= 2, `stream features seen: ${features.map(String).join('\n')}`);
      for (const f of features) {
        assert.equal(f.getChild('starttls', NS_TLS), undefined, `starttls offered over WebSocket: ${f}`);
      }
      await expectActiveConnections(2);

      const ab = await sendChat(a, b, 'hello bob, from alice through ucgate');
      assert.equal(ab.received.getChildText('body'), 'hello bob, from alice through ucgate');
      assert.equal(ab.received.attrs.from, `alice@${env.domain}/ws-a`);
      assert.equal(ab.received.attrs.to, `bob@${env.domain}/ws-b`);
      assert.equal(ab.received.attrs.type, 'chat');

      const body = 'héllo alice ✓ <&> "quotes" from bob through ucgate';
      const ba = await sendChat(b, a, body);
      assert.equal(ba.received.getChildText('body'), body);
      assert.equal(ba.received.attrs.from, `bob@${env.domain}/ws-b`);
      assert.equal(ba.received.attrs.to, `alice@${env.domain}/ws-a`);
      assert.equal(ba.received.attrs.type, 'chat');

      // A larger message (about 40 KB) arrives whole, as one stanza.
      const big = 'x'.repeat(40_000);
      const abBig = await sendChat(a, b, big);
      assert.equal(abBig.received.getChildText('body'), big);

      // Clean disconnect: <close/> both ways, then the WebSocket close.
      await withTimeout(a.xmpp.stop(), 10_000, 'alice xmpp.stop()');
      await withTimeout(b.xmpp.stop(), 10_000, 'bob xmpp.stop()');
      assert.equal(a.xmpp.status, 'offline');
      assert.equal(b.xmpp.status, 'offline');
      assert.deepEqual(a.errors.map(String), []);
      assert.deepEqual(b.errors.map(String), []);
      await expectActiveConnections(0);
    });
  });

  it('a wrong password gives the SASL failure not-authorized, and the gateway keeps serving', async () => {
    await step(async (track) => {
      const { error, client } = await expectLoginFailure(user('alice', { password: 'not-the-password' }));
      assert.equal(error.name, 'SASLError', `${error.stack}`);
      assert.equal(error.condition, 'not-authorized');
      assert.ok(
        client.errors.some((e) => e.name === 'SASLError' && e.condition === 'not-authorized'),
        `error events: ${client.errors.map(String).join(', ')}`,
      );

      // A good login afterwards works.
      const b = track(await login(user('bob')));
      assert.equal(b.xmpp.jid.bare().toString(), `bob@${env.domain}`);
      await withTimeout(b.xmpp.stop(), 10_000, 'bob xmpp.stop()');
      await expectActiveConnections(0);
    });
  });

  it('an unknown domain gives the stream error host-unknown', async () => {
    await step(async () => {
      const { error, client } = await expectLoginFailure({
        service: env.service,
        domain: 'nope.example',
        username: 'alice',
        password: env.prosody.users.alice.password,
      });
      assert.equal(error.name, 'StreamError', `${error.stack}`);
      assert.equal(error.condition, 'host-unknown');
      assert.ok(client.errors.some((e) => e.condition === 'host-unknown'));
      await expectActiveConnections(0);
    });
  });

  it('the <open to="…"/> domain selects the server: example.test is a second configured domain', async () => {
    await step(async (track) => {
      const a = track(await login(user('alice', { domain: 'example.test' })));
      assert.equal(a.xmpp.jid.bare().toString(), 'alice@example.test');
      await withTimeout(a.xmpp.stop(), 10_000, 'alice xmpp.stop()');
      await expectActiveConnections(0);
    });
  });

  it("Prosody's certificate checked for another name: the gateway's log says who, what was expected, what was seen, and the key to change", async () => {
    await step(async () => {
      // A second gateway whose example.test expects a name Prosody's
      // certificate does not carry.
      const dir = makeTempDir('ucgate-e2e-xmpp-name-');
      const [port, adminPort] = await freePorts(2);
      const config = `[server]
listen = ${toml(`127.0.0.1:${port}`)}
[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}
[[route]]
path = ${toml(ROUTE)}
kind = "xmpp-websocket"
[xmpp.domains."example.test"]
address = ${toml(`127.0.0.1:${env.prosody.port}`)}
tls = "starttls"
ca_file = ${toml(env.prosody.caFile)}
server_name = "wrong.example"
`;
      const gw = await startGateway({ dir, adminPort, config });
      try {
        const ws = new WebSocket(`ws://127.0.0.1:${port}${ROUTE}`, 'xmpp');
        const closed = new Promise((resolve) => {
          ws.onclose = resolve;
          ws.onerror = resolve;
        });
        await withTimeout(new Promise((resolve, reject) => {
          ws.onopen = resolve;
          ws.onerror = reject;
        }), 10_000, 'WebSocket open');
        ws.send(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' version='1.0'/>`);
        const want = `the XMPP server for domain \`example.test\` at 127.0.0.1:${env.prosody.port} presented a certificate for `;
        const deadline = Date.now() + 15_000;
        let line;
        while (!(line = gw.log().split('\n').find((l) => l.includes(want)))) {
          if (Date.now() > deadline) assert.fail(`no explained TLS failure in the log:\n${gw.log()}`);
          await sleep(100);
        }
        assert.match(line, /WARN/);
        assert.ok(line.includes('`localhost`'), line);
        assert.ok(line.includes("but `wrong.example` was expected; set `xmpp.domains.\"example.test\".server_name` to a name in its certificate"), line);
        assert.match(line, /error=.*certificate not valid for name "wrong\.example"/);
        ws.close();
        await withTimeout(closed, 10_000, 'WebSocket close');
      } finally {
        await gw.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
