// End-to-end: ucgate behind real reverse proxies (issue 15 item 2), each run
// from the documented example of config/proxies/ on free loopback ports:
//
//   HAProxy, TCP mode, send-proxy-v2   → a gateway with proxy_protocol = true
//   HAProxy, HTTP mode, TLS, forwardfor → a gateway with trusted_proxies only
//   nginx, TLS, WebSocket + BOSH proxy  → the same gateway
//
// Through each, alice (@xmpp/client over WebSocket) and bob (Strophe.js over
// BOSH) log in to a real Prosody and chat both ways. The clients bind their
// own loopback addresses (127.0.0.3 and up) while the proxies reach the
// gateway from 127.0.0.1, and the gateway's log must name the clients'
// addresses, never the proxy's. A page on https://… behind nginx is
// same-origin for the gateway's plain listener; what a client writes into
// X-Forwarded-For or Forwarded itself changes nothing.
//
// Needs Debian's haproxy, nginx and prosody (scripts/install-deps).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket as WS } from 'ws';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { startHaproxy } from '../lib/haproxy.mjs';
import { freePorts, makeCert, makeTempDir, withTimeout } from '../lib/harness.mjs';
import { startNginx } from '../lib/nginx.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { $msg, $pres, stropheClient, XMLHttpRequestWithXML } from '../lib/strophe-node.mjs';
import { login, xml } from '../lib/xmpp.mjs';

const WS_ROUTE = '/xmpp-websocket';
const BOSH_ROUTE = '/http-bind';
const PROXY_ADDR = '127.0.0.1';

