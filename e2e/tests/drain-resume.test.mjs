// End-to-end: a gateway that drains (SIGTERM) cuts its XMPP-over-WebSocket
// streams without </stream:stream> (xmpp.drain_close_stream = false, the
// default), so Prosody's mod_smacks keeps the session and an @xmpp/client
// with XEP-0198 resumes it through another gateway, receiving the message
// sent to it while it was away exactly once. With the clean goodbye
// (drain_close_stream = true) Prosody ends the session: resumption fails.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/drain-resume.test.mjs
//
// Needs Debian's prosody (scripts/install-deps). See lib/prosody.mjs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, sleep, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { ensureWebSocket, makeClient, xml } from '../lib/xmpp.mjs';

const ROUTE = '/xmpp-websocket';

function gatewayConfig({ port, adminPort, prosodyPort, caFile, closeStream }) {
  return `# written by e2e/tests/drain-resume.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
drain_timeout = "3s"

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "xmpp-websocket"

[xmpp]
drain_close_stream = ${closeStream}

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

/** Resolves once `pred()` holds (polled), rejects after `ms`. */
async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe(`XEP-0198 resumption across a gateway drain (${UCGATE_BIN})`, { timeout: 120_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    await ensureWebSocket();
    env.dir = makeTempDir('ucgate-e2e-drain-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.prosody = await startProsody({ modules: ['smacks'] });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-60).join('\n')}`);
      await env.prosody.stop();
    });
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  async function gateway(name, closeStream) {
    const [port, adminPort] = await freePorts(2);
    const dir = path.join(env.dir, name);
    fs.mkdirSync(dir);
    const gw = await startGateway({
      dir,
      adminPort,
      config: gatewayConfig({ port, adminPort, prosodyPort: env.prosody.port, caFile: env.prosody.caFile, closeStream }),
    });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] gateway ${name} log (tail):\n${gw.log().split('\n').slice(-40).join('\n')}`);
      await gw.close();
    });
    return { gw, service: `ws://127.0.0.1:${port}${ROUTE}` };
  }

  const user = (name, service, resource) => ({
    service,
    domain: env.prosody.domain,
    username: env.prosody.users[name].username,
    password: env.prosody.users[name].password,
    resource,
  });

  /** alice through `a`, bob through `b`; alice drains away from `a` and comes back through `b`. */
  async function scenario(closeStream, resource) {
    const a = await gateway(`a-${resource}`, closeStream);
    const b = await gateway(`b-${resource}`, false);
    const alice = makeClient(user('alice', a.service, resource));
    const bob = makeClient(user('bob', b.service, `${resource}-bob`));
    try {
      await alice.start();
      await bob.start();
      const sm = alice.xmpp.streamManagement;
      await until(() => sm.enabled && sm.id, 10_000, 'XEP-0198 enabled for alice');
      const to = alice.xmpp.jid.toString();
      const send = (id) => bob.xmpp.send(xml('message', { to, type: 'chat', id }, xml('body', {}, id)));
      await send('before');
      await alice.nextMessage((m) => m.attrs.id === 'before');

      const disconnected = new Promise((resolve) => alice.xmpp.once('disconnect', resolve));
      await a.gw.close(); // SIGTERM: the drain
      await withTimeout(disconnected, 5_000, 'alice sees the drain');
      await send('while-away');
      await sleep(300);

      const outcome = new Promise((resolve) => {
        sm.once('resumed', () => resolve('resumed'));
        sm.once('fail', () => resolve('failed'));
        alice.xmpp.once('online', () => resolve('new session'));
      });
      alice.xmpp.options.service = b.service;
      await withTimeout(alice.xmpp.reconnect.reconnect(), 10_000, 'alice reconnects through b');
      const result = await withTimeout(outcome, 10_000, 'resumption outcome');
      let away = [];
      if (result === 'resumed') {
        await alice.nextMessage((m) => m.attrs.id === 'while-away', 5_000);
        await send('after');
        await alice.nextMessage((m) => m.attrs.id === 'after', 5_000);
        away = alice.messages.filter((m) => m.attrs.id === 'while-away');
      }
      return { result, away: away.length, jid: alice.xmpp.jid?.toString(), to };
    } finally {
      await alice.stop().catch(() => {});
      await bob.stop().catch(() => {});
    }
  }

  it('a stream cut at the drain is resumed through another gateway, losing and duplicating nothing', async () => {
    try {
      const r = await scenario(false, 'cut');
      assert.equal(r.result, 'resumed');
      assert.equal(r.away, 1, 'the message sent while away arrives exactly once');
      assert.equal(r.jid, r.to, 'the same session (full JID) after resumption');
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });

  it('with drain_close_stream = true the drain ends the session: nothing to resume', async () => {
    try {
      const r = await scenario(true, 'clean');
      // Prosody refuses the resumption; the client binds a new session
      assert.equal(r.result, 'new session', JSON.stringify(r));
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });
});
