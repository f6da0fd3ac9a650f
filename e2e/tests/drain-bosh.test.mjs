// End-to-end: BOSH through the drain of one of two cluster nodes, behind
// Debian's HAProxy in HTTP mode (new sessions round-robin, the others by the
// node name in the sid), with Strophe.js clients:
//
//  1. a new session on the draining node (SIGTERM received, still in its
//     shutdown_delay, the balancer not yet aware) is answered HTTP 503, and
//     Strophe re-sends the creation request at once; HAProxy gives the
//     re-send to the other node, so every client is online without a
//     failure and without Strophe's back-off (8 s for a second re-send).
//     This is why the drain answers 503 and not a BOSH terminate condition,
//     which Strophe reports as CONNFAIL and after which Converse.js does not
//     reconnect (docs/cluster.md).
//  2. a session of the draining node goes on once its listener is closed
//     (HAProxy, told by /ready, sends its requests to the other node, which
//     forwards them): chat both ways loses and duplicates nothing; at the
//     drain's goodbye deadline the client gets system-shutdown, and logs in
//     again through the other node.
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
import { $msg, $pres, stropheClient } from '../lib/strophe-node.mjs';

const ROUTE = '/http-bind';
const SECRET = 'the e2e cluster secret, more than 32 characters';
const CLIENTS = 4;

