// End-to-end: three ucgate nodes (gw-1..gw-3 on 127.0.0.11..13, one
// cluster) behind Debian's HAProxy, in front of one Prosody with mod_smacks
// (issue 17 item 5). HAProxy runs the documented examples of config/cluster/:
//
//   haproxy-http.cfg        HTTP mode, BOSH requests routed by the node in the sid
//   haproxy-roundrobin.cfg  HTTP mode, every request to the next node (forwarding)
//   haproxy-tcp.cfg         TCP mode, leastconn
//   nginx-cluster.conf      nginx, round-robin (it cannot read the body)
//
// Strophe.js BOSH clients chat through the HTTP ones: every stanza once and
// in order, sessions on several nodes. Through the TCP balancer, @xmpp/client
// WebSocket clients with XEP-0198 and Strophe.js BOSH clients send numbered
// messages to each other while the three nodes are restarted one after the
// other; forged and stale sids are item-not-found everywhere.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/cluster.test.mjs
//
// Needs Debian's haproxy, nginx and prosody (scripts/install-deps). See lib/cluster.mjs.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { UCGATE_BIN } from '../lib/gateway.mjs';
import {
  BOSH_NS,
  BOSH_ROUTE,
  boshPost,
  createBoshSession,
  sidNode,
  startBalancer,
  startCluster,
  startNginxBalancer,
  terminateCondition,
  WS_ROUTE,
} from '../lib/cluster.mjs';
import { makeTempDir, metricValue, sleep, withTimeout } from '../lib/harness.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { $msg, $pres, stropheClient, XMLHttpRequestWithXML } from '../lib/strophe-node.mjs';
import { ensureWebSocket } from '../lib/xmpp.mjs';
import { boshChatter, checkStreams, wsChatter } from '../lib/cluster-chat.mjs';

const USERS = Object.fromEntries(['u1', 'u2', 'u3', 'u4', 'u5', 'u6'].map((u) => [u, `${u}-Pa55-word`]));

