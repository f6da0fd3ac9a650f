// End-to-end: the drain (SIGTERM) closes a SIP WebSocket without a call at
// its turn, and keeps the two with a call in progress (JsSIP ↔ JsSIP through
// Kamailio) open past their turns until the call ends: the caller's BYE
// still reaches the callee through the gateway, and both connections close
// right after it, before the end of the spread (docs/cluster.md, "Why SIP
// connections with a call wait for its end").
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/drain-sip.test.mjs
//
// Needs Debian's kamailio (scripts/install-deps).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, sleep, withTimeout } from '../lib/harness.mjs';
import { startKamailio } from '../lib/kamailio.mjs';
import { startAgents } from '../lib/sip-flows.mjs';
import { ensureWebSocket } from '../lib/sipua.mjs';

const ROUTE = '/sip';
const SPREAD_MS = 4_000; // every turn falls before it; calls wait until it at most

function gatewayConfig({ port, adminPort, corePort }) {
  return `# written by e2e/tests/drain-sip.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
drain_spread = "${SPREAD_MS}ms"
drain_timeout = "8s"

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "sip-websocket"
core = ${toml(`sip:127.0.0.1:${corePort};transport=udp`)}

[sip]
flow_token_key = "ucgate e2e flow token key for the drain test"
`;
}

describe(`SIP WebSockets in the drain (${UCGATE_BIN})`, { timeout: 90_000 }, () => {
  const env = { teardown: [], failed: false };
  const cleanup = [];

  before(async () => {
    await ensureWebSocket();
    env.dir = makeTempDir('ucgate-e2e-drain-sip-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.kam = await startKamailio();
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] kamailio log (tail):\n${env.kam.log().split('\n').slice(-60).join('\n')}`);
      await env.kam.stop();
    });
    const [port, adminPort] = await freePorts(2);
    env.gateway = await startGateway({ dir: env.dir, adminPort, config: gatewayConfig({ port, adminPort, corePort: env.kam.port }) });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] gateway log (tail):\n${env.gateway.log().split('\n').slice(-60).join('\n')}`);
      await env.gateway.close();
    });
    env.wsUrl = `ws://127.0.0.1:${port}${ROUTE}`;
  }, { timeout: 60_000 });

  after(async () => {
    for (const f of cleanup.reverse()) await withTimeout(Promise.resolve().then(f), 10_000, 'client close').catch(() => {});
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  it('closes the connection without a call first, and those with a call when the call ends', async () => {
    try {
      const agents = await startAgents(env.wsUrl, { alice: 'jssip', bob: 'jssip', carol: 'jssip' }, cleanup);
      const { alice, bob, carol } = agents;
      const { session } = await alice.call(bob.aor);
      await bob.calls.next();

      // when each agent's WebSocket goes away
      const gone = {};
      for (const [name, a] of Object.entries(agents)) {
        a.ua.once('disconnected', () => {
          gone[name] ??= Date.now();
        });
      }
      const t0 = Date.now();
      process.kill(env.gateway.pid, 'SIGTERM');

      // every turn has come (all fall before the spread's end); the call goes on
      await sleep(SPREAD_MS - 900);
      assert.ok(gone.carol !== undefined, 'without a call: closed at its turn');
      assert.ok(gone.carol - t0 < SPREAD_MS - 900, `carol closed at ${gone.carol - t0} ms`);
      assert.equal(gone.alice, undefined, 'the caller is still connected past its turn');
      assert.equal(gone.bob, undefined, 'the callee is still connected past its turn');

      // the caller hangs up: the BYE reaches the callee, then both close
      const hangup = Date.now();
      await alice.hangup(session);
      const end = await bob.ended.next();
      assert.equal(end.originator, 'remote', `bob's call ended by alice's BYE: ${JSON.stringify({ cause: end.cause })}`);
      assert.equal(end.cause, 'Terminated');
      const deadline = t0 + SPREAD_MS;
      const bothGone = async () => {
        while (gone.alice === undefined || gone.bob === undefined) await sleep(20);
      };
      await withTimeout(bothGone(), 5_000, 'alice and bob disconnected');
      for (const name of ['alice', 'bob']) {
        assert.ok(gone[name] - hangup < 700, `${name} closed ${gone[name] - hangup} ms after the hang-up`);
        assert.ok(gone[name] < deadline, `${name} closed before the end of the spread (${gone[name] - t0} ms)`);
      }
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });
});
