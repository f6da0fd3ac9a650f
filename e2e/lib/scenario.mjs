// The browser scenario shared by tests/h2-websocket.test.mjs (real gateway)
// and tests/chromium-sanity.test.mjs (node reference server): set up a
// certificate, a TCP echo backend, a server under test and Chromium; then
// check WebSockets over HTTP/2 and the Origin allow-list.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  freePorts,
  launchChromium,
  makeCert,
  makeTempDir,
  metricValue,
  openOriginPage,
  scrapeMetrics,
  startEchoServer,
  waitReady,
  withTimeout,
} from './harness.mjs';

const STEP_TIMEOUT_MS = 10_000; // one WebSocket open / echo / close in the page

/**
 * `startServer({ dir, port, adminPort, cert, key, echoPort })` must start the
 * server under test and return `{ close(), abortCheck?(), log?() }`.
 * Everything created is torn down by the returned `cleanup()`, also when
 * setup fails half-way.
 */
export async function setupEnv({ startServer }) {
  const env = { failed: false, teardown: [] };
  env.cleanup = async () => {
    const errors = [];
    for (const fn of env.teardown.reverse()) {
      try {
        await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step');
      } catch (e) {
        errors.push(e);
      }
    }
    env.teardown = [];
    if (errors.length) throw new AggregateError(errors, 'teardown failed');
  };
  try {
    env.dir = makeTempDir();
    env.teardown.push(() => {
      if (env.failed && process.env.E2E_KEEP_TMP) {
        console.error(`[e2e] keeping ${env.dir}`);
      } else {
        fs.rmSync(env.dir, { recursive: true, force: true });
      }
    });
    const { cert, key } = await makeCert(env.dir);
    env.echo = await startEchoServer();
    env.teardown.push(() => env.echo.close());
    [env.port, env.adminPort] = await freePorts(2);
    env.origin = `https://localhost:${env.port}`;

    env.server = await startServer({
      dir: env.dir,
      port: env.port,
      adminPort: env.adminPort,
      cert,
      key,
      echoPort: env.echo.port,
    });
    env.teardown.push(async () => {
      if (env.failed && env.server.log) {
        console.error(`[e2e] server log (tail):\n${env.server.log().split('\n').slice(-60).join('\n')}`);
      }
      await env.server.close();
    });
    await waitReady(`http://127.0.0.1:${env.adminPort}/ready`, {
      timeoutMs: 15_000,
      abortCheck: env.server.abortCheck,
    });

    env.browser = await launchChromium();
    env.teardown.push(() => env.browser.close());
    const { page, consoleLines } = await openOriginPage(env.browser, env.origin);
    env.page = page;
    env.consoleLines = consoleLines;
    env.teardown.push(() => {
      if (env.failed && consoleLines.length) {
        console.error(`[e2e] browser console:\n  ${consoleLines.join('\n  ')}`);
      }
    });
    return env;
  } catch (e) {
    env.failed = true;
    await env.cleanup().catch(() => {});
    throw e;
  }
}

/** Run `fn(env)`, flagging the env as failed (for diagnostics) if it throws. */
export async function step(env, fn) {
  try {
    return await fn(env);
  } catch (e) {
    env.failed = true;
    throw e;
  }
}