function gatewayConfig({ port, adminPort, prosodyPort, caFile, proxyProtocol }) {
  return `# written by e2e/tests/proxies.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
trusted_proxies = [${toml(PROXY_ADDR)}]
proxy_protocol = ${proxyProtocol}

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

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

describe(`ucgate behind HAProxy and nginx (${UCGATE_BIN})`, { timeout: 240_000 }, () => {
  const env = { teardown: [], failed: false, agents: [] };

  before(async () => {
    try {
      await setup();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 90_000 });

  async function setup() {
    env.dir = makeTempDir('ucgate-e2e-proxies-');
    env.teardown.push(() => {
      if (env.failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${env.dir}`);
      else fs.rmSync(env.dir, { recursive: true, force: true });
    });
    env.prosody = await startProsody({ domains: ['localhost'] });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-60).join('\n')}`);
      await env.prosody.stop();
    });
    env.domain = env.prosody.domain;
    env.users = env.prosody.users;
    // The proxies' own certificate (localhost and 127.0.0.1), trusted by the clients.
    const { cert, key } = await makeCert(env.dir);
    env.ca = fs.readFileSync(cert);
    const pem = path.join(env.dir, 'haproxy.pem');
    fs.writeFileSync(pem, Buffer.concat([fs.readFileSync(cert), fs.readFileSync(key)]));

    const [ppPort, ppAdmin, fwPort, fwAdmin, tcpPort, httpPort, nginxPort] = await freePorts(7);
    const gateway = async (name, port, adminPort, proxyProtocol) => {
      const dir = path.join(env.dir, name);
      fs.mkdirSync(dir);
      const gw = await startGateway({
        dir,
        adminPort,
        config: gatewayConfig({ port, adminPort, prosodyPort: env.prosody.port, caFile: env.prosody.caFile, proxyProtocol }),
      });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] ${name} gateway log (tail):\n${gw.log().split('\n').slice(-60).join('\n')}`);
        await gw.close();
      });
      return gw;
    };
    env.gwPP = await gateway('gw-proxy-protocol', ppPort, ppAdmin, true);
    env.gwFw = await gateway('gw-forwarded', fwPort, fwAdmin, false);
    env.gwFwPort = fwPort;

    const proxy = async (name, start) => {
      const p = await start();
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] ${name} output:\n${p.log()}`);
        await p.stop();
      });
      return p;
    };
    env.haproxyTcp = await proxy('haproxy (TCP)', () =>
      startHaproxy({ dir: env.dir, example: 'haproxy-tcp.cfg', port: tcpPort, ucgate: `127.0.0.1:${ppPort}` }),
    );
    env.haproxyHttp = await proxy('haproxy (HTTP)', () =>
      startHaproxy({ dir: env.dir, example: 'haproxy-http.cfg', port: httpPort, ucgate: `127.0.0.1:${fwPort}`, pem }),
    );
    env.nginx = await proxy('nginx', () =>
      startNginx({ dir: env.dir, port: nginxPort, ucgate: `127.0.0.1:${fwPort}`, cert, key }),
    );
    env.nginxPort = nginxPort;
  }

  after(async () => {
    for (const a of env.agents) a.destroy();
    const errors = [];
    for (const fn of env.teardown.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step');
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  });

  /** Runs a test body; a failure prints the logs at teardown. */
  const step = async (fn) => {
    try {
      await fn();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  /** The global WebSocket @xmpp/client uses, bound to `local` and trusting the proxies' certificate. */
  function webSocketFrom(local) {
    const ca = env.ca;
    globalThis.WebSocket = class extends WS {
      constructor(url, protocols) {
        super(url, protocols, { localAddress: local, ca });
      }
    };
  }

  /** The global XMLHttpRequest Strophe uses, bound to `local` (http and https). */
  function xhrFrom(local) {
    const httpAgent = new http.Agent({ localAddress: local, keepAlive: true });
    const httpsAgent = new https.Agent({ localAddress: local, keepAlive: true, ca: env.ca });
    env.agents.push(httpAgent, httpsAgent);
    class Bound extends XMLHttpRequestWithXML {}
    Bound.prototype.nodejsHttpAgent = httpAgent;
    Bound.prototype.nodejsHttpsAgent = httpsAgent;
    globalThis.XMLHttpRequest = Bound;
  }

  /** Log lines (JSON) of `gw` written after `from` characters, with every needle. */
  const lines = (gw, from, ...needles) =>
    gw
      .log()
      .slice(from)
      .split('\n')
      .filter((l) => needles.every((n) => l.includes(n)));

  async function waitLine(gw, from, needles, ms = 10_000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = lines(gw, from, ...needles);
      if (hit.length) return hit;
      if (Date.now() > deadline) {
        throw new Error(`no gateway log line with ${JSON.stringify(needles)}:\n${gw.log().slice(from).slice(-6000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * alice over WebSocket (from `wsFrom`) and bob over BOSH (from
   * `boshFrom`) log in through a proxy and chat both ways; the gateway `gw`
   * must log their own addresses.
   */
  async function chatThrough({ gw, wsUrl, boshUrl, wsFrom, boshFrom, t }) {
    const mark = gw.log().length;
    webSocketFrom(wsFrom);
    const alice = await login({
      service: wsUrl,
      domain: env.domain,
      username: env.users.alice.username,
      password: env.users.alice.password,
      resource: 'ws',
    });
    xhrFrom(boshFrom);
    const bob = stropheClient(boshUrl);
    try {
      await alice.xmpp.send(xml('presence'));
      const bobJid = `bob@${env.domain}/bosh`;
      const st = await bob.connect(bobJid, env.users.bob.password);
      assert.equal(st.name, 'CONNECTED', `Strophe statuses: ${JSON.stringify(bob.statuses.map((s) => s.name))}`);
      bob.send($pres().tree());
      const aliceJid = alice.xmpp.jid.toString();

      const id1 = `px-${process.pid}-${mark}-1`;
      const atBob = bob.nextMessage((m) => m.id === id1, 20_000);
      atBob.catch(() => {});
      await alice.xmpp.send(xml('message', { to: bobJid, type: 'chat', id: id1 }, xml('body', {}, 'hi bob, over WebSocket')));
      assert.equal((await atBob).body, 'hi bob, over WebSocket');

      const id2 = `px-${process.pid}-${mark}-2`;
      const atAlice = alice.nextMessage((m) => m.attrs.id === id2, 20_000);
      atAlice.catch(() => {});
      bob.send($msg({ to: aliceJid, type: 'chat', id: id2 }).c('body').t('hi alice, over BOSH').tree());
      const got = await atAlice;
      assert.equal(got.getChildText('body'), 'hi alice, over BOSH');
      assert.equal(got.attrs.from, bobJid);

      assert.equal((await bob.disconnect('e2e done')).name, 'DISCONNECTED');
    } finally {
      await bob.close();
      await alice.stop().catch(() => {});
    }
    // The gateway saw the clients, not the proxy.
    const ws = await waitLine(gw, mark, ['WebSocket opened', `"peer":"${wsFrom}:`]);
    const bosh = await waitLine(gw, mark, ['BOSH session ended', `"peer":"${boshFrom}:`]);
    const proxyAsClient = [
      ...lines(gw, mark, 'WebSocket opened', `"peer":"${PROXY_ADDR}:`),
      ...lines(gw, mark, 'BOSH session ended', `"peer":"${PROXY_ADDR}:`),
    ];
    assert.deepEqual(proxyAsClient, [], 'the proxy is never the client');
    t.diagnostic(`gateway saw ${JSON.parse(ws[0]).peer} (WebSocket) and ${JSON.parse(bosh[0]).peer} (BOSH)`);
  }

  it('HAProxy in TCP mode with send-proxy-v2: the PROXY header names the clients', { timeout: 60_000 }, (t) =>
    step(() =>
      chatThrough({
        t,
        gw: env.gwPP,
        wsUrl: env.haproxyTcp.url('ws', WS_ROUTE),
        boshUrl: env.haproxyTcp.url('http', BOSH_ROUTE),
        wsFrom: '127.0.0.3',
        boshFrom: '127.0.0.4',
      }),
    ),
  );

  it('HAProxy in HTTP mode (TLS, option forwardfor): X-Forwarded-For names the clients', { timeout: 60_000 }, (t) =>
    step(() =>
      chatThrough({
        t,
        gw: env.gwFw,
        wsUrl: env.haproxyHttp.url('wss', WS_ROUTE),
        boshUrl: env.haproxyHttp.url('https', BOSH_ROUTE),
        wsFrom: '127.0.0.5',
        boshFrom: '127.0.0.6',
      }),
    ),
  );

  it('nginx (TLS, WebSocket and BOSH proxy): X-Forwarded-For names the clients', { timeout: 60_000 }, (t) =>
    step(() =>
      chatThrough({
        t,
        gw: env.gwFw,
        wsUrl: env.nginx.url('wss', WS_ROUTE),
        boshUrl: env.nginx.url('https', BOSH_ROUTE),
        wsFrom: '127.0.0.7',
        boshFrom: '127.0.0.8',
      }),
    ),
  );

  /** A WebSocket handshake: 101 (then closed) or the refusal's HTTP status. */
  function handshake(url, { origin, headers, local } = {}) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const ws = new WS(url, ['xmpp'], { origin, headers, localAddress: local, ca: env.ca });
        ws.once('open', () => {
          ws.close();
          resolve(101);
        });
        ws.once('unexpected-response', (_req, res) => {
          res.resume();
          resolve(res.statusCode);
        });
        ws.once('error', reject);
      }),
      10_000,
      `WebSocket handshake to ${url}`,
    );
  }

  /** A CORS preflight for the BOSH route through `base`: status and Access-Control-Allow-Origin. */
  function preflight(base, origin) {
    return withTimeout(
      new Promise((resolve, reject) => {
        const req = https.request(
          `${base}${BOSH_ROUTE}`,
          {
            method: 'OPTIONS',
            ca: env.ca,
            agent: false,
            headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
          },
          (res) => {
            res.resume();
            resolve({ status: res.statusCode, allow: res.headers['access-control-allow-origin'] });
          },
        );
        req.once('error', reject);
        req.end();
      }),
      10_000,
      'BOSH preflight',
    );
  }

  it('a page on https:// behind nginx is same-origin for the plain listener behind it', { timeout: 60_000 }, () =>
    step(async () => {
      const page = `https://127.0.0.1:${env.nginxPort}`;
      const wss = env.nginx.url('wss', WS_ROUTE);
      assert.equal(await handshake(wss, { origin: page }), 101, 'the page served by nginx over https');
      assert.equal(await handshake(wss, { origin: 'https://evil.example' }), 403, 'another site');
      assert.equal(
        await handshake(wss, { origin: `http://127.0.0.1:${env.nginxPort}` }),
        403,
        'http:// is not the scheme the client used',
      );
      // The same page straight at the gateway: its own scheme is http.
      assert.equal(await handshake(`ws://127.0.0.1:${env.gwFwPort}${WS_ROUTE}`, { origin: page }), 403);
      const ok = await preflight(page, page);
      assert.deepEqual(ok, { status: 204, allow: page }, 'BOSH CORS, same origin');
      const evil = await preflight(page, 'https://evil.example');
      assert.equal(evil.status, 403, 'BOSH CORS, another site');
    }),
  );

  it('what a client writes into X-Forwarded-For or Forwarded itself changes nothing', { timeout: 60_000 }, () =>
    step(async () => {
      const spoof = { 'x-forwarded-for': '203.0.113.9', forwarded: 'for=203.0.113.10;proto=https' };
      const cases = [
        [env.gwFw, env.nginx.url('wss', WS_ROUTE), '127.0.0.9'],
        [env.gwFw, env.haproxyHttp.url('wss', WS_ROUTE), '127.0.0.10'],
        [env.gwPP, env.haproxyTcp.url('ws', WS_ROUTE), '127.0.0.11'],
      ];
      for (const [gw, url, local] of cases) {
        const mark = gw.log().length;
        assert.equal(await handshake(url, { headers: spoof, local }), 101, url);
        await waitLine(gw, mark, ['WebSocket opened', `"peer":"${local}:`]);
        assert.ok(!gw.log().slice(mark).includes('203.0.113.'), `${url}: the spoofed addresses reached the log`);
      }
    }),
  );
});
