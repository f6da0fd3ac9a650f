// End-to-end: a real browser XMPP client. Headless Chromium runs Strophe.js
// (the npm package `strophe.js`, its browser UMD build) in a page whose
// origin is the gateway's own (http://localhost:PORT); Strophe speaks XMPP
// over WebSocket (RFC 7395) to ucgate's `xmpp-websocket` route, and ucgate
// reaches a private Prosody over TCP with STARTTLS (Prosody requires TLS on
// c2s, so every login proves the gateway's STARTTLS, verified against the
// test CA). Bob is an @xmpp/client in node, also through ucgate.
//
//   UCGATE_BIN=/path/to/ucgate npm test      (default: <repo>/target/debug/ucgate)
//
// Needs Debian's prosody and chromium (scripts/install-deps).
//
// The gateway serves no HTML: Playwright fulfils
//   http://localhost:PORT/e2e/chat.html   (the page below)
//   http://localhost:PORT/e2e/strophe.js  (node_modules/strophe.js/dist/strophe.umd.min.js)
// itself, so the page's origin is the gateway's and the route keeps its
// default same-origin policy (the gateway compares Origin with the Host
// header: the page connects to ws://localhost:PORT/..., so they match).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import {
  freePorts,
  launchChromium,
  makeTempDir,
  metricValue,
  scrapeMetrics,
  sleep,
  withTimeout,
} from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { ensureWebSocket, login, xml } from '../lib/xmpp.mjs';

const ROUTE = '/xmpp-websocket';
const STEP_MS = 20_000; // one login / message / disconnect seen by the page
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';

// The browser build Strophe.js ships: a UMD bundle that sets
// globalThis.Strophe (and $msg, $pres, $iq, $build). Resolved through the
// package's own directory, so a layout change fails loudly here.
const require = createRequire(import.meta.url);
const STROPHE_DIR = path.dirname(require.resolve('strophe.js/package.json'));
const STROPHE_FILE = path.join(STROPHE_DIR, 'dist', 'strophe.umd.min.js');
const STROPHE_VERSION = JSON.parse(fs.readFileSync(path.join(STROPHE_DIR, 'package.json'), 'utf8')).version;

