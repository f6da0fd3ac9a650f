// End-to-end: ucgate in front of two real XMPP servers at once, Debian's
// ejabberd 23.01 (domain ejabberd.test, lib/ejabberd.mjs, run from
// config/pairing/ejabberd.yml) and Prosody (domain localhost,
// lib/prosody.mjs, run from config/pairing/prosody.cfg.lua), both requiring STARTTLS on c2s. One gateway, two
// [xmpp.domains] tables, a WebSocket route and a BOSH route:
//  * Strophe.js over BOSH and @xmpp/client over WebSocket log in to
//    ejabberd through ucgate and chat both ways; ejabberd sees both
//    sessions over TLS (ejabberdctl connected_users_info: c2s_tls);
//  * a Prosody user (through the same gateway) and an ejabberd user chat
//    both ways over server-to-server between the two (loopback, STARTTLS +
//    dialback; each resolves the other's domain to its free s2s port);
//  * Converse.js in headless Chromium logs in to ejabberd through ucgate,
//    over WebSocket and over BOSH, and chats with a user there.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/ejabberd.test.mjs
//
// Needs Debian's ejabberd, prosody and chromium (scripts/install-deps).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { openConversePage } from '../lib/converse-page.mjs';
import { startEjabberd } from '../lib/ejabberd.mjs';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, launchChromium, makeTempDir, metricValue, scrapeMetrics, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { $msg, $pres, stropheClient } from '../lib/strophe-node.mjs';
import { ensureWebSocket, login, sendChat, xml } from '../lib/xmpp.mjs';

const WS_ROUTE = '/xmpp-websocket';
const BOSH_ROUTE = '/http-bind';
const EJ_DOMAIN = 'ejabberd.test';
const STEP_MS = 20_000;

const tail = (text, n = 60) => text.split('\n').slice(-n).join('\n');

function gatewayConfig({ port, adminPort, ejabberd, prosody }) {
  return `# written by e2e/tests/ejabberd.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(WS_ROUTE)}
kind = "xmpp-websocket"

[[route]]
path = ${toml(BOSH_ROUTE)}
kind = "bosh"

[xmpp.domains.${toml(ejabberd.domain)}]
address = ${toml(`127.0.0.1:${ejabberd.port}`)}
tls = "starttls"
ca_file = ${toml(ejabberd.caFile)}

[xmpp.domains.${toml(prosody.domain)}]
address = ${toml(`127.0.0.1:${prosody.port}`)}
tls = "starttls"
ca_file = ${toml(prosody.caFile)}
`;
}

