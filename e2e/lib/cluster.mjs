// Three ucgate nodes of one cluster on one machine, for the scale-out
// end-to-end tests (issue 17, e2e/tests/cluster.test.mjs): gw-1, gw-2 and
// gw-3 on the loopback addresses 127.0.0.11, .12 and .13, each with its
// public listener, admin listener and internal listener (`cluster.listen`)
// on the same three ports (as on three machines), one shared secret, each
// other as `[cluster.peers]`, all in front of one XMPP server. Debian's
// HAProxy or nginx in front of them, from the templates in config/cluster/
// (the documented examples, filled in with this run's addresses and ports).
//
//   const c = await startCluster({ dir, prosody });
//   const lb = await startBalancer({ dir, cluster: c, template: 'haproxy-http.cfg' });
//   ... lb.url('http', BOSH_ROUTE) ...
//   await c.nodes[0].restart();   // SIGTERM, wait for the exit, start again, /ready
//   await lb.stop(); await c.stop();

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, toml } from './gateway.mjs';
import { startHaproxyTemplate } from './haproxy.mjs';
import { startNginx } from './nginx.mjs';
import { freePort, freePorts, parsePrometheus, withTimeout } from './harness.mjs';

export const CLUSTER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/cluster');
export const WS_ROUTE = '/xmpp-websocket';
export const BOSH_ROUTE = '/http-bind';
export const NODES = [
  { name: 'gw-1', ip: '127.0.0.11' },
  { name: 'gw-2', ip: '127.0.0.12' },
  { name: 'gw-3', ip: '127.0.0.13' },
];

/** Drain settings of every node: out of rotation (HAProxy: 2 x 500 ms) before the drain. */
export const SHUTDOWN_DELAY_MS = 2_000;
export const DRAIN_TIMEOUT_MS = 5_000;

/** One node's ucgate.toml. */
export function nodeConfig({ node, ports, secret, xmpp }) {
  const peers = NODES.filter((n) => n.name !== node.name)
    .map((n) => `${n.name} = ${toml(`${n.ip}:${ports.cluster}`)}`)
    .join('\n');
  return `# written by e2e/lib/cluster.mjs: node ${node.name} of three
[server]
listen = ${toml(`${node.ip}:${ports.public}`)}
shutdown_delay = "${SHUTDOWN_DELAY_MS}ms"
drain_timeout = "${DRAIN_TIMEOUT_MS}ms"
drain_spread = "1s"

[admin]
listen = ${toml(`${node.ip}:${ports.admin}`)}

[[route]]
path = ${toml(WS_ROUTE)}
kind = "xmpp-websocket"

[[route]]
path = ${toml(BOSH_ROUTE)}
kind = "bosh"

[xmpp.domains.${toml(xmpp.domain)}]
address = ${toml(`127.0.0.1:${xmpp.port}`)}
tls = "starttls"
ca_file = ${toml(xmpp.caFile)}

[cluster]
node = ${toml(node.name)}
secret = ${toml(secret)}
listen = ${toml(`${node.ip}:${ports.cluster}`)}

[cluster.peers]
${peers}
`;
}

/**
 * Start the three nodes in front of `xmpp` ({ domain, port, caFile }, e.g.
 * a startProsody() result), each in its own directory under `dir`. Returns
 * { nodes, ports, secret, stop() }; each node is
 *   { name, ip, ports, gw, url(scheme, route), admin(path), metrics(),
 *     start(), stop(), restart() }
 * stop() and restart() resolve with timings ({ term, exit, ready }, ms
 * since the epoch) and the exit ({ code, signal }).
 */
