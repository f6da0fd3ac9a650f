// Converse.js (npm `converse.js`, its ES-module build dist/converse.min.js)
// in a page whose origin is the gateway's, for browser tests that need a
// real chat client over either of ucgate's XMPP routes (WebSocket or BOSH).
// The same page as tests/bosh-browser.test.mjs, reduced to what a login and
// one message each way need.
//
// The gateway serves no HTML: Playwright fulfils ORIGIN/e2e/converse.html and
// ORIGIN/dist/… (the package's dist/, Converse's default assets_path) and
// answers 404 for every other path of ORIGIN except `passPaths` (the XMPP
// endpoints, which reach the real network) and for every other origin.
//
// With `url`, the page is the gateway's own (a `static` route serving
// CONVERSE_HTML and the dist/ at /dist/, tests/static-converse.test.mjs):
// nothing of ORIGIN is fulfilled by Playwright, every request reaches it.
//
//   const p = await openConversePage(context, { origin, passPaths: ['/http-bind'] });
//   const p = await openConversePage(context, { origin, url: `${origin}/chat/` });
//   await p.start({ bosh_service_url }) / p.start({ websocket_url })
//   await p.waitConnected(); await p.send(to, body); await p.waitMessage(from, body); await p.logout();

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
export const CONVERSE_DIST = path.dirname(require.resolve('converse.js/dist/converse.min.js'));

const CONTENT_TYPES = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
};

// Records the page's XHRs (method, URL, status) and WebSockets (URL), loads
// Converse and exposes its API and connection events on window.e2e.
export const CONVERSE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>ucgate e2e: Converse.js</title>
<link rel="stylesheet" href="/dist/converse.min.css">
<script>
(() => {
  window.e2eXhrs = [];
  window.e2eSockets = [];
  const open = XMLHttpRequest.prototype.open;
  XMLHttpRequest.prototype.open = function (method, url, ...rest) {
    const rec = { method, url: String(new URL(url, location.href)), status: null };
    window.e2eXhrs.push(rec);
    this.addEventListener('loadend', () => (rec.status = this.status));
    return open.call(this, method, url, ...rest);
  };
  const Native = window.WebSocket;
  window.WebSocket = class RecordingWebSocket extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), opened: false, protocol: null, close: null };
      window.e2eSockets.push(rec);
      this.addEventListener('open', () => Object.assign(rec, { opened: true, protocol: this.protocol }));
      this.addEventListener('close', (e) => (rec.close = e.code));
    }
  };
})();
</script>
</head><body>
<script type="module">
import converse from '/dist/converse.min.js';
{
  const e2e = { loaded: typeof converse?.initialize === 'function', api: null, chats: {}, feedback: [], events: [], initError: null };
  window.e2e = e2e;
  converse.plugins.add('e2e', {
    initialize() {
      const api = this._converse.api;
      e2e.api = api;
      for (const ev of ['connected', 'disconnected']) api.listen.on(ev, () => e2e.events.push(ev));
      api.listen.on('connfeedback', (fb) => e2e.feedback.push({ status: fb.get('connection_status'), message: fb.get('message') ?? null }));
    },
  });
  e2e.start = (settings) => {
    converse.initialize({ ...settings, whitelisted_plugins: ['e2e'] }).catch((err) => (e2e.initError = String(err?.stack ?? err)));
  };
  e2e.jid = () => e2e.api?.connection.get()?.jid ?? null;
  e2e.send = async (to, body) => {
    const chat = await e2e.api.chats.open(to);
    e2e.chats[to] = chat;
    const msg = await chat.sendMessage({ body });
    return msg ? msg.get('body') : null;
  };
  e2e.chatMessages = (jid) =>
    (e2e.chats[jid]?.messages?.models ?? []).map((m) => ({ body: m.get('body') ?? null, sender: m.get('sender') }));
}
</script>
</body></html>
`;

// Converse settings every test shares: log in at once, no UI chrome that
// loads from the web, no OMEMO (it loads a wasm and holds sendMessage()).
const BASE_SETTINGS = {
  authentication: 'login',
  auto_login: true,
  discover_connection_methods: false,
  view_mode: 'embedded',
  blacklisted_plugins: ['converse-omemo'],
  auto_reconnect: false,
  i18n: 'en',
  loglevel: 'warn',
  play_sounds: false,
  show_desktop_notifications: false,
};

/**
 * A page in `context` at ORIGIN/e2e/converse.html (or `url`) with Converse loaded.
 * Returns { page, consoleLines, notFound, start(settings), waitConnected(ms),
 * send(to, body), waitMessage(from, body, ms), logout(ms), state() }.
 */
export async function openConversePage(context, { origin, passPaths = [], url: pageUrl = null, timeoutMs = 20_000 }) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeoutMs);
  const consoleLines = [];
  const notFound = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => consoleLines.push(`requestfailed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  await page.route(
    (url) => url.origin !== origin && /^https?:$/.test(url.protocol),
    (route) => {
      notFound.push(route.request().url());
      return route.fulfill({ status: 404, contentType: 'text/plain', body: 'no network in the test' });
    },
  );
  if (!pageUrl) await page.route(
    (url) => url.origin === origin && !passPaths.includes(url.pathname),
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
      notFound.push(pathname);
      return route.fulfill({ status: 404, contentType: 'text/plain', body: 'not part of the test' });
    },
  );
  await page.goto(pageUrl ?? `${origin}/e2e/converse.html`, { waitUntil: 'load' });
  if (!(await page.evaluate(() => window.e2e?.loaded === true))) {
    throw new Error(`Converse did not load:\n${consoleLines.join('\n')}`);
  }
  const poll = { timeout: timeoutMs, polling: 100 };
  return {
    page,
    consoleLines,
    notFound,
    start: (settings) => page.evaluate((s) => window.e2e.start(s), { ...BASE_SETTINGS, ...settings }),
    /** Resolves with the bound JID; throws with Converse's feedback otherwise. */
    async waitConnected() {
      await page.waitForFunction(
        () =>
          window.e2e.events.includes('connected') ||
          window.e2e.initError ||
          window.e2e.feedback.some((f) => f.status === 2 || f.status === 4), // Strophe CONNFAIL, AUTHFAIL
        null,
        poll,
      );
      const s = await page.evaluate(() => ({ ok: window.e2e.events.includes('connected'), fb: window.e2e.feedback, err: window.e2e.initError }));
      if (!s.ok) throw new Error(`Converse did not connect: ${JSON.stringify(s)}`);
      return page.evaluate(() => window.e2e.jid());
    },
    send: (to, body) => page.evaluate(([to, body]) => window.e2e.send(to, body), [to, body]),
    waitMessage: (from, body) =>
      page.waitForFunction(
        ([jid, text]) => window.e2e.chatMessages(jid).some((m) => m.body === text && m.sender === 'them'),
        [from, body],
        poll,
      ),
    async logout() {
      await page.evaluate(() => window.e2e.api.user.logout());
      await page.waitForFunction(() => window.e2e.events.includes('disconnected'), null, poll);
    },
    state: () =>
      page.evaluate(() => ({ feedback: window.e2e?.feedback, events: window.e2e?.events, xhrs: window.e2eXhrs, sockets: window.e2eSockets })),
  };
}