function gatewayConfig({ port, adminPort, prosodyPort, caFile }) {
  // No `origins`: the default same-origin policy admits exactly the page's
  // origin, http://localhost:PORT (Host header localhost:PORT, plain HTTP).
  return `# written by e2e/tests/xmpp-browser.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "xmpp-websocket"

[xmpp]
websocket_url = ${toml(`ws://localhost:${port}${ROUTE}`)}

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

// The page: records every WebSocket it opens (URL, subprotocol, close code),
// loads Strophe, and exposes a small driver on window.e2e. Everything the
// test asserts on is read back from window.e2e / window.e2eSockets.
const CHAT_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>ucgate e2e: Strophe.js chat</title>
<script>
(() => {
  const Native = window.WebSocket;
  window.e2eSockets = [];
  window.WebSocket = class RecordingWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), offered: protocols ?? null, protocol: null, events: [], close: null };
      window.e2eSockets.push(rec);
      this.addEventListener('open', () => { rec.events.push('open'); rec.protocol = this.protocol; });
      this.addEventListener('error', () => rec.events.push('error'));
      this.addEventListener('close', (e) => {
        rec.events.push('close');
        rec.close = { code: e.code, reason: e.reason, wasClean: e.wasClean };
      });
    }
  };
})();
</script>
<script src="/e2e/strophe.js"></script>
</head><body>
<h1>Strophe.js through ucgate</h1>
<script>
(() => {
  const S = window.Strophe;
  const RAW_LIMIT = 400;
  const statusName = (s) => Object.keys(S.Status).find((k) => S.Status[k] === s) ?? String(s);
  const e2e = {
    loaded: typeof S?.Connection === 'function',
    statuses: [],  // { status, name, condition, elem, t } per Strophe status change, every connection
    messages: [],  // chat messages received: { from, to, type, id, body }
    raw: [],       // { dir: 'in'|'out', data } Strophe's raw XML traffic (bounded)
    conn: null,
    jid: null,
    connect(service, jid, password) {
      // The ws:// URL makes Strophe pick its WebSocket transport.
      const conn = new S.Connection(service);
      e2e.conn = conn;
      const push = (dir) => (data) => {
        if (e2e.raw.length < RAW_LIMIT) e2e.raw.push({ dir, data: String(data).slice(0, 4000) });
      };
      conn.rawInput = push('in');
      conn.rawOutput = push('out');
      conn.addHandler((msg) => {
        const body = msg.getElementsByTagName('body')[0];
        e2e.messages.push({
          from: msg.getAttribute('from'),
          to: msg.getAttribute('to'),
          type: msg.getAttribute('type'),
          id: msg.getAttribute('id'),
          body: body ? body.textContent : null,
        });
        return true; // keep the handler
      }, null, 'message', 'chat');
      conn.connect(jid, password, (status, condition, elem) => {
        e2e.statuses.push({
          status,
          name: statusName(status),
          condition: condition ?? null,
          elem: elem ? S.serialize(elem) : null,
          t: Date.now(),
        });
        if (status === S.Status.CONNECTED) {
          e2e.jid = conn.jid;
          conn.send(window.$pres().tree()); // available presence
        }
      });
    },
    sendChat(to, body, id) {
      e2e.conn.send(window.$msg({ to, type: 'chat', id }).c('body').t(body).tree());
    },
    disconnect(reason) {
      e2e.conn.disconnect(reason);
    },
  };
  window.e2e = e2e;
})();
</script>
</body></html>
`;

// ---- in-page predicates for page.waitForFunction (self-contained) ----

function pageHasStatus(names) {
  return window.e2e.statuses.some((s) => names.includes(s.name));
}

function pageHasMessage(id) {
  return window.e2e.messages.some((m) => m.id === id);
}

describe(`Strophe.js in Chromium through ucgate to Prosody (${UCGATE_BIN})`, { timeout: 240_000 }, () => {
  const env = { teardown: [], failed: false };
  const clients = [];

  before(async () => {
    try {
      await setup();
    } catch (e) {
      env.failed = true; // teardown prints the logs
      throw e;
    }
  }, { timeout: 120_000 });

  async function setup() {
    assert.ok(fs.existsSync(STROPHE_FILE), `${STROPHE_FILE} missing: npm ci in e2e/`);
    await ensureWebSocket(); // for bob's @xmpp/client on Node 20
    env.dir = makeTempDir('ucgate-e2e-xmpp-browser-');
    env.teardown.push(() => {
      if (env.failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${env.dir}`);
      else fs.rmSync(env.dir, { recursive: true, force: true });
    });
    env.prosody = await startProsody({ domains: ['localhost'] });
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
    env.origin = `http://localhost:${env.port}`;
    env.browserService = `ws://localhost:${env.port}${ROUTE}`; // what the page uses (same origin)
    env.nodeService = `ws://127.0.0.1:${env.port}${ROUTE}`; // bob (no Origin header)
    env.domain = env.prosody.domain; // "localhost"
    env.strophe = fs.readFileSync(STROPHE_FILE);

    env.browser = await launchChromium();
    env.teardown.push(() => env.browser.close());
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
  }, { timeout: 90_000 });

  /**
   * Run `fn({ track, openChatPage })`: clients passed to track() are stopped
   * and pages opened by openChatPage() closed (their browser contexts) when
   * the body ends, however it ends. On failure the browser console, the
   * page's XMPP log and (in teardown) the gateway and Prosody logs are printed.
   */
  const step = async (fn) => {
    const mine = [];
    const pages = [];
    const track = (c) => {
      mine.push(c);
      clients.push(c);
      return c;
    };

    /** A fresh context and page at ORIGIN/e2e/chat.html with Strophe loaded (default origin: the gateway's). */
    async function openChatPage(origin = env.origin) {
      // A document fulfilled by page.route() has no IP address space, so
      // Local Network Access checks would block its WebSocket to localhost
      // without this permission (see README).
      const context = await env.browser.newContext({ permissions: ['local-network-access'] });
      const consoleLines = [];
      const p = { context, consoleLines, page: null };
      pages.push(p);
      const page = await context.newPage();
      p.page = page;
      page.setDefaultTimeout(STEP_MS);
      page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
      await page.route(`${origin}/e2e/chat.html`, (route) =>
        route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: CHAT_HTML }),
      );
      await page.route(`${origin}/e2e/strophe.js`, (route) =>
        route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: env.strophe }),
      );
      // Anything else the browser asks the gateway for (e.g. /favicon.ico) is
      // not part of the test: answer it here.
      await page.route(`${origin}/favicon.ico`, (route) => route.fulfill({ status: 404, body: '' }));
      await page.goto(`${origin}/e2e/chat.html`, { timeout: 15_000, waitUntil: 'load' });
      const loaded = await page.evaluate(() => window.e2e?.loaded === true);
      assert.ok(loaded, `Strophe did not load in the page: ${consoleLines.join('\n')}`);
      return p;
    }

    try {
      await env.gateway.abortCheck();
      try {
        await fn({ track, openChatPage });
        for (const p of pages) {
          const errors = p.consoleLines.filter((l) => l.startsWith('pageerror:'));
          assert.deepEqual(errors, [], 'uncaught errors in the page');
        }
      } catch (e) {
        for (const p of pages) {
          if (p.consoleLines.length) console.error(`[e2e] browser console:\n  ${p.consoleLines.join('\n  ')}`);
          const state = await p.page
            ?.evaluate(() => ({ statuses: window.e2e?.statuses, sockets: window.e2eSockets, raw: window.e2e?.raw }))
            .catch((err) => ({ unavailable: String(err) }));
          if (state) console.error(`[e2e] page state:\n${JSON.stringify(state, null, 2).slice(-20_000)}`);
        }
        throw e;
      } finally {
        for (const p of pages) await withTimeout(p.context.close(), 10_000, 'close browser context').catch(() => {});
        for (const c of mine) await c.stop().catch(() => {});
      }
      await env.gateway.abortCheck(); // the gateway survived whatever the test did
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  const user = (name, extra = {}) => ({
    service: env.nodeService,
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

  async function h1Upgrades() {
    const { samples } = await scrapeMetrics(env.adminPort);
    return metricValue(samples, 'ucgate_ws_upgrades_total', { route: ROUTE, http: 'h1' }) ?? 0;
  }

  /**
   * Wait until the page has seen one of `names` among Strophe's statuses
   * (bounded), then return all statuses so far.
   */
  async function waitStatus(page, names, what) {
    try {
      await page.waitForFunction(pageHasStatus, names, { timeout: STEP_MS, polling: 50 });
    } catch (e) {
      const statuses = await page.evaluate(() => window.e2e.statuses).catch(() => 'page unavailable');
      throw new Error(`${what}: no Strophe status in [${names}] within ${STEP_MS} ms; statuses: ${JSON.stringify(statuses)}`, {
        cause: e,
      });
    }
    return page.evaluate(() => window.e2e.statuses);
  }

  // Statuses after which a login attempt is over, one way or the other.
  const SETTLED = ['CONNECTED', 'CONNFAIL', 'AUTHFAIL', 'ERROR', 'CONNTIMEOUT', 'DISCONNECTED'];

  it('Strophe.js in Chromium logs in as alice over ws://, chats with bob (@xmpp/client) both ways and disconnects cleanly', async (t) => {
    await step(async ({ track, openChatPage }) => {
      const b = track(await login(user('bob', { resource: 'node-bob' })));
      const bobJid = b.xmpp.jid.toString();
      assert.equal(bobJid, `bob@${env.domain}/node-bob`);
      await b.xmpp.send(xml('presence'));
      await expectActiveConnections(1);
      const upgradesBefore = await h1Upgrades();

      const { page } = await openChatPage();
      const alice = env.prosody.users.alice;
      await page.evaluate(
        ([service, jid, password]) => window.e2e.connect(service, jid, password),
        [env.browserService, `alice@${env.domain}/browser`, alice.password],
      );
      const statuses = await waitStatus(page, SETTLED, 'alice login');
      const names = statuses.map((s) => s.name);
      assert.equal(
        statuses.find((s) => SETTLED.includes(s.name)).name,
        'CONNECTED',
        `Strophe statuses: ${JSON.stringify(statuses)}`,
      );
      assert.equal(names[0], 'CONNECTING', `statuses: ${names}`);
      const aliceJid = await page.evaluate(() => window.e2e.jid);
      assert.equal(aliceJid, `alice@${env.domain}/browser`);

      // It really was the browser's WebSocket, to the gateway, with the
      // RFC 7395 subprotocol; Strophe saw no <starttls/> (the gateway did it)
      // and authenticated with a mechanism Prosody offered.
      const sockets = await page.evaluate(() => window.e2eSockets);
      assert.equal(sockets.length, 1, JSON.stringify(sockets));
      assert.equal(sockets[0].url, env.browserService);
      assert.equal(sockets[0].protocol, 'xmpp');
      assert.deepEqual(sockets[0].events, ['open']);
      const raw = await page.evaluate(() => window.e2e.raw);
      const features = raw.filter((r) => r.dir === 'in' && /<(stream:)?features[\s>/]/.test(r.data));
      assert.ok(features.length >= 2, `stream features seen: ${JSON.stringify(features)}`);
      for (const f of features) assert.ok(!f.data.includes('starttls'), `starttls offered over WebSocket: ${f.data}`);
      const auth = raw.find((r) => r.dir === 'out' && r.data.includes(`<auth`) && r.data.includes(NS_SASL));
      const mechanism = /mechanism=["']([^"']+)["']/.exec(auth?.data ?? '')?.[1];
      assert.ok(mechanism, `no SASL <auth/> sent: ${JSON.stringify(raw.filter((r) => r.dir === 'out'))}`);
      assert.ok(features[0].data.includes(`>${mechanism}<`), `${mechanism} was not offered: ${features[0].data}`);
      t.diagnostic(`strophe.js ${STROPHE_VERSION} (${path.basename(STROPHE_FILE)}): SASL ${mechanism}, jid ${aliceJid}`);

      await expectActiveConnections(2);
      const upgradesAfter = await h1Upgrades();
      assert.equal(upgradesAfter - upgradesBefore, 1, `h1 upgrades ${upgradesBefore} → ${upgradesAfter}`);
      assert.ok(upgradesAfter >= 1);

      // alice (browser) → bob (node)
      const id1 = `browser-${process.pid}-1`;
      const toBob = 'hello bob, from alice in Chromium (Strophe.js) through ucgate';
      const waiting = b.nextMessage((m) => m.attrs.id === id1, STEP_MS);
      waiting.catch(() => {}); // awaited below; no unhandled rejection if the send throws first
      await page.evaluate(([to, body, id]) => window.e2e.sendChat(to, body, id), [bobJid, toBob, id1]);
      const atBob = await waiting;
      assert.equal(atBob.getChildText('body'), toBob);
      assert.equal(atBob.attrs.from, aliceJid);
      assert.match(atBob.attrs.from, new RegExp(`^alice@${env.domain}/.+`));
      assert.equal(atBob.attrs.to, bobJid);
      assert.equal(atBob.attrs.type, 'chat');

      // bob (node) → alice (browser): a reply to the full JID it came from.
      const id2 = `node-${process.pid}-2`;
      const toAlice = 'héllo alice ✓ <&> "quotes" — reply from bob';
      await b.xmpp.send(xml('message', { to: atBob.attrs.from, type: 'chat', id: id2 }, xml('body', {}, toAlice)));
      try {
        await page.waitForFunction(pageHasMessage, id2, { timeout: STEP_MS, polling: 50 });
      } catch (e) {
        const got = await page.evaluate(() => window.e2e.messages);
        throw new Error(`the page did not receive bob's reply within ${STEP_MS} ms; got ${JSON.stringify(got)}`, { cause: e });
      }
      const got = await page.evaluate((id) => window.e2e.messages.find((m) => m.id === id), id2);
      assert.deepEqual(got, { from: bobJid, to: aliceJid, type: 'chat', id: id2, body: toAlice });

      // The page disconnects: Strophe sends unavailable presence and
      // <close/>, the gateway answers and the WebSocket closes cleanly.
      await page.evaluate(() => window.e2e.disconnect('e2e done'));
      const after = await waitStatus(page, ['DISCONNECTED'], 'alice disconnect');
      const afterNames = after.map((s) => s.name);
      // After CONNECTED: DISCONNECTING, then DISCONNECTED (Strophe may report
      // it twice: once for the server's <close/>, once for the socket close).
      const tailNames = afterNames.slice(afterNames.indexOf('CONNECTED') + 1);
      assert.equal(tailNames[0], 'DISCONNECTING', `statuses: ${afterNames}`);
      assert.ok(tailNames.slice(1).length >= 1 && tailNames.slice(1).every((n) => n === 'DISCONNECTED'), `statuses: ${afterNames}`);
      for (const bad of ['CONNFAIL', 'AUTHFAIL', 'ERROR', 'CONNTIMEOUT']) {
        assert.ok(!afterNames.includes(bad), `statuses: ${afterNames}`);
      }
      await page.waitForFunction(() => window.e2eSockets[0].close !== null, null, { timeout: STEP_MS, polling: 50 });
      const closed = (await page.evaluate(() => window.e2eSockets))[0];
      assert.equal(closed.close.wasClean, true, JSON.stringify(closed));
      assert.ok([1000, 1005].includes(closed.close.code), JSON.stringify(closed));
      t.diagnostic(`browser WebSocket closed: ${JSON.stringify(closed.close)}; statuses ${afterNames.join(' → ')}`);
      const rawOut = (await page.evaluate(() => window.e2e.raw)).filter((r) => r.dir === 'out').map((r) => r.data);
      assert.ok(rawOut.some((d) => d.includes('<close') && d.includes('urn:ietf:params:xml:ns:xmpp-framing')), 'no <close/> sent');

      await expectActiveConnections(1); // bob is still there
      await withTimeout(b.xmpp.stop(), 10_000, 'bob xmpp.stop()');
      assert.deepEqual(b.errors.map(String), []);
      await expectActiveConnections(0);
      assert.equal(await h1Upgrades(), upgradesAfter, 'no further upgrade (no reconnect)');
    });
  });

  it('a wrong password in the browser gives AUTHFAIL (not-authorized); the page survives and then logs in', async (t) => {
    await step(async ({ openChatPage }) => {
      const { page } = await openChatPage();
      const alice = env.prosody.users.alice;
      await page.evaluate(
        ([service, jid, password]) => window.e2e.connect(service, jid, password),
        [env.browserService, `alice@${env.domain}/browser-bad`, 'not-the-password'],
      );
      const statuses = await waitStatus(page, SETTLED, 'login with a wrong password');
      const settled = statuses.find((s) => SETTLED.includes(s.name));
      const ok =
        settled.name === 'AUTHFAIL' ||
        (settled.name === 'CONNFAIL' && /not-authorized/.test(`${settled.condition} ${settled.elem}`));
      assert.ok(ok, `expected AUTHFAIL, got ${JSON.stringify(statuses)}`);
      t.diagnostic(`wrong password: ${settled.name} ${settled.condition ?? ''} ${settled.elem ?? ''}`);
      assert.ok(!statuses.some((s) => s.name === 'CONNECTED'), JSON.stringify(statuses));
      // The SASL <failure/> names the condition.
      const raw = await page.evaluate(() => window.e2e.raw);
      const failure = raw.find((r) => r.dir === 'in' && r.data.includes('<failure') && r.data.includes(NS_SASL));
      assert.ok(failure, `no SASL <failure/> received: ${JSON.stringify(raw.filter((r) => r.dir === 'in'))}`);
      assert.match(failure.data, /<not-authorized\s*\/>/);
      if (settled.elem) assert.match(settled.elem, /not-authorized/);

      // Not crashed: the page still runs code, and disconnecting ends the
      // attempt (Prosody would let the client retry SASL on that stream).
      assert.equal(await page.evaluate(() => 6 * 7), 42);
      await page.evaluate(() => window.e2e.disconnect('e2e after authfail'));
      await waitStatus(page, ['DISCONNECTED'], 'disconnect after AUTHFAIL');
      await page.waitForFunction(() => window.e2eSockets.every((s) => s.close !== null), null, {
        timeout: STEP_MS,
        polling: 50,
      });
      await expectActiveConnections(0);

      // The same page then logs in with the right password.
      const before = await page.evaluate(() => window.e2e.statuses.length);
      await page.evaluate(
        ([service, jid, password]) => window.e2e.connect(service, jid, password),
        [env.browserService, `alice@${env.domain}/browser-good`, alice.password],
      );
      await page.waitForFunction(
        ([from, names]) => window.e2e.statuses.slice(from).some((s) => names.includes(s.name)),
        [before, SETTLED],
        { timeout: STEP_MS, polling: 50 },
      );
      const second = (await page.evaluate(() => window.e2e.statuses)).slice(before);
      assert.equal(second.find((s) => SETTLED.includes(s.name)).name, 'CONNECTED', JSON.stringify(second));
      assert.equal(await page.evaluate(() => window.e2e.jid), `alice@${env.domain}/browser-good`);
      await expectActiveConnections(1);
      await page.evaluate(() => window.e2e.disconnect('e2e done'));
      await page.waitForFunction(
        (from) => window.e2e.statuses.slice(from).some((s) => s.name === 'DISCONNECTED'),
        before,
        { timeout: STEP_MS, polling: 50 },
      );
      await expectActiveConnections(0);
    });
  });

  it('a page from another origin (http://127.0.0.1:PORT) is refused by the default same-origin policy', async (t) => {
    await step(async ({ openChatPage }) => {
      // Same gateway, same ws://localhost URL, but the document's origin is
      // http://127.0.0.1:PORT: Origin and Host differ, so the gateway answers
      // the upgrade with 403 before dialling Prosody.
      const { page, consoleLines } = await openChatPage(`http://127.0.0.1:${env.port}`);
      const upgradesBefore = await h1Upgrades();
      await page.evaluate(
        ([service, jid, password]) => window.e2e.connect(service, jid, password),
        [env.browserService, `alice@${env.domain}/cross-origin`, env.prosody.users.alice.password],
      );
      const statuses = await waitStatus(page, SETTLED, 'cross-origin login');
      const settled = statuses.find((s) => SETTLED.includes(s.name));
      assert.equal(settled.name, 'CONNFAIL', JSON.stringify(statuses));
      assert.ok(!statuses.some((s) => s.name === 'CONNECTED'), JSON.stringify(statuses));
      const sockets = await page.evaluate(() => window.e2eSockets);
      assert.equal(sockets.length, 1, JSON.stringify(sockets));
      assert.ok(!sockets[0].events.includes('open'), JSON.stringify(sockets));
      // Chromium logs the handshake status; its console events reach node asynchronously.
      const refused = (l) => /Unexpected response code: 403/.test(l);
      for (let i = 0; i < 40 && !consoleLines.some(refused); i++) await sleep(50);
      assert.ok(consoleLines.some(refused), `no 403 in the browser console:\n${consoleLines.join('\n')}`);
      t.diagnostic(`cross-origin: ${settled.name} (${settled.condition}); socket ${JSON.stringify(sockets[0].close)}`);
      assert.equal(await h1Upgrades(), upgradesBefore, 'a refused origin must not be upgraded');
      await expectActiveConnections(0);
    });
  });
});
