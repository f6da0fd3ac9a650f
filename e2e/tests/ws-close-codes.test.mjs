// End-to-end: WebSocket protocol violations on the ucgate binary's three
// WebSocket routes, each in front of a real peer: a TCP echo server (tcp),
// Prosody (xmpp-websocket, stream opened through the gateway's STARTTLS
// first) and Kamailio (sip-websocket, an OPTIONS answered first). A raw
// client writes each broken frame (lib/wsframe.mjs) on a live connection
// and must get the RFC 6455 close code (1002 protocol error, 1007 invalid
// UTF-8, 1009 message too big), then a FIN rather than a reset, and the
// gateway must count a client error for it, never `client_gone`. On the
// XMPP route a message too big first gets `policy-violation` and `<close/>`
// (RFC 7395 §3.6).
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/ws-close-codes.test.mjs
//
// Needs Debian's prosody and kamailio (scripts/install-deps).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, metricValue, scrapeMetrics, sleep, startEchoServer, withTimeout } from '../lib/harness.mjs';
import { startKamailio } from '../lib/kamailio.mjs';
import { startProsody } from '../lib/prosody.mjs';
import { encodeClientFrame, OP, parseServerFrames } from '../lib/wsframe.mjs';

/** max_message_size of every route here. */
const MAX = 1024;
const STEP_MS = 5_000;

/** The violations, shared by the three routes: bytes, close code, metric label. */
function cases() {
  const text = Buffer.from('<presence/>');
  const half = Buffer.alloc(MAX / 2 + 100, 'a');
  return [
    { name: 'unmasked frame', bytes: encodeClientFrame(0x81, text, { masked: false }), code: 1002, label: 'protocol_error' },
    { name: 'RSV1 set without an extension', bytes: encodeClientFrame(0xc1, text), code: 1002, label: 'protocol_error' },
    { name: 'reserved data opcode 3', bytes: encodeClientFrame(0x83, text), code: 1002, label: 'protocol_error' },
    { name: 'reserved control opcode 0xB', bytes: encodeClientFrame(0x8b), code: 1002, label: 'protocol_error' },
    { name: 'ping of 126 bytes', bytes: encodeClientFrame(0x89, Buffer.alloc(126, 'p')), code: 1002, label: 'protocol_error' },
    { name: 'fragmented ping', bytes: encodeClientFrame(0x09, Buffer.from('p')), code: 1002, label: 'protocol_error' },
    { name: 'invalid UTF-8 in a text message', bytes: encodeClientFrame(0x81, Buffer.from([0x3c, 0xc3, 0x28, 0x3e])), code: 1007, label: 'invalid_utf8' },
    {
      name: 'message over max_message_size',
      bytes: Buffer.concat([encodeClientFrame(0x01, half), encodeClientFrame(0x80, half)]),
      code: 1009,
      label: 'message_too_big',
    },
  ];
}

/** Length of the first complete server frame in `b`, or -1. */
function frameLength(b) {
  if (b.length < 2) return -1;
  let len = b[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (b.length < 4) return -1;
    len = b.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return -1;
    len = Number(b.readBigUInt64BE(2));
    off = 10;
  }
  return b.length >= off + len ? off + len : -1;
}

/** A raw WebSocket client over one TCP connection. */
class RawWs {
  static async open(port, path, protocol) {
    const ws = new RawWs(net.connect(port, '127.0.0.1'));
    await withTimeout(new Promise((resolve, reject) => {
      ws.sock.once('connect', resolve);
      ws.sock.once('error', reject);
    }), STEP_MS, 'TCP connect');
    const proto = protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '';
    ws.sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${proto}\r\n`);
    await ws.until(() => ws.buf.indexOf('\r\n\r\n') >= 0, 'the upgrade answer');
    const end = ws.buf.indexOf('\r\n\r\n') + 4;
    const head = ws.buf.subarray(0, end).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 101 /, head);
    ws.buf = ws.buf.subarray(end);
    return ws;
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.error = null;
    this.wake = () => {};
    sock.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('error', (e) => {
      this.error = e;
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  async until(cond, what) {
    await withTimeout(new Promise((resolve) => {
      const check = () => {
        if (cond() || this.closed) resolve();
      };
      this.wake = check;
      check();
    }), STEP_MS, what);
    if (!cond()) throw new Error(`connection ended while waiting for ${what} (${this.error?.message ?? 'no error'})`);
  }

  /** The next frame from the gateway (pings skipped). */
  async next(what) {
    for (;;) {
      await this.until(() => frameLength(this.buf) > 0, what);
      const n = frameLength(this.buf);
      const [f] = parseServerFrames(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      if (f.opcode !== OP.PING) return f;
    }
  }

  send(bytes) {
    this.sock.write(bytes);
  }

  sendText(s) {
    this.send(encodeClientFrame(0x80 | OP.TEXT, Buffer.from(s)));
  }

  /** Sends the violation and garbage after it, reads until the gateway ends the connection. */
  async violate(bytes) {
    this.send(bytes);
    // bytes the gateway must read and drop: left unread, they would turn its
    // close into a reset that can destroy the close frame in flight
    this.send(Buffer.alloc(16 << 10, 0x5a));
    await withTimeout(new Promise((resolve) => {
      this.wake = () => this.closed && resolve();
      this.wake();
    }), STEP_MS, 'the gateway to end the connection');
    assert.equal(this.error, null, `a FIN after the close frame, not ${this.error?.code}`);
    return parseServerFrames(this.buf);
  }
}

function gatewayConfig({ port, adminPort, echoPort, prosodyPort, caFile, corePort }) {
  return `# written by e2e/tests/ws-close-codes.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = "/echo"
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}
max_message_size = ${MAX}

[[route]]
path = "/xmpp-websocket"
kind = "xmpp-websocket"
max_message_size = ${MAX}

[[route]]
path = "/sip"
kind = "sip-websocket"
core = ${toml(`sip:127.0.0.1:${corePort};transport=udp`)}
max_message_size = ${MAX}

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}

