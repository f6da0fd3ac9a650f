// End-to-end: browsers behind a forward proxy (issue 15, item 2b). Headless
// Chromium reaches ucgate only through Debian's tinyproxy (lib/tinyproxy.mjs),
// with `--proxy-server` and `--proxy-bypass-list=<-loopback>` (Chromium
// otherwise never proxies loopback), so every connection to the gateway is a
// CONNECT tunnel carrying TLS end to end:
//  * Converse.js logs in to a private Prosody over wss:// and chats with bob;
//  * Converse.js does the same over BOSH on https://;
//  * a page echoes over wss:// on a `tcp` tunnel route;
//  * once more through a tinyproxy that requires Basic authentication: with
//    the credentials (Playwright's `proxy.username`/`password`) it echoes,
//    without them the WebSocket fails and reaches no backend;
//  * through a tinyproxy that allows CONNECT to port 443 only, in front of a
//    plain-HTTP gateway: a WebSocket handshake sent to it as an ordinary
//    request loses its hop-by-hop Upgrade/Connection headers (the gateway
//    answers 426), Chromium's ws:// WebSocket (a CONNECT to the gateway's
//    port) is refused, and Converse.js over BOSH on http:// works (plain
//    POSTs the proxy forwards): the fallback docs/deploy.md describes.
// Each time tinyproxy's log must show the CONNECT to the gateway's port, and
// the gateway's access log must name the proxy as the client. The proxy
// binds its upstream side to 127.0.0.9 (127.0.0.10 for the authenticating
// one), which differs from the 127.0.0.1 a direct connection comes from (a
// control checks that the access log names 127.0.0.1 for those), so a
// browser that bypassed the proxy would fail the test.
//
// Host names: the URLs use 127.0.0.1, not `localhost`. Through a proxy it is
// the proxy, not Chromium, that resolves the name in `CONNECT name:port`
// (--host-resolver-rules would not reach tinyproxy), and `localhost` may
// resolve to ::1 first where the gateway does not listen. The gateway's
// certificate has 127.0.0.1 in its SAN; Chromium trusts it through
// `--ignore-certificate-errors-spki-list` with the hash of its key (a pin,
// not `--ignore-certificate-errors`).
//
// Needs Debian's tinyproxy, prosody and chromium (scripts/install-deps).

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { openConversePage } from '../lib/converse-page.mjs';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { CHROMIUM, CHROMIUM_ARGS, freePorts, makeCert, makeTempDir, sleep, startEchoServer, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { startTinyproxy } from '../lib/tinyproxy.mjs';
import { login, trustCA, xml } from '../lib/xmpp.mjs';

const WS_ROUTE = '/xmpp-websocket';
const BOSH_ROUTE = '/http-bind';
const ECHO_ROUTE = '/echo';
const PROXY_FROM = '127.0.0.9'; // tinyproxy's `Bind`
const AUTH_PROXY_FROM = '127.0.0.10';
const PROXY443_FROM = '127.0.0.11';
const PROXY_USER = { username: 'fwd-user', password: 'fwd-Pa55-word' };
const STEP_MS = 15_000;

function gatewayConfig({ port, adminPort, cert, key, prosodyPort, caFile, echoPort }) {
  // No `origins`: the default same-origin policy admits the pages, served
  // as https://127.0.0.1:PORT (http:// on the plain gateway). No
  // trusted_proxies: a forward proxy is on the client's side, the gateway
  // sees (and logs) its address.
  return `# written by e2e/tests/forward-proxy.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
${cert ? `[[server.tls.certificate]]\ncert = ${toml(cert)}\nkey = ${toml(key)}` : ''}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[log]
format = "json"

[[route]]
path = ${toml(WS_ROUTE)}
kind = "xmpp-websocket"

[[route]]
path = ${toml(BOSH_ROUTE)}
kind = "bosh"

[[route]]
path = ${toml(ECHO_ROUTE)}
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

const spkiHash = (pemFile) =>
  crypto
    .createHash('sha256')
    .update(new crypto.X509Certificate(fs.readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

describe(`browsers behind a forward proxy (tinyproxy) reach ucgate (${UCGATE_BIN})`, { timeout: 180_000 }, () => {
  const env = { failed: false, stops: [] };
  let origin;

  before(async () => {
    try {
      env.dir = makeTempDir('ucgate-e2e-fwd-');
      const { cert, key } = await makeCert(env.dir);
      env.spki = spkiHash(cert);
      env.prosody = await startProsody({ domains: ['localhost'], modules: ['blocklist'] });
      env.stops.push(() => env.prosody.stop());
      env.echo = await startEchoServer();
      env.stops.push(() => env.echo.close());
      [env.port, env.adminPort] = await freePorts(2);
      origin = `https://127.0.0.1:${env.port}`;
      env.gw = await startGateway({
        dir: env.dir,
        adminPort: env.adminPort,
        config: gatewayConfig({
          port: env.port,
          adminPort: env.adminPort,
          cert,
          key,
          prosodyPort: env.prosody.port,
          caFile: env.prosody.caFile,
          echoPort: env.echo.port,
        }),
      });
      env.stops.push(() => env.gw.close());
      // A plain-HTTP gateway, and a proxy that allows CONNECT to port 443
      // only, as many do: what breaks and what still works.
      [env.plainPort, env.plainAdminPort] = await freePorts(2);
      const plainDir = `${env.dir}/plain`;
      fs.mkdirSync(plainDir);
      env.plainGw = await startGateway({
        dir: plainDir,
        adminPort: env.plainAdminPort,
        config: gatewayConfig({
          port: env.plainPort,
          adminPort: env.plainAdminPort,
          prosodyPort: env.prosody.port,
          caFile: env.prosody.caFile,
          echoPort: env.echo.port,
        }),
      });
      env.stops.push(() => env.plainGw.close());
      env.proxy443 = await startTinyproxy({ dir: env.dir, connectPorts: [443], bind: PROXY443_FROM, name: 'tinyproxy-443' });
      env.stops.push(() => env.proxy443.stop());
      env.proxy = await startTinyproxy({ dir: env.dir, connectPorts: [env.port], bind: PROXY_FROM, name: 'tinyproxy-open' });
      env.stops.push(() => env.proxy.stop());
      env.authProxy = await startTinyproxy({
        dir: env.dir,
        connectPorts: [env.port],
        bind: AUTH_PROXY_FROM,
        auth: PROXY_USER,
        name: 'tinyproxy-auth',
      });
      env.stops.push(() => env.authProxy.stop());
      // bob logs in straight to Prosody (STARTTLS, test CA): the gateway
      // sees only the browsers.
      env.untrust = trustCA(env.prosody.caFile);
      env.stops.push(() => env.untrust());
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 60_000 });

  after(async () => {
    if (env.failed) {
      for (const [name, text] of [
        ['gateway', env.gw?.log()],
        ['tinyproxy', env.proxy?.log()],
        ['tinyproxy (auth)', env.authProxy?.log()],
        ['plain gateway', env.plainGw?.log()],
        ['tinyproxy (443 only)', env.proxy443?.log()],
      ]) {
        if (text) console.error(`[e2e] ${name} log (tail):\n${text.split('\n').slice(-60).join('\n')}`);
      }
    }
    const errors = [];
    for (const stop of env.stops.reverse()) await withTimeout(stop(), 15_000, 'teardown').catch((e) => errors.push(e));
    if (env.dir && !(env.failed && process.env.E2E_KEEP_TMP)) fs.rmSync(env.dir, { recursive: true, force: true });
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  }, { timeout: 60_000 });

  /** The access-log lines (JSON) `gw` (the TLS gateway by default) wrote after `mark`. */
  const accessLines = (mark, gw = env.gw) =>
    gw
      .log()
      .slice(mark)
      .split('\n')
      .filter((l) => l.includes('"ucgate::access"'))
      .map((l) => {
        const j = JSON.parse(l);
        return { ...j, ...j.fields };
      });
  const clientHost = (a) => a.client.replace(/:\d+$/, '');

  /** Polls until `pred` holds for some access line after `mark`. */
  async function waitAccess(mark, pred, what, gw = env.gw) {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const hit = accessLines(mark, gw).find(pred);
      if (hit) return hit;
      await sleep(100);
    }
    throw new Error(`no access-log line for ${what}:\n${accessLines(mark, gw).map((a) => JSON.stringify(a)).join('\n')}`);
  }

  /**
   * A Chromium whose only way out is `proxy`: with `credentials`, through
   * Playwright's proxy option (it answers the proxy's 407 from
   * Fetch.authRequired); without, through the command line alone.
   */
  function launchBehind(proxy, credentials = null) {
    const args = [
      ...CHROMIUM_ARGS.filter((a) => a !== '--ignore-certificate-errors'),
      `--ignore-certificate-errors-spki-list=${env.spki}`,
    ];
    const proxyArgs = [`--proxy-server=${proxy.url}`, '--proxy-bypass-list=<-loopback>'];
    return chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      ...(credentials
        ? { args, proxy: { server: proxy.url, bypass: '<-loopback>', ...credentials } }
        : { args: [...args, ...proxyArgs] }),
    });
  }

  /** Run `fn(browser)` with a fresh Chromium behind `proxy`, always closed; logs printed on failure. */
  async function withBrowser(proxy, credentials, fn) {
    const browser = await launchBehind(proxy, credentials);
    try {
      await env.gw.abortCheck();
      await fn(browser);
      await env.gw.abortCheck();
    } catch (e) {
      env.failed = true;
      throw e;
    } finally {
      await withTimeout(browser.close(), 15_000, 'browser close').catch(() => {});
    }
  }

  /** A page at ORIGIN/e2e.html (fulfilled by Playwright) and its console. */
  async function blankPage(browser, pageOrigin = origin) {
    // The fulfilled document has no IP address space of its own: without the
    // permission Chromium's Local Network Access checks could block it.
    const context = await browser.newContext({ permissions: ['local-network-access'] });
    const page = await context.newPage();
    const consoleLines = [];
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    await page.route(`${pageOrigin}/e2e.html`, (route) =>
      route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>e2e</title>' }),
    );
    await page.goto(`${pageOrigin}/e2e.html`, { timeout: STEP_MS });
    return { page, consoleLines };
  }

  /** Opens a WebSocket to the echo route from `page`, echoes `text`, closes; resolves { echoed } or { error }. */
  const echoOver = (page, text, url = `wss://127.0.0.1:${env.port}${ECHO_ROUTE}`) =>
    page.evaluate(
      ([url, text]) =>
        new Promise((resolve) => {
          const ws = new WebSocket(url);
          ws.binaryType = 'arraybuffer'; // the tcp route sends binary messages
          const t = setTimeout(() => resolve({ error: 'no echo in 8 s' }), 8_000);
          ws.onopen = () => ws.send(text);
          ws.onmessage = (e) => {
            clearTimeout(t);
            ws.close(1000);
            resolve({ echoed: new TextDecoder().decode(e.data) });
          };
          ws.onclose = (e) => {
            clearTimeout(t);
            resolve({ error: `closed ${e.code}` });
          };
        }),
      [url, text],
    );

  /** tinyproxy `proxy` logged a CONNECT to the gateway's port since `before` (a count of its earlier CONNECTs). */
  function assertConnect(proxy, before, port = env.port) {
    const target = `127.0.0.1:${port}`;
    const connects = proxy.connects().slice(before);
    assert.ok(connects.includes(target), `no CONNECT ${target} in tinyproxy's log: ${JSON.stringify(connects)}\n${proxy.log()}`);
  }

  it('control: a direct client is logged as 127.0.0.1', { timeout: 20_000 }, async () => {
    const mark = env.gw.log().length;
    const res = await new Promise((resolve, reject) => {
      const req = https.get(
        `${origin}/nothing-here`,
        { ca: fs.readFileSync(`${env.dir}/cert.pem`), timeout: 5_000 },
        (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode));
        },
      );
      req.on('error', reject);
    });
    assert.equal(res, 404);
    const line = await waitAccess(mark, (a) => a.path === '/nothing-here', 'GET /nothing-here');
    assert.equal(clientHost(line), '127.0.0.1', JSON.stringify(line));
  });

  /**
   * bob (@xmpp/client, straight to Prosody) is online; Converse.js in a page
   * on `pageOrigin` logs in as alice with `settings` (its connection URL),
   * `check(state)` looks at what the page opened, then a chat message each
   * way and a logout.
   */
  async function converseChat(browser, { pageOrigin, passPaths, settings, check }) {
    const domain = env.prosody.domain;
    const bob = await login({
      service: `xmpp://127.0.0.1:${env.prosody.port}`,
      domain,
      username: env.prosody.users.bob.username,
      password: env.prosody.users.bob.password,
      resource: 'node-bob',
    });
    const context = await browser.newContext({ permissions: ['local-network-access'] });
    let c;
    try {
      await bob.xmpp.send(xml('presence'));
      c = await openConversePage(context, { origin: pageOrigin, passPaths });
      await c.start({ ...settings, jid: `alice@${domain}/converse`, password: env.prosody.users.alice.password });
      const aliceJid = await c.waitConnected();
      assert.match(aliceJid, new RegExp(`^alice@${domain}/`));
      check(await c.state());

      const body = `hello bob, from Converse.js through a proxy ${process.pid}`;
      const atBob = bob.nextMessage((m) => m.getChildText('body') === body, STEP_MS);
      atBob.catch(() => {});
      assert.equal(await c.send(`bob@${domain}`, body), body);
      assert.equal((await atBob).attrs.from, aliceJid);
      const reply = 'hi alice — bob';
      await bob.xmpp.send(xml('message', { to: aliceJid, type: 'chat' }, xml('body', {}, reply)));
      await c.waitMessage(`bob@${domain}`, reply);
      await c.logout();
    } catch (e) {
      if (c) console.error(`[e2e] browser console:\n  ${c.consoleLines.join('\n  ')}\n${JSON.stringify(await c.state().catch(() => null))}`);
      throw e;
    } finally {
      await context.close().catch(() => {});
      await bob.stop().catch(() => {});
    }
  }

  it('Converse.js over wss:// through the proxy logs in and chats; the gateway sees the proxy', { timeout: 50_000 }, async (t) => {
    const mark = env.gw.log().length;
    const before = env.proxy.connects().length;
    const wsUrl = `wss://127.0.0.1:${env.port}${WS_ROUTE}`;
    await withBrowser(env.proxy, null, (browser) =>
      converseChat(browser, {
        pageOrigin: origin,
        passPaths: [WS_ROUTE],
        settings: { websocket_url: wsUrl },
        check: ({ sockets, xhrs }) => {
          assert.deepEqual(sockets.map((s) => [s.url, s.opened, s.protocol]), [[wsUrl, true, 'xmpp']]);
          assert.deepEqual(xhrs, [], 'no BOSH');
        },
      }),
    );
    assertConnect(env.proxy, before);
    const ws = await waitAccess(mark, (a) => a.kind === 'websocket' && a.route === WS_ROUTE, 'the XMPP WebSocket');
    assert.equal(clientHost(ws), PROXY_FROM, JSON.stringify(ws));
    const all = accessLines(mark);
    assert.deepEqual(all.filter((a) => clientHost(a) !== PROXY_FROM), [], 'every client the gateway saw is the proxy');
    t.diagnostic(`tinyproxy CONNECTs: ${env.proxy.connects().slice(before).join(', ')}; gateway: ${ws.client} close ${ws.close}`);
  });

  /** Converse's XHRs to `boshUrl`: all POSTs, at least two answered, all 200. */
  const assertBosh = (boshUrl) => ({ sockets, xhrs }) => {
    assert.deepEqual(sockets, [], 'no WebSocket');
    const done = xhrs.filter((x) => x.url === boshUrl && x.status !== null);
    assert.ok(done.length >= 2 && done.every((x) => x.method === 'POST' && x.status === 200), JSON.stringify(xhrs));
  };

  it('Converse.js over BOSH on https:// through the proxy logs in and chats; the gateway sees the proxy', { timeout: 50_000 }, async (t) => {
    const mark = env.gw.log().length;
    const before = env.proxy.connects().length;
    const boshUrl = `${origin}${BOSH_ROUTE}`;
    await withBrowser(env.proxy, null, (browser) =>
      converseChat(browser, {
        pageOrigin: origin,
        passPaths: [BOSH_ROUTE],
        settings: { bosh_service_url: boshUrl },
        check: assertBosh(boshUrl),
      }),
    );
    assertConnect(env.proxy, before);
    const session = await waitAccess(mark, (a) => a.kind === 'bosh' && a.route === BOSH_ROUTE, 'the BOSH session');
    assert.equal(clientHost(session), PROXY_FROM, JSON.stringify(session));
    const all = accessLines(mark);
    assert.ok(all.filter((a) => a.kind === 'http' && a.route === BOSH_ROUTE).length >= 2, JSON.stringify(all));
    assert.deepEqual(all.filter((a) => clientHost(a) !== PROXY_FROM), [], 'every client the gateway saw is the proxy');
    t.diagnostic(`gateway: BOSH session from ${session.client}, ${session.requests} requests`);
  });

  it('a page echoes over wss:// on a tunnel route through the proxy; the gateway sees the proxy', { timeout: 40_000 }, async () => {
    const mark = env.gw.log().length;
    const before = env.proxy.connects().length;
    const accepted = env.echo.accepted;
    await withBrowser(env.proxy, null, async (browser) => {
      const { page, consoleLines } = await blankPage(browser);
      const got = await echoOver(page, 'through tinyproxy');
      assert.deepEqual(got, { echoed: 'through tinyproxy' }, consoleLines.join('\n'));
    });
    assert.equal(env.echo.accepted, accepted + 1);
    assertConnect(env.proxy, before);
    const ws = await waitAccess(mark, (a) => a.kind === 'websocket' && a.route === ECHO_ROUTE, 'the echo WebSocket');
    assert.equal(clientHost(ws), PROXY_FROM, JSON.stringify(ws));
    assert.deepEqual(accessLines(mark).filter((a) => clientHost(a) !== PROXY_FROM), []);
  });

  it('through a proxy that requires Basic authentication: echoes with the credentials, fails without', { timeout: 50_000 }, async (t) => {
    // With the credentials. Playwright answers a proxy's 407 for requests
    // (CDP Fetch.authRequired), not for a WebSocket handshake; once a
    // request has authenticated, Chromium sends the credentials it keeps
    // for the proxy on later tunnels, the WebSocket's included. A page
    // loaded through the proxy would have done that; this one is fulfilled
    // by Playwright, so it fetches once first.
    let mark = env.gw.log().length;
    let before = env.authProxy.connects().length;
    let accepted = env.echo.accepted;
    await withBrowser(env.authProxy, PROXY_USER, async (browser) => {
      const { page, consoleLines } = await blankPage(browser);
      const status = await page.evaluate((url) => fetch(url).then((r) => r.status), `${origin}/first-request`);
      assert.equal(status, 404, 'the first request went through the proxy to the gateway');
      const got = await echoOver(page, 'through an authenticating tinyproxy');
      assert.deepEqual(got, { echoed: 'through an authenticating tinyproxy' }, consoleLines.join('\n'));
    });
    assert.equal(env.echo.accepted, accepted + 1);
    assertConnect(env.authProxy, before);
    const ws = await waitAccess(mark, (a) => a.kind === 'websocket' && a.route === ECHO_ROUTE, 'the echo WebSocket');
    assert.equal(clientHost(ws), AUTH_PROXY_FROM, JSON.stringify(ws));
    assert.deepEqual(accessLines(mark).filter((a) => clientHost(a) !== AUTH_PROXY_FROM), []);

    // Without: the proxy answers 407 to every CONNECT, nothing reaches the gateway.
    mark = env.gw.log().length;
    before = env.authProxy.connects().length;
    const established = env.authProxy.established();
    accepted = env.echo.accepted;
    await withBrowser(env.authProxy, null, async (browser) => {
      const { page, consoleLines } = await blankPage(browser);
      const got = await echoOver(page, 'no credentials');
      assert.match(got.error ?? '', /^closed 1006$/, JSON.stringify(got));
      assert.ok(consoleLines.some((l) => /Proxy authentication failed|407/.test(l)), consoleLines.join('\n'));
      t.diagnostic(`without credentials: ${consoleLines.join(' | ')}`);
    });
    assertConnect(env.authProxy, before); // it was asked…
    assert.equal(env.authProxy.established(), established, 'tinyproxy opened no connection upstream');
    assert.equal(env.echo.accepted, accepted);
    await sleep(300);
    assert.deepEqual(accessLines(mark), [], 'nothing reached the gateway');
  });
  it('a proxy that allows CONNECT to 443 only: ws:// fails, a non-CONNECT upgrade loses its Upgrade header, BOSH over http:// works', { timeout: 50_000 }, async (t) => {
    const plainOrigin = `http://127.0.0.1:${env.plainPort}`;
    const target = `127.0.0.1:${env.plainPort}`;
    // 1. A WebSocket handshake sent to the proxy as an ordinary request (what
    //    a client or an intercepting proxy does without CONNECT): Upgrade and
    //    Connection are hop-by-hop, the proxy drops them, the gateway gets a
    //    plain GET and answers 426.
    let mark = env.plainGw.log().length;
    const raw = await new Promise((resolve, reject) => {
      const sock = net.connect(env.proxy443.port, '127.0.0.1', () =>
        sock.write(
          `GET ${plainOrigin}${ECHO_ROUTE} HTTP/1.1\r\nHost: ${target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: ${plainOrigin}\r\n\r\n`,
        ),
      );
      let got = '';
      sock.setEncoding('utf8').on('data', (d) => (got += d));
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
      sock.setTimeout(8_000, () => sock.destroy(new Error(`no answer through the proxy; got ${JSON.stringify(got)}`)));
    });
    assert.match(raw, /^HTTP\/1\.[01] 426 /, raw);
    const plainGet = await waitAccess(mark, (a) => a.path === ECHO_ROUTE, 'the GET the proxy forwarded', env.plainGw);
    assert.equal(plainGet.status, 426);
    assert.equal(clientHost(plainGet), PROXY443_FROM);

    // 2. Chromium tunnels a ws:// WebSocket through the proxy with CONNECT to
    //    the gateway's port: refused (403), nothing reaches the gateway.
    mark = env.plainGw.log().length;
    let before = env.proxy443.connects().length;
    const established = env.proxy443.established();
    const accepted = env.echo.accepted;
    await withBrowser(env.proxy443, null, async (browser) => {
      const { page, consoleLines } = await blankPage(browser, plainOrigin);
      const got = await echoOver(page, 'ws:// through a 443-only proxy', `ws://${target}${ECHO_ROUTE}`);
      assert.deepEqual(got, { error: 'closed 1006' }, consoleLines.join('\n'));
      t.diagnostic(`ws:// through the 443-only proxy: ${consoleLines.join(' | ')}`);
    });
    assertConnect(env.proxy443, before, env.plainPort);
    assert.equal(env.proxy443.established(), established, 'tinyproxy opened no tunnel');
    assert.equal(env.echo.accepted, accepted);
    assert.deepEqual(accessLines(mark, env.plainGw), [], 'nothing reached the gateway');

    // 3. BOSH over http:// through the same proxy: ordinary POSTs it forwards.
    mark = env.plainGw.log().length;
    before = env.proxy443.requests().length;
    const boshUrl = `${plainOrigin}${BOSH_ROUTE}`;
    await withBrowser(env.proxy443, null, (browser) =>
      converseChat(browser, {
        pageOrigin: plainOrigin,
        passPaths: [BOSH_ROUTE],
        settings: { bosh_service_url: boshUrl },
        check: assertBosh(boshUrl),
      }),
    );
    const posts = env.proxy443.requests().slice(before).filter((r) => r === `POST ${boshUrl}`);
    assert.ok(posts.length >= 2, `tinyproxy forwarded no BOSH POST: ${JSON.stringify(env.proxy443.requests().slice(before))}`);
    const session = await waitAccess(mark, (a) => a.kind === 'bosh' && a.route === BOSH_ROUTE, 'the BOSH session', env.plainGw);
    assert.equal(clientHost(session), PROXY443_FROM, JSON.stringify(session));
    assert.deepEqual(accessLines(mark, env.plainGw).filter((a) => clientHost(a) !== PROXY443_FROM), []);
    t.diagnostic(`BOSH through the 443-only proxy: ${posts.length} POSTs forwarded, session from ${session.client}`);
  });
});
