// End-to-end: a new BOSH session on a draining gateway (SIGTERM received,
// still in its shutdown_delay, the balancer not yet aware) is answered HTTP
// 503, and Strophe.js re-sends the creation request at once; Debian's
// HAProxy (HTTP mode, round-robin for new sessions, by the node name in the
// sid for the others) gives the re-send to the other gateway, so every
// client is online without a failure and without Strophe's back-off (8 s
// for a second re-send). This is why the drain answers 503 and not a BOSH
// terminate condition, which Strophe reports as CONNFAIL and after which
// Converse.js does not reconnect (docs/cluster.md).
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/drain-bosh.test.mjs
//
// Needs Debian's prosody and haproxy (scripts/install-deps).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HAPROXY_BIN } from '../lib/haproxy.mjs';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, metricValue, scrapeMetrics, sleep, withTimeout } from '../lib/harness.mjs';
import { runCheck, startProcess } from '../lib/proxy-process.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { stropheClient } from '../lib/strophe-node.mjs';

const ROUTE = '/http-bind';
const SECRET = 'the e2e cluster secret, more than 32 characters';
const CLIENTS = 4;

function gatewayConfig({ node, port, adminPort, clusterPort, peer, peerPort, prosody, delay }) {
  return `# written by e2e/tests/drain-bosh.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
shutdown_delay = ${toml(delay)}
drain_timeout = "2s"

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "bosh"

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosody.port}`)}
tls = "starttls"
ca_file = ${toml(prosody.caFile)}

[cluster]
node = ${toml(node)}
secret = ${toml(SECRET)}
listen = ${toml(`127.0.0.1:${clusterPort}`)}

[cluster.peers]
${peer} = ${toml(`127.0.0.1:${peerPort}`)}
`;
}

// New sessions (no sid) round-robin over both nodes; a session's requests
// go to the node its sid names. No health checks: the balancer has not yet
// noticed that `a` is draining, as during `server.shutdown_delay`.
function haproxyConfig({ port, a, b }) {
  return `# written by e2e/tests/drain-bosh.test.mjs
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s

frontend bosh
  bind 127.0.0.1:${port}
  option http-buffer-request
  use_backend node_a if { req.body -m reg sid=.a[.] }
  use_backend node_b if { req.body -m reg sid=.b[.] }
  default_backend new_sessions

backend new_sessions
  balance roundrobin
  server a 127.0.0.1:${a}
  server b 127.0.0.1:${b}

backend node_a
  server a 127.0.0.1:${a}

backend node_b
  server b 127.0.0.1:${b}
`;
}

describe(`a new BOSH session during the drain (${UCGATE_BIN})`, { timeout: 120_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    env.dir = makeTempDir('ucgate-e2e-drain-bosh-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.prosody = await startProsody({});
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-40).join('\n')}`);
      await env.prosody.stop();
    });
    const [pa, aa, ca, pb, ab, cb, hp] = await freePorts(7);
    env.nodes = {};
    // a is the one that drains: a long shutdown_delay keeps it accepting
    for (const [node, port, adminPort, clusterPort, peer, peerPort, delay] of [
      ['a', pa, aa, ca, 'b', cb, '30s'],
      ['b', pb, ab, cb, 'a', ca, '0s'],
    ]) {
      const dir = path.join(env.dir, node);
      fs.mkdirSync(dir);
      const gw = await startGateway({
        dir,
        adminPort,
        config: gatewayConfig({ node, port, adminPort, clusterPort, peer, peerPort, prosody: env.prosody, delay }),
      });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] gateway ${node} log (tail):\n${gw.log().split('\n').slice(-40).join('\n')}`);
        await gw.close();
      });
      env.nodes[node] = { gw, adminPort };
    }
    const file = path.join(env.dir, 'haproxy.cfg');
    fs.writeFileSync(file, haproxyConfig({ port: hp, a: pa, b: pb }));
    await runCheck(HAPROXY_BIN, ['-c', '-q', '-f', file]);
    env.haproxy = await startProcess({ name: 'haproxy', bin: HAPROXY_BIN, args: ['-db', '-f', file], port: hp });
    env.teardown.push(() => env.haproxy.stop());
    env.service = `http://127.0.0.1:${hp}${ROUTE}`;
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  const metric = async (node, name, labels) =>
    metricValue((await scrapeMetrics(env.nodes[node].adminPort)).samples, name, labels) ?? 0;

  it('is answered 503 by the draining node and Strophe.js is online through the other one at once', async () => {
    const clients = [];
    try {
      // a starts draining: /ready fails, it still accepts during its shutdown_delay
      process.kill(env.nodes.a.gw.pid, 'SIGTERM');
      await sleep(300);
      assert.ok(env.nodes.a.gw.alive(), 'a drains (its shutdown_delay is 30 s)');
      const ready = await fetch(`http://127.0.0.1:${env.nodes.a.adminPort}/ready`);
      assert.equal(ready.status, 503);

      for (let i = 0; i < CLIENTS; i++) {
        const s = stropheClient(env.service);
        clients.push(s);
        const jid = `alice@${env.prosody.domain}/drain-${i}`;
        const t0 = Date.now();
        const st = await s.connect(jid, env.prosody.users.alice.password);
        const took = Date.now() - t0;
        assert.equal(st.name, 'CONNECTED', `Strophe statuses: ${JSON.stringify(s.statuses)}`);
        assert.ok(!s.statuses.some((x) => x.name === 'CONNFAIL'), JSON.stringify(s.statuses));
        assert.ok(took < 6_000, `online in ${took} ms: no back-off`);
        const sid = s.conn._proto.sid;
        assert.match(sid, /^b\./, 'the session lives on the node that is not draining');
      }
      const refused = await metric('a', 'ucgate_http_responses_total', { route: ROUTE, code: '503' });
      assert.ok(refused >= CLIENTS / 2, `a refused the creation requests round-robin gave it (${refused})`);
      assert.equal(await metric('a', 'ucgate_bosh_sessions_created_total', {}), 0);
      assert.equal(await metric('b', 'ucgate_bosh_sessions_created_total', {}), CLIENTS);
    } catch (e) {
      env.failed = true;
      for (const s of clients) {
        console.error(`[e2e] Strophe statuses ${JSON.stringify(s.statuses)}`);
        console.error(`[e2e] Strophe raw (last 20):\n${s.raw.slice(-20).map((r) => `${r.dir}: ${r.data.slice(0, 400)}`).join('\n')}`);
      }
      throw e;
    } finally {
      for (const s of clients) await withTimeout(s.close(), 15_000, 'Strophe close').catch(() => {});
    }
  });
});