export async function startCluster({ dir, xmpp }) {
  const [pub, admin, cluster] = await freePorts(3);
  const ports = { public: pub, admin, cluster };
  const secret = crypto.randomBytes(24).toString('hex');
  const nodes = NODES.map((n) => {
    const node = {
      ...n,
      ports,
      gw: null,
      dir: path.join(dir, n.name),
      url: (scheme, route) => `${scheme}://${n.ip}:${ports.public}${route}`,
      admin: (p) => `http://${n.ip}:${ports.admin}${p}`,
    };
    const config = nodeConfig({ node, ports, secret, xmpp });
    node.start = async () => {
      fs.mkdirSync(node.dir, { recursive: true });
      node.gw = await startGateway({ dir: node.dir, config, adminPort: ports.admin, adminHost: n.ip });
      return Date.now();
    };
    node.stop = async () => {
      const term = Date.now();
      const exit = await node.gw.close({ timeoutMs: SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + 5_000 });
      return { term, exit: Date.now(), code: exit.code, signal: exit.signal };
    };
    node.restart = async () => {
      const stopped = await node.stop();
      const ready = await node.start();
      return { ...stopped, ready };
    };
    node.metrics = async () => {
      const res = await fetch(node.admin('/metrics'), { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${n.name} /metrics answered HTTP ${res.status}: ${text}`);
      return parsePrometheus(text);
    };
    return node;
  });
  try {
    await Promise.all(nodes.map((n) => n.start()));
  } catch (e) {
    await Promise.all(nodes.map((n) => n.gw?.close().catch(() => {})));
    throw e;
  }
  return {
    nodes,
    ports,
    secret,
    node: (name) => nodes.find((n) => n.name === name),
    logs: () =>
      nodes.map((n) => `--- ${n.name} log (tail):\n${n.gw?.log().split('\n').slice(-60).join('\n')}`).join('\n'),
    async stop() {
      await Promise.all(nodes.map((n) => withTimeout(n.gw?.close() ?? Promise.resolve(), 20_000, `${n.name} stop`)));
    },
  };
}

/**
 * HAProxy from config/cluster/`template` in front of `cluster`'s nodes, on
 * a free port of 127.0.0.1. Returns startHaproxyTemplate()'s handle plus
 * servedBy(from): [{ node, method, path }] of the requests HAProxy logged
 * after `from` characters of its log, in order (templates with `option
 * httplog`).
 */
export async function startBalancer({ dir, cluster, template }) {
  const port = await freePort();
  const [g1, g2, g3] = cluster.nodes.map((n) => `${n.ip}:${n.ports.public}`);
  const lb = await startHaproxyTemplate({
    dir,
    template: path.join(CLUSTER_DIR, template),
    vars: { GW1: g1, GW2: g2, GW3: g3, ADMIN_PORT: cluster.ports.admin },
    port,
  });
  const line = / ucgate_in ucgate\/(gw-\d) .*"(\w+) (\S+) /g;
  const servedBy = (from = 0) =>
    [...lb.log().slice(from).matchAll(line)].map((m) => ({ node: m[1], method: m[2], path: m[3] }));
  return { ...lb, port, servedBy };
}

/** nginx from config/cluster/nginx-cluster.conf in front of `cluster`'s nodes (round-robin). */
export async function startNginxBalancer({ dir, cluster }) {
  const port = await freePort();
  const [g1, g2, g3] = cluster.nodes.map((n) => `${n.ip}:${n.ports.public}`);
  const lb = await startNginx({
    dir,
    port,
    template: path.join(CLUSTER_DIR, 'nginx-cluster.conf'),
    vars: { GW1: g1, GW2: g2, GW3: g3 },
  });
  return { ...lb, port };
}

/** The node a cluster BOSH sid names (`<node>.<start>.<random>`), or null. */
export function sidNode(sid) {
  const m = /^([a-z0-9-]{1,16})\.[0-9a-f]{16}\.[0-9a-f]{32}$/.exec(sid ?? '');
  return m ? m[1] : null;
}

export const BOSH_NS = 'http://jabber.org/protocol/httpbind';

/** POST a raw BOSH body to `url`: { status, text }. */
export async function boshPost(url, body) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset=utf-8' },
    body,
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, text: await res.text() };
}

/** A new BOSH session at `url` (no login): { sid, rid } of its next request. */
export async function createBoshSession(url, domain) {
  const rid = 1_000 + Math.floor(Math.random() * 1_000_000);
  const { status, text } = await boshPost(
    url,
    `<body xmlns='${BOSH_NS}' xmlns:xmpp='urn:xmpp:xbosh' content='text/xml; charset=utf-8' ` +
      `hold='1' rid='${rid}' to='${domain}' ver='1.6' wait='5' xml:lang='en' xmpp:version='1.0'/>`,
  );
  const sid = /\ssid=['"]([^'"]+)['"]/.exec(text)?.[1];
  if (status !== 200 || !sid) throw new Error(`BOSH session creation at ${url}: HTTP ${status} ${text}`);
  return { sid, rid: rid + 1 };
}

/** The terminate condition of a BOSH answer, or null if it is not a terminate body. */
export function terminateCondition(text) {
  if (!/\stype=['"]terminate['"]/.test(text)) return null;
  return /\scondition=['"]([^'"]+)['"]/.exec(text)?.[1] ?? '';
}