// Deterministic bytes, distinct per socket, so cross-talk between WebSockets
// (or between their backend connections) shows up as a mismatch.
function pseudoRandomBytes(seed, n) {
  const out = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

function messagesFor(i) {
  return [
    { type: 'text', data: `ws${i}: hello` },
    { type: 'binary', bytes: Buffer.from(Array.from({ length: 256 }, (_, b) => b)) },
    { type: 'text', data: `ws${i}: héllo wörld ✓ 🚀 — ÿ` },
    { type: 'binary', bytes: pseudoRandomBytes(i + 1, 70_000) }, // > 64 KiB: h2 flow control
    { type: 'text', data: `ws${i}:` + 'abc'.repeat(1000) }, // 16-bit WebSocket length
    { type: 'binary', bytes: Buffer.from([i, 0, 255, 10, 13]) },
  ];
}

function expectedBytes(messages) {
  return Buffer.concat(
    messages.map((m) => (m.type === 'text' ? Buffer.from(m.data, 'utf8') : m.bytes)),
  );
}

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

// ---- in-page code (serialised by Playwright; must be self-contained) ----

async function pagePrimeH2(url) {
  // A plain request first: Chromium only sends WebSockets over HTTP/2 on an
  // existing H2 session whose SETTINGS had ENABLE_CONNECT_PROTOCOL=1.
  try {
    const res = await fetch(url, { cache: 'no-store' });
    await res.arrayBuffer();
    const entry = performance.getEntriesByName(url).at(-1);
    return { status: res.status, nextHopProtocol: entry?.nextHopProtocol ?? null };
  } catch (e) {
    return { error: String(e) };
  }
}

async function pageEchoSockets({ url, perSocket, timeoutMs }) {
  const enc = new TextEncoder();
  const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const toB64 = (bytes) => {
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  };

  function open() {
    const st = { chunks: [], received: 0, events: [], closed: null, wake: null };
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    st.ws = ws;
    const poke = () => st.wake?.();
    ws.onmessage = (e) => {
      const b = typeof e.data === 'string' ? enc.encode(e.data) : new Uint8Array(e.data);
      st.chunks.push(b);
      st.received += b.length;
      poke();
    };
    st.opened = new Promise((resolve) => {
      const t = setTimeout(() => resolve(`no open/error/close within ${timeoutMs} ms`), timeoutMs);
      ws.onopen = () => {
        st.events.push('open');
        clearTimeout(t);
        resolve(null);
      };
      ws.onerror = () => {
        st.events.push('error');
        poke();
      };
      ws.onclose = (e) => {
        st.events.push('close');
        st.closed = { code: e.code, reason: e.reason, wasClean: e.wasClean };
        clearTimeout(t);
        resolve(`closed before open (code ${e.code})`);
        poke();
      };
    });
    return st;
  }

  // Wait until cond() holds, the socket closed, or the timeout; true if cond().
  function until(st, cond) {
    return new Promise((resolve) => {
      const check = () => {
        if (cond()) return done(true);
        if (st.closed) return done(false);
      };
      const t = setTimeout(() => done(false), timeoutMs);
      const done = (v) => {
        clearTimeout(t);
        st.wake = null;
        resolve(v);
      };
      st.wake = check;
      check();
    });
  }

  // Open all sockets first so they are multiplexed concurrently.
  const socks = perSocket.map(() => open());
  const openErrors = await Promise.all(socks.map((s) => s.opened));

  const results = await Promise.all(
    socks.map(async (st, i) => {
      const r = { openError: openErrors[i], events: st.events, log: [] };
      if (!r.openError) {
        let sent = 0;
        for (const m of perSocket[i]) {
          if (m.type === 'text') {
            st.ws.send(m.data);
            sent += enc.encode(m.data).length;
          } else {
            const bytes = fromB64(m.b64);
            st.ws.send(bytes);
            sent += bytes.length;
          }
          if (!(await until(st, () => st.received >= sent))) {
            r.log.push(`stalled after sending ${sent} bytes: received ${st.received}`);
            break;
          }
        }
        st.ws.close(1000, 'done');
        if (!(await until(st, () => st.closed !== null))) r.log.push('no close event after close()');
      }
      const all = new Uint8Array(st.received);
      let off = 0;
      for (const c of st.chunks) {
        all.set(c, off);
        off += c.length;
      }
      r.receivedB64 = toB64(all);
      r.closed = st.closed;
      return r;
    }),
  );
  return results;
}

async function pageTryOpen({ url, timeoutMs }) {
  return new Promise((resolve) => {
    const events = [];
    const ws = new WebSocket(url);
    const t = setTimeout(() => {
      events.push('timeout');
      resolve({ events, closed: null });
    }, timeoutMs);
    ws.onopen = () => {
      events.push('open');
      ws.close(1000);
    };
    ws.onerror = () => events.push('error');
    ws.onclose = (e) => {
      events.push('close');
      clearTimeout(t);
      resolve({ events, closed: { code: e.code, wasClean: e.wasClean } });
    };
  });
}

// ---- checks ----

/**
 * Open `count` WebSockets to /echo, echo text and binary messages through the
 * TCP backend, and prove from the server's metrics that they all used HTTP/2
 * on one single TCP connection.
 */
export async function checkEchoOverH2(env, { count = 5 } = {}) {
  const { page, origin, adminPort, echo } = env;
  const browserLog = () => `\nbrowser console:\n  ${env.consoleLines.join('\n  ')}`;

  const prime = await withTimeout(page.evaluate(pagePrimeH2, `${origin}/nope`), 20_000, 'priming fetch');
  assert.ok(!prime.error, `priming fetch(${origin}/nope) failed: ${prime.error}${browserLog()}`);
  assert.equal(prime.nextHopProtocol, 'h2', `priming fetch did not use HTTP/2 (ALPN): ${JSON.stringify(prime)}`);

  const perSocketNode = Array.from({ length: count }, (_, i) => messagesFor(i));
  const perSocket = perSocketNode.map((msgs) =>
    msgs.map((m) => (m.type === 'text' ? m : { type: 'binary', b64: m.bytes.toString('base64') })),
  );
  const results = await withTimeout(
    page.evaluate(pageEchoSockets, {
      url: `${origin.replace(/^https:/, 'wss:')}/echo`,
      perSocket,
      timeoutMs: STEP_TIMEOUT_MS,
    }),
    count * 3 * STEP_TIMEOUT_MS + 10_000,
    'WebSocket echo in page',
  );

  assert.equal(results.length, count);
  results.forEach((r, i) => {
    assert.equal(r.openError, null, `ws${i} did not open: ${r.openError} (events ${r.events})${browserLog()}`);
    const got = Buffer.from(r.receivedB64, 'base64');
    const want = expectedBytes(perSocketNode[i]);
    const diff = firstDifference(got, want);
    assert.ok(
      diff === -1,
      `ws${i}: echoed bytes differ from sent bytes: got ${got.length} bytes, want ${want.length}, ` +
        `first difference at offset ${diff}; ${r.log.join('; ')}`,
    );
    assert.ok(r.closed, `ws${i}: no close event after close(1000): ${r.log.join('; ')}`);
    assert.equal(r.closed.wasClean, true, `ws${i}: closing handshake not clean: ${JSON.stringify(r.closed)}`);
  });

  assert.equal(echo.accepted, count, `echo backend should have seen one TCP connection per WebSocket`);

  const { text, samples } = await scrapeMetrics(adminPort);
  const accepted = metricValue(samples, 'ucgate_connections_accepted_total', { listener: 'main' });
  assert.equal(
    accepted,
    1,
    `ucgate_connections_accepted_total{listener="main"} should be exactly 1 ` +
      `(fetch + all WebSockets on one HTTP/2 connection); metrics:\n${text}`,
  );
  const h2Upgrades = metricValue(samples, 'ucgate_ws_upgrades_total', { route: '/echo', http: 'h2' });
  assert.equal(
    h2Upgrades,
    count,
    `ucgate_ws_upgrades_total{route="/echo",http="h2"} should equal the ${count} WebSockets opened; metrics:\n${text}`,
  );
  const allUpgrades = metricValue(samples, 'ucgate_ws_upgrades_total', { route: '/echo' });
  assert.equal(allUpgrades, count, `no /echo upgrades should have used another protocol; metrics:\n${text}`);
}

/**
 * A WebSocket to /echo-strict, whose allow-list does not contain the page's
 * origin, must fail to open, must not reach the backend, and must not cost a
 * new TCP connection (Chromium does not retry over HTTP/1.1).
 */
export async function checkOriginRefused(env) {
  const { page, origin, adminPort, echo } = env;
  const backendBefore = echo.accepted;
  const before = metricValue((await scrapeMetrics(adminPort)).samples, 'ucgate_connections_accepted_total', {
    listener: 'main',
  });

  const r = await withTimeout(
    page.evaluate(pageTryOpen, { url: `${origin.replace(/^https:/, 'wss:')}/echo-strict`, timeoutMs: STEP_TIMEOUT_MS }),
    STEP_TIMEOUT_MS + 10_000,
    'strict-origin WebSocket in page',
  );
  assert.ok(!r.events.includes('open'), `WebSocket to /echo-strict opened despite foreign origin: ${r.events}`);
  assert.ok(!r.events.includes('timeout'), `WebSocket to /echo-strict neither failed nor opened: ${r.events}`);
  assert.ok(r.events.includes('error'), `no error event for refused WebSocket: ${r.events}`);
  assert.ok(r.closed && r.closed.code === 1006, `refused WebSocket should close abnormally (1006): ${JSON.stringify(r.closed)}`);

  // Give a (wrongly) accepted upgrade's backend connection a moment to show up.
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(echo.accepted, backendBefore, 'refused WebSocket must not open a backend connection');

  const { text, samples } = await scrapeMetrics(adminPort);
  const strictUpgrades = metricValue(samples, 'ucgate_ws_upgrades_total', { route: '/echo-strict' }) ?? 0;
  assert.equal(strictUpgrades, 0, `refused WebSocket counted as upgrade; metrics:\n${text}`);
  const accepted = metricValue(samples, 'ucgate_connections_accepted_total', { listener: 'main' });
  assert.equal(accepted, before, `refused WebSocket opened another TCP connection; metrics:\n${text}`);
}
