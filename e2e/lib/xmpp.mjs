// XMPP client helpers for the end-to-end tests, on top of @xmpp/client
// (xmpp.js): log in with a bounded time, collect incoming messages and errors,
// stop cleanly, and make a test CA trusted for direct STARTTLS to Prosody.
//
// Notes on @xmpp/client 0.14 that these helpers deal with:
//  * Its 'error' events (stream errors, SASL failures) are EventEmitter
//    errors: without a listener they would throw and crash the test process.
//    Every client made here has one that records them.
//  * It reconnects on its own after a disconnect; the tests want to see
//    failures, so reconnection is switched off.
//  * Its STARTTLS passes only { socket, host: domain } to tls.connect: no
//    way to give it a CA. `trustCA()` adds one process-wide (see there).
//  * Its WebSocket transport uses the global WebSocket, which Node 20 has
//    only with --experimental-websocket; `ensureWebSocket()` installs the
//    `ws` package's (same browser-style API) when it is missing.

import fs from 'node:fs';
import tls from 'node:tls';
import { client, xml } from '@xmpp/client';

export { xml };

export const LOGIN_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Make sure `globalThis.WebSocket` exists (Node 20 without the flag: the `ws` package). */
export async function ensureWebSocket() {
  if (typeof globalThis.WebSocket === 'function') return 'global';
  const { WebSocket } = await import('ws');
  globalThis.WebSocket = WebSocket;
  return 'ws';
}

/**
 * Trust the PEM CA in `caFile` (in addition to the system roots) for every
 * `tls.connect(options)` call in this process that does not pass its own
 * `ca` — which is how @xmpp/starttls upgrades the socket (it reads
 * `tls.connect` from the module object at call time, so wrapping it works).
 * The certificate must still match the XMPP domain (host name checks stay
 * on). Returns a function that undoes it.
 *
 * (NODE_EXTRA_CA_CERTS would do the same but is read only at process start,
 * before a test has made its CA.)
 */
export function trustCA(caFile) {
  const pem = fs.readFileSync(caFile, 'utf8');
  const original = tls.connect;
  tls.connect = function connectTrustingTestCA(...args) {
    const [first] = args;
    if (first && typeof first === 'object' && !Array.isArray(first) && first.ca === undefined) {
      args[0] = { ...first, ca: [...tls.rootCertificates, pem] };
    }
    return original.apply(this, args);
  };
  return () => {
    tls.connect = original;
  };
}

/**
 * A client that is not started yet. `opts`: service, domain, username,
 * password, resource. Returns a handle:
 *   xmpp          the @xmpp/client entity
 *   errors        every 'error' event, in order
 *   messages      every <message/> received, in order
 *   nextMessage(pred, ms)  resolves with the first (past or future) message
 *                 matching `pred` that was not returned before
 *   start()       xmpp.start() bounded by LOGIN_TIMEOUT_MS
 *   stop()        xmpp.stop() bounded; never leaves a socket open
 */
export function makeClient({ service, domain, username, password, resource }) {
  const xmpp = client({
    service,
    domain,
    username,
    password,
    resource,
    timeout: 10_000, // per negotiation step (default 2 s)
  });
  xmpp.reconnect.stop();

  const handle = {
    xmpp,
    errors: [],
    messages: [],
    statuses: [],
    consumed: new Set(),
    waiters: [],
  };
  xmpp.on('error', (e) => handle.errors.push(e));
  xmpp.on('status', (s) => handle.statuses.push(s));
  xmpp.on('stanza', (st) => {
    if (!st.is('message')) return;
    handle.messages.push(st);
    for (const w of [...handle.waiters]) w();
  });

  handle.nextMessage = (pred, ms = 10_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const hit = handle.messages.find((m) => !handle.consumed.has(m) && pred(m));
        if (!hit) return false;
        handle.consumed.add(hit);
        done();
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no matching message within ${ms} ms; received: ${handle.messages.map(String).join('\n') || 'none'}; ` +
              `errors: ${handle.errors.map((e) => e.message).join(', ') || 'none'}`,
          ),
        );
      }, ms);
      const waiter = () => check();
      const done = () => {
        clearTimeout(timer);
        handle.waiters = handle.waiters.filter((w) => w !== waiter);
      };
      handle.waiters.push(waiter);
      check();
    });

  handle.start = () => withTimeout(xmpp.start(), LOGIN_TIMEOUT_MS, `XMPP login of ${username}@${domain} via ${service}`);

  handle.stop = async () => {
    if (xmpp.status === 'offline') return;
    try {
      await withTimeout(xmpp.stop(), STOP_TIMEOUT_MS, `xmpp.stop() of ${username}@${domain}`);
    } catch (e) {
      // Make sure nothing stays open, then report.
      try {
        xmpp.socket?.socket?.destroy?.();
        xmpp.socket?.socket?.close?.();
      } catch {
        /* already gone */
      }
      throw e;
    }
  };

  return handle;
}

/** Log in; on failure stop the client and rethrow (with `.client` attached). */
export async function login(opts) {
  const c = makeClient(opts);
  try {
    await c.start();
  } catch (e) {
    await c.stop().catch(() => {});
    e.client = c;
    throw e;
  }
  return c;
}

/**
 * Start a client that is expected to fail; resolve with the error that
 * start() rejected with (and the client, stopped), or throw if it logged in.
 */
export async function expectLoginFailure(opts) {
  const c = makeClient(opts);
  // @xmpp/connection 0.14 drops its parser when its stop() ends the stream
  // and then throws (uncaught, in its socket 'data' listener) on any byte
  // still arriving, such as the server's own <close/> after a stream error
  // when that is slower than the client's stop (seen on a loaded machine).
  // What the gateway sends is checked byte by byte elsewhere
  // (tests/ws-close-codes.test.mjs, crates/ucgate/tests/xmpp_ws.rs); here
  // late bytes for a stopped client are dropped, as the library meant to.
  const onData = c.xmpp._onData;
  c.xmpp._onData = function (data) {
    if (this.parser) onData.call(this, data);
  };
  let error = null;
  try {
    await c.start();
  } catch (e) {
    error = e;
  }
  await c.stop().catch(() => {});
  if (!error) throw new Error(`login of ${opts.username}@${opts.domain} via ${opts.service} unexpectedly succeeded`);
  return { error, client: c };
}

let msgCounter = 0;

/**
 * `from` sends a chat message to `to`'s full JID; resolves with the message
 * as `to` received it. Asserts nothing itself: returns { sent, received }.
 */
export async function sendChat(from, to, body, ms = 10_000) {
  const id = `e2e-${process.pid}-${++msgCounter}`;
  const toJid = to.xmpp.jid.toString();
  const waiting = to.nextMessage((m) => m.attrs.id === id, ms);
  await from.xmpp.send(xml('message', { to: toJid, type: 'chat', id }, xml('body', {}, body)));
  const received = await waiting;
  return { id, toJid, fromJid: from.xmpp.jid.toString(), received };
}
