// End-to-end (issue 16, "Serve the web client from the same origin"): the
// gateway serves Converse.js itself with two `static` routes, `/chat/` (a
// directory holding the test's index.html) and `/dist/` (the npm package's
// dist/, Converse's default assets_path), beside its `xmpp-websocket` and
// `bosh` routes, none of which lists `origins`. Headless Chromium opens
// http://localhost:PORT/chat/ — nothing is fulfilled by Playwright — and
// Converse.js, loaded from the gateway, logs in to a real Prosody over the
// same gateway's WebSocket, then over its BOSH, and chats with bob. Requests
// that try to leave the served directories get 404 from the running
// gateway, sent as raw bytes so that no client normalises the path.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CONVERSE_DIST, CONVERSE_HTML, openConversePage } from '../lib/converse-page.mjs';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, launchChromium, makeTempDir, metricValue, scrapeMetrics, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { ensureWebSocket, login, xml } from '../lib/xmpp.mjs';

const STEP_MS = 20_000;

function gatewayConfig({ port, adminPort, prosodyPort, caFile, www }) {
  return `# written by e2e/tests/static-converse.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = "/chat/"
kind = "static"
root = ${toml(www)}

[[route]]
path = "/dist/"
kind = "static"
root = ${toml(CONVERSE_DIST)}
cache_control = "public, max-age=600"

[[route]]
path = "/xmpp-websocket"
kind = "xmpp-websocket"

[[route]]
path = "/http-bind"
kind = "bosh"

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

/** One raw HTTP/1.1 GET (the path goes on the wire unchanged): { status, body }. */
function rawGet(port, target) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        // Not end(): hyper drops a request whose client half-closes before
        // the answer is ready (the file checks are asynchronous).
        s.write(`GET ${target} HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`);
      });
      const chunks = [];
      s.on('data', (c) => chunks.push(c));
      s.on('error', reject);
      s.on('end', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const status = Number(text.slice(9, 12));
        resolve({ status, text });
      });
    }),
    10_000,
    `GET ${target}`,
  );
}

describe(`Converse.js served by ucgate itself (${UCGATE_BIN})`, { timeout: 180_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    await ensureWebSocket();
    env.dir = makeTempDir('ucgate-e2e-static-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    // www/index.html is the page; secret.txt sits next to www/, and
    // www/leak is a symlink to it.
    const www = path.join(env.dir, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), CONVERSE_HTML);
    fs.writeFileSync(path.join(env.dir, 'secret.txt'), 'TOP-SECRET');
    fs.symlinkSync(path.join(env.dir, 'secret.txt'), path.join(www, 'leak'));
    // mod_blocklist: Converse's api.chats.open() waits for the block list.
    env.prosody = await startProsody({ domains: ['localhost'], modules: ['blocklist'] });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-60).join('\n')}`);
      await env.prosody.stop();
    });
    [env.port, env.adminPort] = await freePorts(2);
    env.origin = `http://localhost:${env.port}`;
    env.gw = await startGateway({
      dir: env.dir,
      adminPort: env.adminPort,
      config: gatewayConfig({ port: env.port, adminPort: env.adminPort, prosodyPort: env.prosody.port, caFile: env.prosody.caFile, www }),
    });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] gateway log (tail):\n${env.gw.log().split('\n').slice(-120).join('\n')}`);
      await env.gw.close();
    });
    env.browser = await launchChromium();
    env.teardown.push(() => env.browser.close());
  }, { timeout: 90_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 90_000 });

  /**
   * bob (@xmpp/client, through the gateway's WebSocket) is online; Converse
   * in the gateway's own page logs in as alice with `settings`, a message
   * each way, a logout. Returns the page's recorded XHRs and sockets.
   */
  async function converseChat(settings) {
    const domain = 'localhost';
    const bob = await login({
      service: `ws://127.0.0.1:${env.port}/xmpp-websocket`,
      domain,
      username: 'bob',
      password: env.prosody.users.bob.password,
      resource: 'node-bob',
    });
    const context = await env.browser.newContext({ permissions: ['local-network-access'] });
    let c;
    try {
      await bob.xmpp.send(xml('presence'));
      c = await openConversePage(context, { origin: env.origin, url: `${env.origin}/chat/` });
      await c.start({ ...settings, jid: `alice@${domain}/converse`, password: env.prosody.users.alice.password });
      const aliceJid = await c.waitConnected();
      assert.match(aliceJid, new RegExp(`^alice@${domain}/`));
      const state = await c.state();
      const body = `hello bob, from Converse.js served by ucgate ${process.pid}`;
      const atBob = bob.nextMessage((m) => m.getChildText('body') === body, STEP_MS);
      atBob.catch(() => {});
      assert.equal(await withTimeout(c.send(`bob@${domain}`, body), STEP_MS, 'Converse api.chats.open + sendMessage'), body);
      assert.equal((await atBob).attrs.from, aliceJid);
      const reply = 'hi alice — bob';
      await bob.xmpp.send(xml('message', { to: aliceJid, type: 'chat' }, xml('body', {}, reply)));
      await c.waitMessage(`bob@${domain}`, reply);
      await c.logout();
      assert.deepEqual(c.notFound, [], 'the page asked for nothing outside the gateway');
      return state;
    } catch (e) {
      env.failed = true;
      if (c) console.error(`[e2e] browser console:\n  ${c.consoleLines.join('\n  ')}\n${JSON.stringify(await c.state().catch(() => null))}`);
      throw e;
    } finally {
      await context.close().catch(() => {});
      await bob.stop().catch(() => {});
    }
  }

  it('serves the page and Converse.js with the right types and validators', async () => {
    const page = await fetch(`${env.origin}/chat/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(await page.text(), CONVERSE_HTML);
    const js = await fetch(`${env.origin}/dist/converse.min.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'public, max-age=600');
    assert.equal(js.headers.get('x-content-type-options'), 'nosniff');
    const bytes = Buffer.from(await js.arrayBuffer());
    assert.ok(bytes.equals(fs.readFileSync(path.join(CONVERSE_DIST, 'converse.min.js'))));
    const again = await fetch(`${env.origin}/dist/converse.min.js`, { headers: { 'if-none-match': js.headers.get('etag') } });
    assert.equal(again.status, 304);
    const css = await fetch(`${env.origin}/dist/converse.min.css`, { method: 'HEAD' });
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal(Number(css.headers.get('content-length')), fs.statSync(path.join(CONVERSE_DIST, 'converse.min.css')).size);
    const redirect = await fetch(`${env.origin}/chat`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/chat/');
    const listing = await fetch(`${env.origin}/dist/images/`);
    assert.equal(listing.status, 404, 'no directory listing');
  });

  it('Converse.js from the gateway logs in over its WebSocket route (same origin, no `origins`)', { timeout: 60_000 }, async () => {
    const { sockets } = await converseChat({ websocket_url: `ws://localhost:${env.port}/xmpp-websocket` });
    assert.ok(sockets.some((s) => s.url === `ws://localhost:${env.port}/xmpp-websocket` && s.opened && s.protocol === 'xmpp'), JSON.stringify(sockets));
  });

  it('Converse.js from the gateway logs in over its BOSH route (same origin, no `origins`)', { timeout: 60_000 }, async () => {
    const { xhrs, sockets } = await converseChat({ bosh_service_url: '/http-bind' });
    assert.equal(sockets.length, 0, JSON.stringify(sockets));
    const bosh = xhrs.filter((x) => x.url === `${env.origin}/http-bind`);
    assert.ok(bosh.length >= 2 && bosh.every((x) => x.status === 200 || x.status === null), JSON.stringify(xhrs));
  });

  it('counts what it served: dist files 200, the page, no refusals of the page origin', async () => {
    const { samples } = await scrapeMetrics(env.adminPort);
    assert.ok(metricValue(samples, 'ucgate_http_responses_total', { route: '/dist/', code: '200' }) >= 2);
    assert.ok(metricValue(samples, 'ucgate_http_responses_total', { route: '/chat/', code: '200' }) >= 2);
    const forbidden = samples.filter((s) => s.name === 'ucgate_errors_total' && s.labels.kind === 'origin_forbidden');
    assert.deepEqual(forbidden.map((s) => s.value).filter((v) => v > 0), []);
  });

  it('path-traversal attempts against the running gateway get 404', async () => {
    const attempts = [
      '/chat/../secret.txt',
      '/chat/x/../../secret.txt',
      '/chat/%2e%2e/secret.txt',
      '/chat/%2E%2E/secret.txt',
      '/chat/.%2e/secret.txt',
      '/chat/..%2fsecret.txt',
      '/chat/..%2Fsecret.txt',
      '/chat/..%5csecret.txt',
      '/chat/index.html%00.js',
      '/chat/%00',
      '/chat/leak',
      '/dist/../package.json',
      '/dist/%2e%2e/package.json',
      '/dist/..%2f..%2f..%2fpackage.json',
      '/chat/.%2e/.%2e/.%2e/.%2e/.%2e/.%2e/etc/passwd',
    ];
    for (const target of attempts) {
      const r = await rawGet(env.port, target);
      assert.equal(r.status, 404, `${target}: ${r.text.slice(0, 200)}`);
      assert.doesNotMatch(r.text, /TOP-SECRET|"name":\s*"converse.js"|root:/, target);
    }
    // A raw backslash (some servers read it as `/`).
    const bs = await rawGet(env.port, '/chat/..\\secret.txt');
    assert.equal(bs.status, 404, bs.text.slice(0, 200));
    assert.doesNotMatch(bs.text, /TOP-SECRET/);
    assert.match(await env.gw.waitLog(/static_path_refused/), /static_path_refused/);
  });
});
