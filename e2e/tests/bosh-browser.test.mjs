// End-to-end: a real browser chat client over BOSH. Converse.js (npm
// `converse.js`, its browser build dist/converse.min.js) in headless Chromium
// logs in as alice through ucgate's `bosh` route (XEP-0124 + XEP-0206) to a
// private Prosody that requires c2s encryption (the gateway does STARTTLS),
// and sends a chat message to bob, an @xmpp/client in node over the gateway's
// WebSocket route; bob replies and Converse shows the reply.
//
//   UCGATE_BIN=/path/to/ucgate npm test      (default: <repo>/target/debug/ucgate)
//   E2E_BOSH_TARGET=prosody node --test tests/bosh-browser.test.mjs
//        the same page against Prosody's own BOSH, no gateway (harness check)
//
// Needs Debian's prosody and chromium (scripts/install-deps).
//
// The gateway serves no HTML: Playwright fulfils, on the BOSH server's own
// origin http://localhost:PORT,
//   /e2e/converse.html   (the page below)
//   /dist/…              (node_modules/converse.js/dist: Converse's default
//                         assets_path is /dist, and webpack loads its lazy
//                         chunks relative to the script's URL)
// and answers 404 for anything else except /http-bind, which goes to the real
// server. The page is thus same-origin with the BOSH endpoint (the route's
// default policy) and needs no CORS.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BOSH_ROUTE, startBoshTarget } from '../lib/bosh-target.mjs';
import { UCGATE_BIN } from '../lib/gateway.mjs';
import { launchChromium, withTimeout } from '../lib/harness.mjs';
import { login, xml } from '../lib/xmpp.mjs';

const STEP_MS = 30_000; // one login / message / logout seen by the page

const require = createRequire(import.meta.url);
// (converse.js's `exports` map has ./dist/* but no ./package.json.)
const CONVERSE_DIST = path.dirname(require.resolve('converse.js/dist/converse.min.js'));
const CONVERSE_DIR = path.dirname(CONVERSE_DIST);
const CONVERSE_VERSION = JSON.parse(fs.readFileSync(path.join(CONVERSE_DIR, 'package.json'), 'utf8')).version;

const CONTENT_TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.eot': 'application/vnd.ms-fontobject',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