[sip]
flow_token_key = "ucgate e2e flow token key, shared by every gateway node"
`;
}

/** Per route: how to reach it and how to prove the peer behind it is live. */
const ROUTES = [
  {
    path: '/echo',
    protocol: null,
    async live(ws) {
      ws.sendText('hello');
      const f = await ws.next('the echo');
      assert.equal(f.payload.toString(), 'hello');
    },
  },
  {
    path: '/xmpp-websocket',
    protocol: 'xmpp',
    async live(ws) {
      ws.sendText("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
      const open = await ws.next("Prosody's <open/>");
      assert.match(open.payload.toString(), /^<open /);
      const features = await ws.next("Prosody's features");
      assert.match(features.payload.toString(), /<stream:features|<features/);
    },
  },
  {
    path: '/sip',
    protocol: 'sip',
    async live(ws) {
      const tag = Math.random().toString(36).slice(2);
      ws.sendText(
        `OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/WS ${tag}.invalid;branch=z9hG4bK${tag}\r\nMax-Forwards: 70\r\n` +
          `To: <sip:127.0.0.1>\r\nFrom: <sip:probe@127.0.0.1>;tag=${tag}\r\nCall-ID: ${tag}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`,
      );
      const f = await ws.next("Kamailio's answer");
      assert.match(f.payload.toString(), /^SIP\/2\.0 200 Keepalive\r\n/); // answered by Kamailio itself
    },
  },
];

describe(`WebSocket close codes for protocol violations (${UCGATE_BIN})`, { timeout: 90_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    try {
      env.dir = makeTempDir('ucgate-e2e-wsclose-');
      env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
      env.echo = await startEchoServer();
      env.teardown.push(() => env.echo.close());
      env.prosody = await startProsody({ domains: ['localhost'] });
      env.teardown.push(() => env.prosody.stop());
      env.kam = await startKamailio();
      env.teardown.push(() => env.kam.stop());
      [env.port, env.adminPort] = await freePorts(2);
      env.gateway = await startGateway({
        dir: env.dir,
        adminPort: env.adminPort,
        config: gatewayConfig({
          port: env.port,
          adminPort: env.adminPort,
          echoPort: env.echo.port,
          prosodyPort: env.prosody.port,
          caFile: env.prosody.caFile,
          corePort: env.kam.port,
        }),
      });
      env.teardown.push(async () => {
        if (env.failed) console.error(`[e2e] gateway log (tail):\n${env.gateway.log().split('\n').slice(-60).join('\n')}`);
        await env.gateway.close();
      });
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  });

  const step = (name, fn) =>
    it(name, { timeout: 30_000 }, async () => {
      try {
        await env.gateway.abortCheck();
        await fn();
      } catch (e) {
        env.failed = true;
        throw e;
      }
    });

  for (const route of ROUTES) {
    step(`${route.path}: every violation gets its close code and counts as a client error`, async () => {
      const counts = {};
      for (const c of cases()) {
        const ws = await RawWs.open(env.port, route.path, route.protocol);
        await route.live(ws);
        const frames = await ws.violate(c.bytes);
        const last = frames.at(-1);
        assert.ok(last && last.opcode === OP.CLOSE, `${route.path}, ${c.name}: ends with a close frame, got ${JSON.stringify(frames)}`);
        assert.equal(last.code, c.code, `${route.path}, ${c.name}: close code (${last.reason})`);
        counts[c.label] = (counts[c.label] ?? 0) + 1;
      }
      // the gateway counts each end once its side is done: poll briefly
      let samples;
      for (let i = 0; i < 50; i++) {
        ({ samples } = await scrapeMetrics(env.adminPort));
        const done = Object.entries(counts).every(
          ([label, n]) => metricValue(samples, 'ucgate_ws_closes_total', { route: route.path, reason: label }) === n,
        );
        if (done) break;
        await sleep(100);
      }
      for (const [label, n] of Object.entries(counts)) {
        assert.equal(metricValue(samples, 'ucgate_ws_closes_total', { route: route.path, reason: label }), n, `${route.path}: closes with reason ${label}`);
        assert.equal(metricValue(samples, 'ucgate_errors_total', { route: route.path, side: 'client', kind: label }), n, `${route.path}: client errors of kind ${label}`);
      }
      assert.equal(metricValue(samples, 'ucgate_ws_closes_total', { route: route.path, reason: 'client_gone' }), undefined, `${route.path}: no violation counted as client_gone`);
    });
  }

  step('/xmpp-websocket: a message too big gets policy-violation and <close/>, then 1009', async () => {
    const ws = await RawWs.open(env.port, '/xmpp-websocket', 'xmpp');
    await ROUTES[1].live(ws);
    const big = `<message xmlns='jabber:client' to='localhost'><body>${'x'.repeat(MAX)}</body></message>`;
    const frames = await ws.violate(encodeClientFrame(0x81, Buffer.from(big)));
    assert.deepEqual(frames.map((f) => f.opcode), [OP.TEXT, OP.TEXT, OP.CLOSE], JSON.stringify(frames));
    assert.match(frames[0].payload.toString(), /^<stream:error[^>]*><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
    assert.equal(frames[1].payload.toString(), "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    assert.equal(frames[2].code, 1009);
  });
});
