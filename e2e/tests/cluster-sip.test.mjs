// End-to-end: SIP flows across the nodes of a cluster (issue 17 items 3 and
// 5). Three ucgate nodes on 127.0.0.11, .12 and .13 (each its own
// `sip.advertised_host` and core-facing port, one `[cluster]` secret) in
// front of one Kamailio (config/pairing/kamailio.cfg: registrar with Path,
// record-routing proxy), behind Debian's HAProxy in TCP mode (`leastconn`,
// health checks on each node's `/ready`; its config is written here). JsSIP
// clients register through the balancer; the node holding one of them is
// restarted (SIGTERM, exit, start again); the client re-registers through
// another node (its Path now names that node) and is called and messaged
// again by another client. Then a rolling restart of all three nodes, one
// after another: after each, the clients it held have registered again
// through another node and both clients call and message each other. A token of the restarted node's previous start
// gets 430 from it; on every node a token of another node gets 430 and a
// forged one 403.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePort, makeTempDir, metricValue, scrapeMetrics, withTimeout } from '../lib/harness.mjs';
import { HAPROXY_BIN } from '../lib/haproxy.mjs';
import { startKamailio } from '../lib/kamailio.mjs';
import { runCheck, startProcess } from '../lib/proxy-process.mjs';
import { callAndHangUp, messageBothWays, startAgents } from '../lib/sip-flows.mjs';
import { ensureWebSocket } from '../lib/sipua.mjs';

const ROUTE = '/sip';
const SECRET = 'ucgate e2e cluster secret, the same on every node';
const NODES = [
  { name: 'gw-1', ip: '127.0.0.11' },
  { name: 'gw-2', ip: '127.0.0.12' },
  { name: 'gw-3', ip: '127.0.0.13' },
];

/** A port free for TCP (and, with `udp`, UDP) on `ip` now. */
async function freePortOn(ip, { udp = false } = {}) {
  for (let i = 0; i < 20; i++) {
    const srv = net.createServer();
    const port = await new Promise((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, ip, () => resolve(srv.address().port));
    });
    let ok = true;
    if (udp) {
      const sock = dgram.createSocket('udp4');
      ok = await new Promise((resolve) => {
        sock.once('error', () => resolve(false));
        sock.bind(port, ip, () => resolve(true));
      });
      await new Promise((r) => sock.close(r));
    }
    await new Promise((r) => srv.close(r));
    if (ok) return port;
  }
  throw new Error(`no free port on ${ip}`);
}