describe(`three ucgate nodes behind HAProxy and nginx (${UCGATE_BIN})`, { timeout: 175_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    try {
      await ensureWebSocket();
      env.dir = makeTempDir('ucgate-e2e-cluster-');
      env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
      // Strophe's XMLHttpRequest on an agent of our own, destroyed at the end.
      env.agent = new http.Agent({ keepAlive: true });
      env.teardown.push(() => env.agent.destroy());
      class XHR extends XMLHttpRequestWithXML {}
      XHR.prototype.nodejsHttpAgent = env.agent;
      globalThis.XMLHttpRequest = XHR;

      env.prosody = await startProsody({ domains: ['localhost'], users: USERS, modules: ['smacks'] });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-40).join('\n')}`);
        await env.prosody.stop();
      });
      env.cluster = await startCluster({ dir: env.dir, xmpp: env.prosody });
      env.teardown.push(async () => {
        if (env.failed) console.error(env.cluster.logs());
        await env.cluster.stop();
      });
      for (const [key, template] of [
        ['http', 'haproxy-http.cfg'],
        ['rr', 'haproxy-roundrobin.cfg'],
        ['tcp', 'haproxy-tcp.cfg'],
      ]) {
        const lb = await startBalancer({ dir: env.dir, cluster: env.cluster, template });
        env[key] = lb;
        env.teardown.push(async () => {
          if (env.failed) console.error(`[e2e] ${template} output (tail):\n${lb.log().split('\n').slice(-40).join('\n')}`);
          await lb.stop();
        });
      }
      env.nginx = await startNginxBalancer({ dir: env.dir, cluster: env.cluster });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] nginx-cluster.conf output (tail):\n${env.nginx.log().slice(-4000)}`);
        await env.nginx.stop();
      });
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 25_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 90_000 });

  const step = async (fn) => {
    try {
      await fn();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  const user = (name) => ({ username: name, password: USERS[name], domain: env.prosody.domain });

  /**
   * Sessions each node created (ucgate_bosh_sessions_created_total, by
   * node) and the BOSH requests the nodes forwarded
   * (ucgate_cluster_forwards_total, by result, all nodes together).
   */
  async function counters() {
    const created = {};
    const forwards = {};
    for (const n of env.cluster.nodes) {
      const samples = await n.metrics();
      created[n.name] = metricValue(samples, 'ucgate_bosh_sessions_created_total');
      for (const s of samples.filter((x) => x.name === 'ucgate_cluster_forwards_total')) {
        forwards[s.labels.result] = (forwards[s.labels.result] ?? 0) + s.value;
      }
    }
    return { created, forwards };
  }

  const delta = (now, then) => Object.fromEntries(Object.keys(now).map((k) => [k, now[k] - (then[k] ?? 0)]));

  /**
   * Four Strophe.js clients log in through `lb` and each sends N numbered
   * messages to each other one: every one arrives once and in order, and
   * the sessions live on more than one node. `forwarded`: whether the
   * balancer's requests must reach nodes that do not own their session
   * (round-robin) or never do (routing by the sid).
   */
  async function boshChat(lb, tag, t, { forwarded }) {
    const N = 15;
    const names = ['u1', 'u2', 'u3', 'u4'];
    const before = await counters();
    const mark = lb.log().length;
    const clients = names.map(() => stropheClient(lb.url('http', BOSH_ROUTE)));
    try {
      // All at once: the four session creation requests come first, one
      // after the other, so a round-robin balancer spreads them over the nodes.
      const statuses = await Promise.all(
        clients.map((c, i) => c.connect(`${names[i]}@${env.prosody.domain}/${tag}`, USERS[names[i]])),
      );
      for (const [i, c] of clients.entries()) {
        assert.equal(statuses[i].name, 'CONNECTED', `${names[i]}: ${JSON.stringify(c.statuses)}`);
        c.send($pres().tree());
      }
      const jid = (i) => `${names[i]}@${env.prosody.domain}/${tag}`;
      for (let k = 1; k <= N; k++) {
        for (const [i, c] of clients.entries()) {
          for (const j of clients.keys()) {
            if (j !== i) c.send($msg({ to: jid(j), type: 'chat', id: `${tag}-${i}-${k}` }).c('body').t(String(k)).tree());
          }
        }
        await sleep(40);
      }
      for (const c of clients) await c.waitMessages(N * (names.length - 1), 30_000);
      await sleep(300); // anything duplicated would be here by now
      for (const [j, c] of clients.entries()) {
        for (const i of clients.keys()) {
          if (i === j) continue;
          const got = c.inOrder().filter((m) => m.from === jid(i)).map((m) => Number(m.body));
          assert.deepEqual(got, Array.from({ length: N }, (_, k) => k + 1), `${names[i]} → ${names[j]}: once each, in order`);
        }
      }
      const owners = clients.map((c) => sidNode(c.conn._proto.sid));
      assert.ok(owners.every(Boolean), `cluster sids: ${clients.map((c) => c.conn._proto.sid)}`);
      assert.ok(new Set(owners).size >= 2, `sessions on more than one node: ${owners}`);
      const byNode = {};
      for (const r of lb.servedBy?.(mark) ?? []) if (r.path === BOSH_ROUTE) byNode[r.node] = (byNode[r.node] ?? 0) + 1;
      if (lb.servedBy) {
        assert.ok(Object.keys(byNode).length >= 2, `HAProxy spread BOSH requests over nodes: ${JSON.stringify(byNode)}`);
      }
      for (const c of clients) assert.equal((await c.disconnect()).name, 'DISCONNECTED');

      const after = await counters();
      const created = delta(after.created, before.created);
      for (const o of owners) assert.ok(created[o] >= 1, `${o} counted the session it owns: ${JSON.stringify(created)}`);
      const fw = delta(after.forwards, before.forwards);
      const { ok = 0, ...failed } = fw;
      assert.deepEqual(Object.values(failed).filter((v) => v > 0), [], `no forwarding failed: ${JSON.stringify(fw)}`);
      if (forwarded) assert.ok(ok > 0, `requests were forwarded to the owners: ${JSON.stringify(fw)}`);
      else assert.equal(ok, 0, 'routed by the sid, every request reached its owner: nothing forwarded');
      t.diagnostic(
        `sessions on ${owners.join(', ')}; BOSH requests by node ${JSON.stringify(byNode)}; ${ok} forwarded`,
      );
      return { owners, byNode };
    } finally {
      for (const c of clients) await c.close();
    }
  }

  it('HTTP mode, routed by the node in the sid: BOSH clients chat, every stanza once and in order', { timeout: 50_000 }, (t) =>
    step(() => boshChat(env.http, 'sid', t, { forwarded: false })),
  );

  it('HTTP mode, round-robin: requests of one session reach every node, stanzas once and in order', { timeout: 50_000 }, (t) =>
    step(async () => {
      await boshChat(env.rr, 'rr', t, { forwarded: true });
    }),
  );

  it('nginx, round-robin: BOSH clients chat through any node, stanzas once and in order', { timeout: 50_000 }, (t) =>
    step(async () => {
      await boshChat(env.nginx, 'nginx', t, { forwarded: true });
    }),
  );

  it('rolling restart through the TCP balancer: XEP-0198 WebSocket clients lose nothing, BOSH clients come back', { timeout: 58_000 }, (t) =>
    step(async () => {
      const ws = ['u1', 'u2', 'u3'].map((u) => wsChatter({ name: u, service: env.tcp.url('ws', WS_ROUTE), ...user(u) }));
      const bosh = ['u4', 'u5', 'u6'].map((u) => boshChatter({ name: u, service: env.tcp.url('http', BOSH_ROUTE), ...user(u) }));
      const all = [...ws, ...bosh];
      const restarts = [];
      try {
        await Promise.all(all.map((c) => c.start()));
        const traffic = startTraffic(all);
        await sleep(2_000);
        for (const node of env.cluster.nodes) {
          const r = await node.restart();
          restarts.push({ node: node.name, ...r });
          assert.equal(r.code, 0, `${node.name} exited cleanly after its drain`);
          await sleep(1_500); // HAProxy: rise 2 x inter 500 ms
        }
        await sleep(2_000);
        await traffic.stop();
        const report = await checkStreams({ clients: all, restarts, settleMs: 8_000 });
        t.diagnostic(report.summary);
        assert.deepEqual(report.problems, []);
        // Each client's node went down under it at least once (a client
        // moves only when cut), so each was really put to the test.
        for (const c of ws) assert.ok(c.resumed >= 1, `${c.name} resumed its session at least once`);
        for (const c of bosh) assert.ok(c.sessions.length >= 2, `${c.name} lost its node at least once`);
      } finally {
        await Promise.all(all.map((c) => c.stop().catch(() => {})));
      }
    }),
  );

  /** Every 100 ms each online client sends its next numbered message to the next of the others. */
  function startTraffic(clients) {
    let stopped = false;
    const loops = clients.map(async (c, i) => {
      const others = clients.filter((_, j) => j !== i);
      let turn = 0;
      while (!stopped) {
        if (c.online()) {
          await c.sendNext(others[turn % others.length]);
          turn++;
        }
        await sleep(100);
      }
    });
    return {
      async stop() {
        stopped = true;
        await Promise.all(loops);
      },
    };
  }

  it('forged and stale sids are item-not-found on every node and through every balancer', { timeout: 40_000 }, (t) =>
    step(async () => {
      const gw1 = env.cluster.node('gw-1');
      const domain = env.prosody.domain;
      const old = await createBoshSession(gw1.url('http', BOSH_ROUTE), domain);
      assert.equal(sidNode(old.sid), 'gw-1', old.sid);
      const r = await gw1.restart();
      assert.equal(r.code, 0);
      await sleep(1_500); // back in HAProxy's rotation
      const fresh = await createBoshSession(gw1.url('http', BOSH_ROUTE), domain);
      const [, oldStart, oldRandom] = old.sid.split('.');
      const [, start, random] = fresh.sid.split('.');
      assert.notEqual(start, oldStart, 'a restarted node draws a new start value');
      const flipped = random.slice(0, -1) + (random.at(-1) === '0' ? '1' : '0');
      const forged = {
        'a sid naming an unknown node': `gw-9.${start}.${oldRandom}`,
        "a sid of gw-1's previous start": old.sid,
        'a live sid with a wrong random part': `gw-1.${start}.${flipped}`,
      };
      const targets = {
        ...Object.fromEntries(env.cluster.nodes.map((n) => [n.name, n.url('http', BOSH_ROUTE)])),
        'HAProxy HTTP (sid routing)': env.http.url('http', BOSH_ROUTE),
        'HAProxy round-robin': env.rr.url('http', BOSH_ROUTE),
        'HAProxy TCP': env.tcp.url('http', BOSH_ROUTE),
      };
      let rid = old.rid;
      for (const [where, url] of Object.entries(targets)) {
        for (const [what, sid] of Object.entries(forged)) {
          const res = await boshPost(url, `<body xmlns='${BOSH_NS}' rid='${rid++}' sid='${sid}'/>`);
          assert.equal(res.status, 200, `${what} at ${where}`);
          assert.equal(terminateCondition(res.text), 'item-not-found', `${what} at ${where}: ${res.text}`);
        }
      }
      // The real session is still there: its own sid ends it cleanly.
      const end = await boshPost(
        gw1.url('http', BOSH_ROUTE),
        `<body xmlns='${BOSH_NS}' rid='${fresh.rid}' sid='${fresh.sid}' type='terminate'/>`,
      );
      assert.equal(end.status, 200);
      assert.notEqual(terminateCondition(end.text), 'item-not-found', end.text);
      t.diagnostic(`${Object.keys(forged).length} sids refused at ${Object.keys(targets).length} places`);
    }),
  );
});