// The page: records every XMLHttpRequest (method, URL, status, the start of
// request and response bodies) and WebSocket it makes, imports Converse and
// registers an `e2e` plugin that exposes Converse's API and its connection
// feedback on window.e2e. The test starts Converse with
// converse.initialize(settings) through page.evaluate.
const CONVERSE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>ucgate e2e: Converse.js over BOSH</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script>
(() => {
  window.e2eXhrs = [];
  window.e2eSockets = [];
  const open = XMLHttpRequest.prototype.open;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    this.e2e = { method, url: String(new URL(url, location.href)), status: null, sent: 0, received: 0 };
    window.e2eXhrs.push(this.e2e);
    this.addEventListener('loadend', () => {
      this.e2e.status = this.status;
      this.e2e.received = (this.responseText || '').length;
      this.e2e.response = (this.responseText || '').slice(0, 2000);
    });
    return open.call(this, method, url, ...rest);
  };
  XMLHttpRequest.prototype.send = function (body) {
    if (this.e2e) {
      this.e2e.sent = body ? String(body).length : 0;
      this.e2e.request = body ? String(body).slice(0, 2000) : '';
    }
    return send.call(this, body);
  };
  const Native = window.WebSocket;
  window.WebSocket = class RecordingWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      window.e2eSockets.push(String(url));
    }
  };
})();
</script>
</head><body>
<script type="module">
// Converse 14's dist/converse.min.js is an ES module (default export: the
// converse object; it uses import.meta.url to find its lazy chunks).
import converse from '/dist/converse.min.js';
{
  const e2e = { loaded: typeof converse?.initialize === 'function', api: null, chats: {}, feedback: [], events: [], initError: null };
  window.e2e = e2e;
  converse.plugins.add('e2e', {
    initialize() {
      const api = this._converse.api;
      e2e.api = api;
      // name → open promise (isResolved, …): which of Converse's waitUntil()
      // promises are still pending is printed when a test fails.
      e2e.promises = this._converse.promises;
      const note = (name) => () => e2e.events.push({ name, t: Date.now() });
      for (const ev of ['connected', 'reconnected', 'disconnected', 'logout']) api.listen.on(ev, note(ev));
      api.listen.on('connfeedback', (fb) =>
        e2e.feedback.push({ status: fb.get('connection_status'), message: fb.get('message') ?? null, t: Date.now() }),
      );
    },
  });
  e2e.start = (settings) => {
    converse.initialize({ ...settings, whitelisted_plugins: ['e2e'] }).catch((err) => {
      e2e.initError = String(err?.stack ?? err);
    });
  };
  e2e.promiseStates = () =>
    Object.fromEntries(
      Object.entries(e2e.promises ?? {}).map(([k, p]) => [k, p.isResolved ? 'resolved' : p.isRejected ? 'rejected' : 'pending']),
    );
  e2e.jid = () => e2e.api?.connection.get()?.jid ?? null;
  e2e.send = async (to, body) => {
    const chat = await e2e.api.chats.open(to);
    e2e.chats[to] = chat;
    const msg = await chat.sendMessage({ body });
    return msg ? { msgid: msg.get('msgid') ?? null, body: msg.get('body') } : null;
  };
  e2e.chatMessages = (jid) =>
    (e2e.chats[jid]?.messages?.models ?? []).map((m) => ({
      body: m.get('body') ?? null,
      sender: m.get('sender'),
      from: m.get('from') ?? null,
      type: m.get('type') ?? null,
    }));
}
</script>
</body></html>
`;

describe(`Converse.js in Chromium over ${
  (process.env.E2E_BOSH_TARGET || 'ucgate') === 'prosody' ? "Prosody's own BOSH (harness check, no gateway)" : `BOSH through ucgate (${UCGATE_BIN})`
} to Prosody`, { timeout: 240_000 }, () => {
  const env = { failed: false, t: null, browser: null };

  before(async () => {
    try {
      assert.ok(fs.existsSync(path.join(CONVERSE_DIST, 'converse.min.js')), `${CONVERSE_DIST}/converse.min.js missing: npm ci in e2e/`);
      env.t = await startBoshTarget({ writer: 'e2e/tests/bosh-browser.test.mjs' });
      env.browser = await launchChromium();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 120_000 });

  after(async () => {
    const errors = [];
    if (env.browser) await withTimeout(env.browser.close(), 15_000, 'browser close').catch((e) => errors.push(e));
    await withTimeout(env.t?.stop({ failed: env.failed }) ?? Promise.resolve(), 40_000, 'teardown').catch((e) => errors.push(e));
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  }, { timeout: 90_000 });

  /** A fresh context and page at ORIGIN/e2e/converse.html with Converse loaded. */
  async function openConversePage(p) {
    const origin = env.t.browserOrigin;
    // A document fulfilled by page.route() has no IP address space: without
    // this permission Chromium's Local Network Access checks could block its
    // requests to localhost (see README).
    const context = await env.browser.newContext({ permissions: ['local-network-access'] });
    p.context = context;
    const page = await context.newPage();
    p.page = page;
    page.setDefaultTimeout(STEP_MS);
    page.on('console', (m) => p.consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => p.consoleLines.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => p.consoleLines.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    // Nothing leaves the machine: any other origin (there is no network
    // anyway) is answered 404 here and listed on failure.
    await page.route(
      (url) => url.origin !== origin && /^https?:$/.test(url.protocol),
      (route) => {
        p.notFound.push(route.request().url());
        return route.fulfill({ status: 404, contentType: 'text/plain', body: 'no network in the test' });
      },
    );
    // Everything on the origin but the BOSH endpoint is answered here.
    await page.route(
      (url) => url.origin === origin && url.pathname !== BOSH_ROUTE,
      (route) => {
        const { pathname } = new URL(route.request().url());
        if (pathname === '/e2e/converse.html') {
          return route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: CONVERSE_HTML });
        }
        if (pathname.startsWith('/dist/')) {
          const file = path.resolve(CONVERSE_DIST, `.${decodeURIComponent(pathname.slice('/dist'.length))}`);
          if (file.startsWith(`${CONVERSE_DIST}${path.sep}`) && fs.existsSync(file) && fs.statSync(file).isFile()) {
            const contentType = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
            return route.fulfill({ status: 200, contentType, body: fs.readFileSync(file) });
          }
        }
        p.notFound.push(pathname);
        return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not part of the test' });
      },
    );
    await page.goto(`${origin}/e2e/converse.html`, { timeout: 20_000, waitUntil: 'load' });
    assert.ok(await page.evaluate(() => window.e2e?.loaded === true), `Converse did not load:\n${p.consoleLines.join('\n')}`);
    return page;
  }

  /**
   * Run `fn({ track, openPage })`; clients passed to track() are stopped and
   * pages closed (their contexts) when the body ends. On failure the browser
   * console, the page's XHR log and Converse's connection feedback are printed
   * (and the server logs in teardown).
   */
  const step = async (fn) => {
    const xmpps = [];
    const pages = [];
    const track = (c) => {
      xmpps.push(c);
      return c;
    };
    const openPage = async () => {
      const p = { context: null, page: null, consoleLines: [], notFound: [] };
      pages.push(p);
      const page = await openConversePage(p);
      return { page, p };
    };
    try {
      await env.t.alive();
      try {
        await fn({ track, openPage });
        for (const p of pages) {
          const errors = p.consoleLines.filter((l) => l.startsWith('pageerror:'));
          assert.deepEqual(errors, [], 'uncaught errors in the page');
        }
      } catch (e) {
        for (const p of pages) {
          if (p.consoleLines.length) console.error(`[e2e] browser console:\n  ${p.consoleLines.slice(-150).join('\n  ')}`);
          if (p.notFound.length) console.error(`[e2e] answered 404: ${p.notFound.join(', ')}`);
          const state = await p.page
            ?.evaluate(() => ({
              feedback: window.e2e?.feedback,
              events: window.e2e?.events,
              initError: window.e2e?.initError,
              xhrs: window.e2eXhrs?.slice(-40),
              promises: window.e2e?.promiseStates?.(),
              sockets: window.e2eSockets,
            }))
            .catch((err) => ({ unavailable: String(err) }));
          if (state) console.error(`[e2e] page state:\n${JSON.stringify(state, null, 2).slice(-30_000)}`);
        }
        throw e;
      } finally {
        for (const p of pages) await withTimeout(p.context?.close() ?? Promise.resolve(), 10_000, 'close browser context').catch(() => {});
        for (const c of xmpps) await c.stop().catch(() => {});
      }
      await env.t.alive(); // the gateway survived whatever the test did
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  it('Converse.js logs in as alice over BOSH, sends bob a chat message, gets his reply and logs out', async (t) => {
    await step(async ({ track, openPage }) => {
      const { domain } = env.t;
      const b = track(
        await login({
          service: env.t.bobService,
          domain,
          username: env.t.users.bob.username,
          password: env.t.users.bob.password,
          resource: 'node-bob',
        }),
      );
      const bobJid = b.xmpp.jid.toString();
      await b.xmpp.send(xml('presence')); // available: chats to the bare JID reach this resource

      const { page, p } = await openPage();
      await page.evaluate(
        (settings) => window.e2e.start(settings),
        {
          bosh_service_url: env.t.browserBoshUrl,
          authentication: 'login',
          auto_login: true,
          jid: `alice@${domain}/converse`,
          password: env.t.users.alice.password,
          discover_connection_methods: false,
          // 'embedded': the 'fullscreen' footer loads sponsor logos from the web.
          view_mode: 'embedded',
          // OMEMO (on by default) loads a wasm relative to the page and
          // holds sendMessage() while it fails; not what this test is about.
          blacklisted_plugins: ['converse-omemo'],
          auto_reconnect: false,
          i18n: 'en',
          loglevel: 'warn',
          play_sounds: false,
          show_desktop_notifications: false,
        },
      );
      try {
        // Connected, or settled otherwise: an init error, or Strophe's
        // CONNFAIL (2) / AUTHFAIL (4) in Converse's connection feedback.
        await page.waitForFunction(
          () =>
            window.e2e.events.some((e) => e.name === 'connected') ||
            window.e2e.initError ||
            window.e2e.feedback.some((f) => f.status === 2 || f.status === 4),
          null,
          { timeout: STEP_MS, polling: 100 },
        );
      } catch (e) {
        throw new Error(`Converse did not connect within ${STEP_MS} ms`, { cause: e });
      }
      assert.equal(await page.evaluate(() => window.e2e.initError), null);
      const connected = await page.evaluate(() => window.e2e.events.some((e) => e.name === 'connected'));
      assert.ok(connected, `Converse did not connect: ${JSON.stringify(await page.evaluate(() => window.e2e.feedback))}`);
      const aliceJid = await page.evaluate(() => window.e2e.jid());
      assert.match(aliceJid, new RegExp(`^alice@${domain}/.+`));

      // It was BOSH, to this URL, from this page: POSTs answered 200, no WebSocket.
      const xhrs = await page.evaluate(() => window.e2eXhrs);
      const boshXhrs = xhrs.filter((x) => x.url === env.t.browserBoshUrl);
      assert.ok(boshXhrs.length >= 3, `BOSH requests: ${JSON.stringify(xhrs)}`);
      assert.ok(boshXhrs.every((x) => x.method === 'POST'), JSON.stringify(boshXhrs));
      const finished = boshXhrs.filter((x) => x.status !== null);
      assert.ok(finished.length >= 2 && finished.every((x) => x.status === 200), JSON.stringify(finished));
      assert.deepEqual(await page.evaluate(() => window.e2eSockets), [], 'Converse opened a WebSocket');
      const features = finished.filter((x) => /<(stream:)?features[\s>]/.test(x.response ?? ''));
      if (env.t.gateway) {
        for (const f of features) assert.ok(!f.response.includes('starttls'), `starttls offered over BOSH: ${f.response}`);
      }
      assert.equal(await env.t.expectBoshSessions(1), env.t.gateway ? 1 : null);
      t.diagnostic(`converse.js ${CONVERSE_VERSION}: ${aliceJid} via ${env.t.browserBoshUrl} (${env.t.mode})`);

      // alice (Converse) → bob (node), through Converse's API.
      const body = `hello bob, from alice in Converse.js over BOSH ${process.pid}`;
      const atBobP = b.nextMessage((m) => m.getChildText('body') === body, STEP_MS);
      atBobP.catch(() => {});
      const sent = await withTimeout(
        page.evaluate(([to, text]) => window.e2e.send(to, text), [`bob@${domain}`, body]),
        STEP_MS,
        'Converse api.chats.open + chat.sendMessage',
      );
      assert.ok(sent, 'Converse refused to send (canPostMessages false)');
      const atBob = await atBobP;
      assert.equal(atBob.attrs.from, aliceJid);
      assert.match(atBob.attrs.from, new RegExp(`^alice@${domain}/.+`));
      assert.equal(atBob.attrs.to, `bob@${domain}`);
      assert.equal(atBob.attrs.type, 'chat');
      t.diagnostic(`bob got: ${atBob}`.slice(0, 600));

      // bob (node) → alice (Converse): the reply shows up in Converse's chat.
      const reply = 'héllo alice ✓ <&> — reply from bob';
      await b.xmpp.send(xml('message', { to: aliceJid, type: 'chat', id: `bob-${process.pid}` }, xml('body', {}, reply)));
      try {
        await page.waitForFunction(
          ([jid, text]) => window.e2e.chatMessages(jid).some((m) => m.body === text && m.sender === 'them'),
          [`bob@${domain}`, reply],
          { timeout: STEP_MS, polling: 100 },
        );
      } catch (e) {
        const got = await page.evaluate((jid) => window.e2e.chatMessages(jid), `bob@${domain}`);
        throw new Error(`Converse did not show bob's reply within ${STEP_MS} ms; chat: ${JSON.stringify(got)}`, { cause: e });
      }
      // …and in the page, as text.
      await page.getByText(reply).first().waitFor({ timeout: STEP_MS });

      // Logout ends the BOSH session.
      await withTimeout(page.evaluate(() => window.e2e.api.user.logout()), STEP_MS, 'Converse api.user.logout()');
      await page.waitForFunction(() => window.e2e.events.some((e) => e.name === 'disconnected'), null, {
        timeout: STEP_MS,
        polling: 100,
      });
      const requests = (await page.evaluate(() => window.e2eXhrs)).filter((x) => x.url === env.t.browserBoshUrl);
      assert.ok(requests.some((x) => /type=["']terminate["']/.test(x.request ?? '')), 'no terminate body sent');
      await env.t.expectBoshSessions(0);
      assert.deepEqual(b.errors.map(String), []);
      if (p.notFound.length) t.diagnostic(`answered 404: ${p.notFound.join(', ')}`);
    });
  });
});