describe(`ucgate (${UCGATE_BIN}) in front of ejabberd and Prosody`, { timeout: 150_000 }, () => {
  const env = { failed: false, stops: [] };

  before(async () => {
    try {
      await ensureWebSocket();
      env.dir = makeTempDir('ucgate-e2e-ejabberd-');
      env.stops.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
      const [ejS2s, prosodyS2s, port, adminPort] = await freePorts(4);
      env.port = port;
      env.adminPort = adminPort;
      // Each server reaches the other's domain on loopback: ejabberd dials
      // `localhost` (its inetrc) on Prosody's s2s port, Prosody finds an SRV
      // record for ejabberd.test pointing at ejabberd's.
      const [ejabberd, prosody] = await Promise.allSettled([
        startEjabberd({ domain: EJ_DOMAIN, s2sPort: ejS2s, s2sOutPort: prosodyS2s, startTimeoutMs: 25_000 }),
        startProsody({
          domains: ['localhost'],
          pairing: true, // config/pairing/prosody.cfg.lua
          s2s: { port: prosodyS2s, peers: { [EJ_DOMAIN]: ejS2s } },
        }),
      ]);
      for (const [name, r] of [['ejabberd', ejabberd], ['prosody', prosody]]) {
        if (r.status === 'fulfilled') {
          env[name] = r.value;
          env.stops.push(async () => {
            if (env.failed) console.error(`[e2e] ${name} log (tail):\n${tail(r.value.log(), 80)}`);
            await r.value.stop();
          });
        }
      }
      for (const r of [ejabberd, prosody]) if (r.status === 'rejected') throw r.reason;
      env.gw = await startGateway({
        dir: env.dir,
        adminPort,
        config: gatewayConfig({ port, adminPort, ejabberd: env.ejabberd, prosody: env.prosody }),
      });
      env.stops.push(async () => {
        if (env.failed) console.error(`[e2e] gateway log (tail):\n${tail(env.gw.log())}`);
        await env.gw.close();
      });
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 50_000 });

  after(async () => {
    const errors = [];
    for (const fn of env.stops.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 25_000, 'teardown step');
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  }, { timeout: 60_000 });

  const wsService = () => `ws://127.0.0.1:${env.port}${WS_ROUTE}`;
  const boshUrl = () => `http://127.0.0.1:${env.port}${BOSH_ROUTE}`;

  /** Run `fn({ track, strophe })`; every client made is closed however it ends. */
  const step = async (fn) => {
    const xmpps = [];
    const strophes = [];
    const track = (c) => (xmpps.push(c), c);
    const strophe = () => {
      const s = stropheClient(boshUrl());
      strophes.push(s);
      return s;
    };
    try {
      await env.gw.abortCheck();
      try {
        await fn({ track, strophe });
      } catch (e) {
        for (const s of strophes) {
          console.error(`[e2e] Strophe statuses ${JSON.stringify(s.statuses)}`);
          console.error(`[e2e] Strophe raw (last 20):\n${s.raw.slice(-20).map((r) => `${r.dir}: ${r.data.slice(0, 600)}`).join('\n')}`);
        }
        throw e;
      } finally {
        for (const s of strophes) await withTimeout(s.close(), 15_000, 'Strophe close').catch(() => {});
        for (const c of xmpps) await c.stop().catch(() => {});
      }
      await env.gw.abortCheck();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  const wsLogin = (server, name, resource) =>
    login({
      service: wsService(),
      domain: server.domain,
      username: server.users[name].username,
      password: server.users[name].password,
      resource,
    });

  /** Strophe.js over the gateway's BOSH route: CONNECTED as `name@domain/resource`, then available. */
  async function boshLogin(strophe, server, name, resource) {
    const s = strophe();
    const jid = `${name}@${server.domain}/${resource}`;
    const st = await s.connect(jid, server.users[name].password);
    assert.equal(st.name, 'CONNECTED', `Strophe statuses: ${JSON.stringify(s.statuses)}`);
    assert.equal(s.jid, jid);
    s.send($pres().tree());
    return s;
  }

  it('Strophe.js over BOSH and @xmpp/client over WebSocket log in to ejabberd through ucgate and chat', async (t) => {
    await step(async ({ track, strophe }) => {
      const bob = track(await wsLogin(env.ejabberd, 'bob', 'ws-bob'));
      assert.equal(bob.xmpp.jid.toString(), `bob@${EJ_DOMAIN}/ws-bob`);
      await bob.xmpp.send(xml('presence'));
      const alice = await boshLogin(strophe, env.ejabberd, 'alice', 'bosh-alice');
      // ejabberd's features reach the BOSH client without <starttls/>: the
      // gateway did STARTTLS itself.
      const features = alice.raw.filter((r) => r.dir === 'in' && /<(stream:)?features[\s>/]/.test(r.data));
      assert.ok(features.length >= 2, JSON.stringify(features));
      for (const f of features) assert.ok(!f.data.includes('starttls'), `starttls offered over BOSH: ${f.data}`);

      const toAlice = `hello alice over BOSH, from bob over WebSocket ${process.pid}`;
      await bob.xmpp.send(xml('message', { to: alice.jid, type: 'chat', id: 'ej-1' }, xml('body', {}, toAlice)));
      const got = await alice.nextMessage((m) => m.id === 'ej-1', STEP_MS);
      assert.deepEqual(
        { from: got.from, to: got.to, type: got.type, body: got.body },
        { from: `bob@${EJ_DOMAIN}/ws-bob`, to: alice.jid, type: 'chat', body: toAlice },
      );
      const toBob = `hi bob, ejabberd via ucgate BOSH ${process.pid}`;
      const atBob = bob.nextMessage((m) => m.attrs.id === 'ej-2', STEP_MS);
      alice.send($msg({ to: bob.xmpp.jid.toString(), type: 'chat', id: 'ej-2' }).c('body').t(toBob).tree());
      const m = await atBob;
      assert.equal(m.attrs.from, alice.jid);
      assert.equal(m.getChildText('body'), toBob);

      // ejabberd's own view: both sessions came in over TLS (the gateway's STARTTLS).
      const info = await env.ejabberd.ctl(['connected_users_info']);
      const lines = info.split('\n').filter((l) => l.startsWith(`alice@${EJ_DOMAIN}/bosh-alice`) || l.startsWith(`bob@${EJ_DOMAIN}/ws-bob`));
      assert.equal(lines.length, 2, info);
      for (const l of lines) assert.match(l, /\tc2s_tls\t127\.0\.0\.1\t/, l);

      const { samples } = await scrapeMetrics(env.adminPort);
      assert.equal(metricValue(samples, 'ucgate_bosh_sessions_active'), 1);
      assert.equal((await alice.disconnect()).name, 'DISCONNECTED');
      t.diagnostic(`ejabberd sessions: ${lines.join(' | ')}`);
    });
  });

  it('a Prosody user and an ejabberd user, both through ucgate, chat over s2s between the servers', async (t) => {
    await step(async ({ track, strophe }) => {
      const pAlice = track(await wsLogin(env.prosody, 'alice', 'ws-palice'));
      await pAlice.xmpp.send(xml('presence'));
      const eBob = await boshLogin(strophe, env.ejabberd, 'bob', 'bosh-ebob');

      // Prosody → ejabberd (the first stanza opens the s2s connections and
      // dialback both ways: a longer bound).
      const toBob = `hello bob@${EJ_DOMAIN} from alice@localhost ${process.pid}`;
      await pAlice.xmpp.send(xml('message', { to: eBob.jid, type: 'chat', id: 's2s-1' }, xml('body', {}, toBob)));
      const got = await eBob.nextMessage((m) => m.id === 's2s-1', 30_000);
      assert.deepEqual({ from: got.from, body: got.body }, { from: pAlice.xmpp.jid.toString(), body: toBob });

      // ejabberd → Prosody
      const toAlice = `hi alice@localhost, from ejabberd ${process.pid}`;
      const atAlice = pAlice.nextMessage((m) => m.attrs.id === 's2s-2', 30_000);
      eBob.send($msg({ to: pAlice.xmpp.jid.toString(), type: 'chat', id: 's2s-2' }).c('body').t(toAlice).tree());
      const m = await atAlice;
      assert.equal(m.attrs.from, eBob.jid);
      assert.equal(m.getChildText('body'), toAlice);

      // ejabberd's side of the link to Prosody, both directions.
      const out = (await env.ejabberd.ctl(['outgoing_s2s_number'])).trim();
      const inc = (await env.ejabberd.ctl(['incoming_s2s_number'])).trim();
      assert.ok(Number(out) >= 1 && Number(inc) >= 1, `ejabberd s2s: outgoing ${out}, incoming ${inc}`);
      t.diagnostic(`ejabberd s2s connections: outgoing ${out}, incoming ${inc}`);
    });
  });

  it('@xmpp/client users of both servers on the same WebSocket route: the gateway picks the server by domain', async () => {
    await step(async ({ track }) => {
      const e = track(await wsLogin(env.ejabberd, 'alice', 'ws-ealice'));
      const p = track(await wsLogin(env.prosody, 'bob', 'ws-pbob'));
      await e.xmpp.send(xml('presence'));
      await p.xmpp.send(xml('presence'));
      const one = await sendChat(p, e, `from Prosody's bob to ejabberd's alice ${process.pid}`, 30_000);
      assert.equal(one.received.attrs.from, one.fromJid);
      const two = await sendChat(e, p, `from ejabberd's alice to Prosody's bob ${process.pid}`, 30_000);
      assert.equal(two.received.attrs.from, two.fromJid);
    });
  });

  const transports = {
    WebSocket: {
      passPaths: [WS_ROUTE],
      settings: () => ({ websocket_url: `ws://localhost:${env.port}${WS_ROUTE}` }),
      check({ sockets, xhrs }) {
        assert.deepEqual(sockets.map((s) => [s.url, s.opened, s.protocol]), [[`ws://localhost:${env.port}${WS_ROUTE}`, true, 'xmpp']]);
        assert.deepEqual(xhrs, [], 'no BOSH');
      },
    },
    BOSH: {
      passPaths: [BOSH_ROUTE],
      settings: () => ({ bosh_service_url: `http://localhost:${env.port}${BOSH_ROUTE}` }),
      check({ sockets, xhrs }) {
        assert.deepEqual(sockets, [], 'no WebSocket');
        const done = xhrs.filter((x) => x.url === `http://localhost:${env.port}${BOSH_ROUTE}` && x.status !== null);
        assert.ok(done.length >= 2 && done.every((x) => x.method === 'POST' && x.status === 200), JSON.stringify(xhrs));
      },
    },
  };

  for (const [name, transport] of Object.entries(transports)) {
    it(`Converse.js in headless Chromium logs in to ejabberd through ucgate over ${name} and chats`, { timeout: 60_000 }, async (t) => {
      await step(async ({ track }) => {
        const bob = track(await wsLogin(env.ejabberd, 'bob', `node-bob-${name}`));
        await bob.xmpp.send(xml('presence'));
        const browser = await launchChromium();
        let c;
        try {
          // The page is on the gateway's own origin (Playwright serves it):
          // the routes' default same-origin policy admits it.
          const context = await browser.newContext({ permissions: ['local-network-access'] });
          c = await openConversePage(context, { origin: `http://localhost:${env.port}`, passPaths: transport.passPaths });
          const resource = `converse-${name.toLowerCase()}`;
          await c.start({ ...transport.settings(), jid: `alice@${EJ_DOMAIN}/${resource}`, password: env.ejabberd.users.alice.password });
          const aliceJid = await c.waitConnected();
          assert.equal(aliceJid, `alice@${EJ_DOMAIN}/${resource}`);
          transport.check(await c.state());

          const body = `hello bob, from Converse.js over ${name} through ucgate to ejabberd ${process.pid}`;
          const atBob = bob.nextMessage((m) => m.getChildText('body') === body, STEP_MS);
          atBob.catch(() => {});
          assert.equal(await c.send(`bob@${EJ_DOMAIN}`, body), body);
          assert.equal((await atBob).attrs.from, aliceJid);
          const reply = `hi alice — bob on ejabberd (${name}) ${process.pid}`;
          await bob.xmpp.send(xml('message', { to: aliceJid, type: 'chat' }, xml('body', {}, reply)));
          await c.waitMessage(`bob@${EJ_DOMAIN}`, reply);
          await c.logout();
          t.diagnostic(`Converse.js ${aliceJid} over ${name}`);
        } catch (e) {
          if (c) console.error(`[e2e] browser console:\n  ${c.consoleLines.join('\n  ')}\n${JSON.stringify(await c.state().catch(() => null))}`);
          throw e;
        } finally {
          await browser.close().catch(() => {});
        }
      });
    });
  }
});