function nodeConfig(node, nodes, corePort) {
  const peers = nodes
    .filter((n) => n !== node)
    .map((n) => `${n.name} = ${toml(`${n.ip}:${n.clusterPort}`)}`)
    .join('\n');
  return `# written by e2e/tests/cluster-sip.test.mjs
[server]
listen = ${toml(`${node.ip}:${node.port}`)}
shutdown_delay = "0s"
drain_timeout = "2s"

[admin]
listen = ${toml(`127.0.0.1:${node.adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "sip-websocket"
core = ${toml(`sip:127.0.0.1:${corePort};transport=udp`)}

[sip]
advertised_host = ${toml(node.ip)}
listen = ${toml(`${node.ip}:${node.sipPort}`)}

[cluster]
node = ${toml(node.name)}
secret = ${toml(SECRET)}
listen = ${toml(`${node.ip}:${node.clusterPort}`)}

[cluster.peers]
${peers}
`;
}

/** HAProxy in TCP mode over the nodes, each checked on its /ready. */
function haproxyConfig(port, nodes) {
  const servers = nodes
    .map((n) => `    server ${n.name} ${n.ip}:${n.port} check addr 127.0.0.1 port ${n.adminPort} inter 200ms fall 1 rise 1`)
    .join('\n');
  return `# written by e2e/tests/cluster-sip.test.mjs
global
    maxconn 512

defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch

frontend sip_ws
    bind 127.0.0.1:${port}
    default_backend nodes

backend nodes
    balance leastconn
    option httpchk
    http-check send meth GET uri /ready
    http-check expect status 200
${servers}
`;
}

/** The SIP WebSockets each node holds now. */
async function sipConnections(nodes) {
  return Promise.all(
    nodes.map(async (n) => metricValue((await scrapeMetrics(n.adminPort)).samples, 'ucgate_route_connections_active', { route: ROUTE }) ?? 0),
  );
}

/** The one node holding more SIP connections than `before`. */
async function nodeGaining(nodes, before) {
  const now = await sipConnections(nodes);
  const gained = nodes.filter((_, i) => now[i] > before[i]);
  assert.equal(gained.length, 1, `one node took the new client: before ${before}, now ${now}`);
  return gained[0];
}

/**
 * What a node answers to a MESSAGE sent to it as the core would send it,
 * routed by `pathUri` (its host and port say where): the status line.
 */
async function statusFor(target, pathUri) {
  const [, host, port] = /@([^:;>]+):(\d+)/.exec(pathUri);
  const sock = dgram.createSocket('udp4');
  try {
    // From the core's address (127.0.0.1): only it may use the SIP port.
    await new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(0, '127.0.0.1', resolve);
    });
    const branch = `z9hG4bK${Math.random().toString(36).slice(2)}`;
    const msg =
      `MESSAGE ${target} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=${branch};rport\r\n` +
      `Route: <${pathUri}>\r\n` +
      `Max-Forwards: 70\r\n` +
      `From: <sip:probe@127.0.0.1>;tag=${branch.slice(7)}\r\n` +
      `To: <${target}>\r\n` +
      `Call-ID: ${branch}@127.0.0.1\r\n` +
      `CSeq: 1 MESSAGE\r\n` +
      `Content-Length: 0\r\n\r\n`;
    const reply = new Promise((resolve) => sock.on('message', (buf) => resolve(buf.toString('utf8').split('\r\n')[0])));
    await new Promise((resolve, reject) => sock.send(msg, Number(port), host, (e) => (e ? reject(e) : resolve())));
    return await withTimeout(reply, 5_000, `an answer from ${host}:${port}`);
  } finally {
    sock.close();
  }
}

/** `uri` with one character of its flow token (the user part) changed. */
function forge(uri) {
  const at = uri.indexOf('@');
  const i = Math.floor((4 + at) / 2);
  return uri.slice(0, i) + (uri[i] === 'A' ? 'B' : 'A') + uri.slice(i + 1);
}

const SKIP = !fs.existsSync(UCGATE_BIN) ? `gateway binary ${UCGATE_BIN} not found (cargo build)` : !fs.existsSync(HAPROXY_BIN) ? `${HAPROXY_BIN} not found (scripts/install-deps)` : null;
if (SKIP) console.error(`[e2e] cluster-sip: SKIPPED: ${SKIP}`);

describe('SIP across three cluster nodes behind HAProxy (TCP mode) and Kamailio', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  const env = { teardown: [], failed: false, nodes: NODES.map((n) => ({ ...n })) };
  const cleanup = [];

  before(async () => {
    try {
      await ensureWebSocket();
      env.dir = makeTempDir('ucgate-e2e-cluster-sip-');
      env.teardown.push(() => {
        if (env.failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${env.dir}`);
        else fs.rmSync(env.dir, { recursive: true, force: true });
      });
      env.kam = await startKamailio();
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] kamailio log (tail):\n${env.kam.log().split('\n').slice(-80).join('\n')}`);
        await env.kam.stop();
      });
      for (const n of env.nodes) {
        n.port = await freePortOn(n.ip);
        n.sipPort = await freePortOn(n.ip, { udp: true });
        n.clusterPort = await freePortOn(n.ip);
        n.adminPort = await freePort();
        n.dir = path.join(env.dir, n.name);
        fs.mkdirSync(n.dir);
      }
      for (const n of env.nodes) {
        n.config = nodeConfig(n, env.nodes, env.kam.port);
        n.gw = await startGateway({ dir: n.dir, adminPort: n.adminPort, config: n.config });
        env.teardown.push(async () => {
          if (env.failed) console.error(`[e2e] ${n.name} log (tail):\n${n.gw.log().split('\n').slice(-60).join('\n')}`);
          await n.gw.close();
        });
      }
      env.lbPort = await freePort();
      const lbFile = path.join(env.dir, 'haproxy.cfg');
      fs.writeFileSync(lbFile, haproxyConfig(env.lbPort, env.nodes));
      await runCheck(HAPROXY_BIN, ['-c', '-q', '-f', lbFile]);
      env.lb = await startProcess({ name: 'haproxy', bin: HAPROXY_BIN, args: ['-db', '-f', lbFile], port: env.lbPort });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] haproxy log (tail):\n${env.lb.log().split('\n').slice(-40).join('\n')}`);
        await env.lb.stop();
      });
      env.wsUrl = `ws://127.0.0.1:${env.lbPort}${ROUTE}`;
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 60_000 });

  after(async () => {
    for (const f of cleanup.reverse()) await withTimeout(Promise.resolve().then(f), 10_000, 'client close').catch(() => {});
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  });

  it('a client re-registers through another node after its node restarts and is called again', { timeout: 60_000 }, async () => {
    try {
      const nodes = env.nodes;
      // One client at a time, so that each one's node is known.
      let before = await sipConnections(nodes);
      const { alice } = await startAgents(env.wsUrl, { alice: 'jssip' }, cleanup);
      const aliceNode = await nodeGaining(nodes, before);
      before = await sipConnections(nodes);
      const { bob } = await startAgents(env.wsUrl, { bob: 'jssip' }, cleanup);
      const bobNode = await nodeGaining(nodes, before);
      assert.notEqual(aliceNode, bobNode, 'leastconn spreads the clients');
      await messageBothWays(alice, bob, 'before the restart');
      await callAndHangUp(bob, alice);

      // Alice's Path as Kamailio stored it (the REGISTER 200 echoes it).
      const regOk = [...alice.trace].reverse().find((t) => t.dir === 'in' && /^SIP\/2\.0 200 /.test(t.text) && /\r\nCSeq: \d+ REGISTER\r\n/i.test(t.text));
      const oldPath = regOk && /\r\nPath: *<([^>]+)>/i.exec(regOk.text)?.[1];
      assert.ok(oldPath, `the REGISTER 200 carries the Path: ${regOk?.text}`);
      assert.ok(oldPath.includes(`@${aliceNode.ip}:${aliceNode.sipPort};`), `alice's Path names her node: ${oldPath}`);

      // Restart alice's node: she reconnects through the balancer to a node
      // that is up, and registers again there.
      const reRegistered = new Promise((resolve) => alice.ua.once('registered', resolve));
      await withTimeout(aliceNode.gw.close(), 10_000, `${aliceNode.name} exit after SIGTERM`);
      await withTimeout(reRegistered, 20_000, 'alice registers again through another node');
      const now = await sipConnections(nodes.filter((n) => n !== aliceNode));
      assert.equal(now.reduce((a, b) => a + b, 0), 2, `alice and bob on the other nodes: ${now}`);
      aliceNode.gw = await startGateway({ dir: aliceNode.dir, adminPort: aliceNode.adminPort, config: aliceNode.config });

      const regOk2 = [...alice.trace].reverse().find((t) => t.dir === 'in' && /^SIP\/2\.0 200 /.test(t.text) && /\r\nCSeq: \d+ REGISTER\r\n/i.test(t.text));
      const newPath = /\r\nPath: *<([^>]+)>/i.exec(regOk2.text)?.[1];
      assert.ok(newPath && !newPath.includes(`@${aliceNode.ip}:`), `alice's new Path names another node: ${newPath}`);

      // Called and messaged again, through her new node.
      await callAndHangUp(bob, alice);
      await messageBothWays(bob, alice, 'after the restart');

      // Her old Path, now on the restarted node (another start): 430.
      assert.match(await statusFor('sip:alice@127.0.0.1', oldPath), /^SIP\/2\.0 430 Flow Failed$/);

      // Every node: a token of another node gets 430 (as when a node's
      // address is reused by another), a forged one 403.
      const holder = nodes.find((n) => newPath.includes(`@${n.ip}:${n.sipPort};`));
      assert.ok(holder, `alice's new Path names one of the nodes: ${newPath}`);
      for (const n of nodes) {
        const there = newPath.replace(/@[^;>]+/, `@${n.ip}:${n.sipPort}`);
        assert.match(await statusFor('sip:alice@127.0.0.1', forge(there)), /^SIP\/2\.0 403 /, `a forged token on ${n.name}`);
        if (n !== holder) {
          assert.match(await statusFor('sip:alice@127.0.0.1', there), /^SIP\/2\.0 430 /, `${holder.name}'s token on ${n.name}`);
        }
      }
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });

  it('a rolling restart of all three nodes: after each, both clients are registered and can be called', { timeout: 90_000 }, async () => {
    try {
      const nodes = env.nodes;
      const { carol, dave } = await startAgents(env.wsUrl, { carol: 'jssip', dave: 'jssip' }, cleanup);
      await messageBothWays(carol, dave, 'before the rolling restart');
      const moved = new Set();
      for (const node of nodes) {
        // The clients this node holds now: each must register again.
        const held = [carol, dave].filter((a) => {
          const ok = [...a.trace].reverse().find((t) => t.dir === 'in' && /^SIP\/2\.0 200 /.test(t.text) && /\r\nCSeq: \d+ REGISTER\r\n/i.test(t.text));
          return ok && new RegExp(`Path: *<[^>]*@${node.ip.replaceAll('.', '\\.')}:${node.sipPort};`, 'i').test(ok.text);
        });
        for (const a of held) moved.add(a.aor);
        const again = held.map((a) => new Promise((resolve) => a.ua.once('registered', resolve)));
        await withTimeout(node.gw.close(), 10_000, `${node.name} exit after SIGTERM`);
        await withTimeout(Promise.all(again), 20_000, `the clients of ${node.name} register again through another node`);
        node.gw = await startGateway({ dir: node.dir, adminPort: node.adminPort, config: node.config });
        await callAndHangUp(carol, dave);
        await callAndHangUp(dave, carol);
        await messageBothWays(carol, dave, `after ${node.name} restarted`);
      }
      // Every node restarted once, so each client lost its node at least once.
      assert.deepEqual([...moved].sort(), [carol.aor, dave.aor].sort(), 'both clients were moved by the restarts');
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });
});