function gatewayConfig({ node, port, adminPort, clusterPort, peer, peerPort, prosody, delay, drain }) {
  return `# written by e2e/tests/drain-bosh.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
shutdown_delay = ${toml(delay)}
drain_timeout = ${toml(drain)}

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
// go to the node its sid names. `checks`: HAProxy reads each node's /ready
// and sends a drained node's session requests to the other node (which
// forwards them); without, it has not yet noticed the drain.
function haproxyConfig({ port, a, b, checks }) {
  const check = (admin) => (checks ? ` check port ${admin} inter 200 fall 1 rise 1` : '');
  const httpchk = checks ? '  option httpchk GET /ready\n' : '';
  return `# written by e2e/tests/drain-bosh.test.mjs
defaults
  mode http
  timeout connect 2s
  timeout client 90s
  timeout server 90s

frontend bosh
  bind 127.0.0.1:${port}
  option http-buffer-request
  use_backend node_a if { req.body -m reg sid=.a[.] }
  use_backend node_b if { req.body -m reg sid=.b[.] }
  default_backend new_sessions

backend new_sessions
  balance roundrobin
${httpchk}  server a 127.0.0.1:${a.port}${check(a.admin)}
  server b 127.0.0.1:${b.port}${check(b.admin)}

backend node_a
${httpchk}  server a 127.0.0.1:${a.port}${check(a.admin)}
  server b 127.0.0.1:${b.port} backup

backend node_b
${httpchk}  server b 127.0.0.1:${b.port}${check(b.admin)}
  server a 127.0.0.1:${a.port} backup
`;
}

describe(`BOSH through the drain of a cluster node (${UCGATE_BIN})`, { timeout: 150_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    env.dir = makeTempDir('ucgate-e2e-drain-bosh-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.prosody = await startProsody({});
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-40).join('\n')}`);
      await env.prosody.stop();
    });
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  /** Nodes a and b (a drains with `delay` and `drain`) behind HAProxy. */
  async function cluster(name, { delay, drain, checks }) {
    const [pa, aa, ca, pb, ab, cb, hp] = await freePorts(7);
    const nodes = {};
    for (const [node, port, adminPort, clusterPort, peer, peerPort, d] of [
      ['a', pa, aa, ca, 'b', cb, delay],
      ['b', pb, ab, cb, 'a', ca, '0s'],
    ]) {
      const dir = path.join(env.dir, `${name}-${node}`);
      fs.mkdirSync(dir);
      const gw = await startGateway({
        dir,
        adminPort,
        config: gatewayConfig({ node, port, adminPort, clusterPort, peer, peerPort, prosody: env.prosody, delay: d, drain }),
      });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] gateway ${name}-${node} log (tail):\n${gw.log().split('\n').slice(-40).join('\n')}`);
        await gw.close();
      });
      nodes[node] = { gw, adminPort };
    }
    const file = path.join(env.dir, `${name}-haproxy.cfg`);
    fs.writeFileSync(file, haproxyConfig({ port: hp, a: { port: pa, admin: aa }, b: { port: pb, admin: ab }, checks }));
    await runCheck(HAPROXY_BIN, ['-c', '-q', '-f', file]);
    const haproxy = await startProcess({ name: 'haproxy', bin: HAPROXY_BIN, args: ['-db', '-f', file], port: hp });
    env.teardown.push(() => haproxy.stop());
    const metric = async (node, metricName, labels) =>
      metricValue((await scrapeMetrics(nodes[node].adminPort)).samples, metricName, labels) ?? 0;
    return { nodes, metric, service: `http://127.0.0.1:${hp}${ROUTE}` };
  }

  /** Runs `fn(strophe)`; the Strophe clients it made are closed after, and shown on failure. */
  async function step(fn) {
    const clients = [];
    const strophe = (service) => {
      const s = stropheClient(service);
      clients.push(s);
      return s;
    };
    try {
      await fn(strophe);
    } catch (e) {
      env.failed = true;
      for (const s of clients) {
        console.error(`[e2e] Strophe statuses ${JSON.stringify(s.statuses.map((x) => [x.name, x.condition]))}`);
        console.error(`[e2e] Strophe raw (last 20):\n${s.raw.slice(-20).map((r) => `${r.dir}: ${r.data.slice(0, 400)}`).join('\n')}`);
      }
      throw e;
    } finally {
      for (const s of clients) await withTimeout(s.close(), 15_000, 'Strophe close').catch(() => {});
    }
  }

  it('a new session on the draining node gets 503 and Strophe.js is online through the other one at once', () =>
    step(async (strophe) => {
      const c = await cluster('new', { delay: '30s', drain: '2s', checks: false });
      // a starts draining: /ready fails, it still accepts during its shutdown_delay
      process.kill(c.nodes.a.gw.pid, 'SIGTERM');
      await sleep(300);
      assert.ok(c.nodes.a.gw.alive(), 'a drains (its shutdown_delay is 30 s)');
      const ready = await fetch(`http://127.0.0.1:${c.nodes.a.adminPort}/ready`);
      assert.equal(ready.status, 503);

      for (let i = 0; i < CLIENTS; i++) {
        const s = strophe(c.service);
        const t0 = Date.now();
        const st = await s.connect(`alice@${env.prosody.domain}/new-${i}`, env.prosody.users.alice.password);
        const took = Date.now() - t0;
        assert.equal(st.name, 'CONNECTED', `Strophe statuses: ${JSON.stringify(s.statuses)}`);
        assert.ok(!s.statuses.some((x) => x.name === 'CONNFAIL'), JSON.stringify(s.statuses));
        assert.ok(took < 6_000, `online in ${took} ms: no back-off`);
        assert.match(s.conn._proto.sid, /^b\./, 'the session lives on the node that is not draining');
      }
      const refused = await c.metric('a', 'ucgate_http_responses_total', { route: ROUTE, code: '503' });
      assert.ok(refused >= CLIENTS / 2, `a refused the creation requests round-robin gave it (${refused})`);
      assert.equal(await c.metric('a', 'ucgate_bosh_sessions_created_total', {}), 0);
      assert.equal(await c.metric('b', 'ucgate_bosh_sessions_created_total', {}), CLIENTS);
    }));

  it("a draining node's session goes on through the other node until system-shutdown, losing nothing", () =>
    step(async (strophe) => {
      // a: 1 s for HAProxy to see /ready fail, then a 5 s drain (goodbye at 3.75 s)
      const c = await cluster('through', { delay: '1s', drain: '5s', checks: true });
      const { domain } = env.prosody;
      // alice on a (round-robin: at most two tries)
      let alice;
      for (let i = 0; i < 3 && !alice; i++) {
        const s = strophe(c.service);
        const st = await s.connect(`alice@${domain}/through-${i}`, env.prosody.users.alice.password);
        assert.equal(st.name, 'CONNECTED', JSON.stringify(s.statuses));
        if (s.conn._proto.sid.startsWith('a.')) alice = s;
        else await s.close();
      }
      assert.ok(alice, 'a session on a');
      alice.send($pres().tree());
      const bob = strophe(c.service);
      assert.equal((await bob.connect(`bob@${domain}/through`, env.prosody.users.bob.password)).name, 'CONNECTED');
      bob.send($pres().tree());
      await sleep(500);

      const t0 = Date.now();
      process.kill(c.nodes.a.gw.pid, 'SIGTERM');
      // numbered messages both ways for 3 s, through the drain
      const sent = { toAlice: [], toBob: [] };
      for (let i = 0; Date.now() - t0 < 3_000; i++) {
        const n = String(i);
        bob.send($msg({ to: `alice@${domain}/${alice.jid.split('/')[1]}`, type: 'chat', id: `b${n}` }).c('body').t(`b${n}`).tree());
        alice.send($msg({ to: `bob@${domain}/through`, type: 'chat', id: `a${n}` }).c('body').t(`a${n}`).tree());
        sent.toAlice.push(`b${n}`);
        sent.toBob.push(`a${n}`);
        await sleep(150);
      }
      const last = (h, id) => h.nextMessage((m) => m.id === id, 10_000);
      await last(alice, sent.toAlice.at(-1));
      await last(bob, sent.toBob.at(-1));
      const got = (h, p) => h.messages.filter((m) => m.body?.startsWith(p)).map((m) => m.body);
      assert.deepEqual(got(alice, 'b'), sent.toAlice, 'every message to alice once, in order');
      assert.deepEqual(got(bob, 'a'), sent.toBob, 'every message to bob once, in order');
      const listener = await fetch(`http://127.0.0.1:${c.nodes.a.adminPort}/ready`).then((r) => r.status);
      assert.equal(listener, 503, 'a is still draining');
      assert.ok((await c.metric('b', 'ucgate_cluster_forwards_total', { peer: 'a' })) > 0, 'b forwarded alice\'s requests');

      // a's goodbye deadline: alice's session ends with system-shutdown
      const end = await alice.waitStatus(['CONNFAIL', 'DISCONNECTED'], { ms: 10_000 });
      const at = Date.now() - t0;
      assert.ok(
        alice.statuses.some((x) => x.name === 'CONNFAIL' && x.condition === 'system-shutdown'),
        `system-shutdown: ${JSON.stringify(alice.statuses.map((x) => [x.name, x.condition]))} (${end.name})`,
      );
      assert.ok(at > 4_000 && at < 6_500, `at a's goodbye deadline (1 s + 3.75 s), not ${at} ms`);
      // and alice logs in again, through b
      const again = strophe(c.service);
      assert.equal((await again.connect(`alice@${domain}/again`, env.prosody.users.alice.password)).name, 'CONNECTED');
      assert.match(again.conn._proto.sid, /^b\./);
    }));
});
