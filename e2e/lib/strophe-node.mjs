// Strophe.js (npm `strophe.js` 5) in node, over BOSH (XEP-0124/XEP-0206),
// for the end-to-end tests: a client handle that records Strophe's statuses,
// raw traffic and chat messages, with bounded waits and a cleanup that never
// leaves a long-poll running.
//
//   const a = stropheClient('http://127.0.0.1:PORT/http-bind');
//   const st = await a.connect('alice@localhost/node', 'secret');  // settled status
//   a.send($msg({ to, type: 'chat', id }).c('body').t('hi').tree());
//   await a.nextMessage((m) => m.id === id);
//   await a.disconnect();                                           // DISCONNECTED
//   await a.close();                                                // always, in finally
//
// What Strophe.js 5 needs in node (verified with 5.0.0, node 20):
//  * Its node entry (`import … from 'strophe.js'` resolves to
//    dist/strophe.node.esm.js) installs DOMParser, XMLSerializer and a
//    `document` from `@xmldom/xmldom`, and `ws` as the global WebSocket. Both
//    are optional peer dependencies: e2e/package.json pins them.
//  * BOSH needs a global XMLHttpRequest, which node lacks and Strophe does not
//    provide (it has no fetch-based transport). `xhr2` (pinned) implements it
//    over node's http module, but has no `responseXML`, and Strophe's BOSH
//    Request.getResponse() reads only `responseXML.documentElement`: with
//    just `responseText` it logs "Got responseText but no responseXML",
//    parses it, and then returns null, i.e. drops every response. The
//    subclass below adds `responseXML`, parsed from `responseText` with the
//    global DOMParser Strophe installed (a parse error yields Strophe's own
//    <parsererror/> document, which it reports).
//  * SCRAM uses globalThis.crypto.subtle: node 20 has it.
//  * An http:// (or https://) service URL selects the BOSH transport.

import XHR2 from 'xhr2';
import { $build, $iq, $msg, $pres, Strophe } from 'strophe.js';

export { $build, $iq, $msg, $pres, Strophe };

const STEP_MS = 20_000;
const RAW_LIMIT = 2_000;

/** xhr2 plus `responseXML` (a DOM Document parsed from the text, once). */
export class XMLHttpRequestWithXML extends XHR2 {
  get responseXML() {
    if (this.readyState !== 4 || !this.responseText) return null;
    if (this._e2eXmlFor !== this.responseText) {
      this._e2eXmlFor = this.responseText;
      this._e2eXml = new globalThis.DOMParser().parseFromString(this.responseText, 'text/xml');
    }
    return this._e2eXml;
  }
}

/** Install the XMLHttpRequest above as the global one, unless there is one already. */
export function ensureXMLHttpRequest() {
  if (typeof globalThis.XMLHttpRequest !== 'function') globalThis.XMLHttpRequest = XMLHttpRequestWithXML;
  return globalThis.XMLHttpRequest;
}

// Strophe logs to the console at DEBUG by default in node (every request and
// readyState): far too much for a test run. E2E_STROPHE_LOG=debug|info|warn|error.
{
  const level = (process.env.E2E_STROPHE_LOG ?? 'warn').toUpperCase();
  Strophe.setLogLevel(Strophe.LogLevel[level] ?? Strophe.LogLevel.WARN);
}

export const statusName = (s) => Object.keys(Strophe.Status).find((k) => Strophe.Status[k] === s) ?? String(s);

/** Statuses after which a login attempt is over, one way or the other. */
export const SETTLED = ['CONNECTED', 'CONNFAIL', 'AUTHFAIL', 'ERROR', 'CONNTIMEOUT', 'DISCONNECTED'];

/** Strophe's chat message element as a plain object. */
function messageRecord(msg) {
  const body = msg.getElementsByTagName('body')[0];
  return {
    from: msg.getAttribute('from'),
    to: msg.getAttribute('to'),
    type: msg.getAttribute('type'),
    id: msg.getAttribute('id'),
    body: body ? body.textContent : null,
  };
}

/**
 * A Strophe connection to `service` (a BOSH URL), not yet connected.
 * `options` go to Strophe.Connection. The handle:
 *   conn        the Strophe.Connection
 *   statuses    [{ status, name, condition, elem, t }] every status change
 *   messages    [{ from, to, type, id, body }] every chat message received,
 *               in the order Strophe handled them
 *   inOrder()   `messages` in the order the connection manager sent them:
 *               by the rid of the BOSH request whose response carried each.
 *               Strophe handles responses as they complete, and two
 *               responses sent a moment apart on two HTTP connections may
 *               complete in either order.
 *   onStatus    null, or a function called with each new status record
 *   raw         [{ dir: 'in'|'out', data }] Strophe's raw XML (bounded)
 *   requests    number of BOSH HTTP requests Strophe made (xhr.send calls)
 *   connect(jid, password, ms)  resolves with the first settled status
 *   waitStatus(names, { from, ms })  the first status in `names` at index ≥ from
 *   nextMessage(pred, ms)  first not-yet-returned message matching pred
 *   waitMessages(n, ms)   until `messages.length >= n`
 *   send(elem)  conn.send + flush
 *   disconnect(reason, ms)  conn.disconnect(); resolves with DISCONNECTED
 *   close()     idempotent cleanup: disconnect if needed, then abort everything
 */
export function stropheClient(service, options = {}) {
  ensureXMLHttpRequest();
  const conn = new Strophe.Connection(service, options);
  const h = {
    conn,
    service,
    statuses: [],
    messages: [],
    raw: [],
    consumed: new Set(),
    waiters: new Set(),
    jid: null,
    onStatus: null,
  };
  const wake = () => {
    for (const w of [...h.waiters]) w();
  };
  const push = (dir) => (data) => {
    if (h.raw.length < RAW_LIMIT) h.raw.push({ dir, data: String(data).slice(0, 8_000) });
  };
  conn.rawInput = push('in');
  conn.rawOutput = push('out');
  // Each request binds conn._dataRecv when it is made: note whose response
  // is being handled (handlers run synchronously inside).
  let rid = null;
  const rids = []; // of each of h.messages
  const dataRecv = conn._dataRecv;
  conn._dataRecv = function (req, raw) {
    rid = req?.rid ?? null;
    try {
      return dataRecv.call(this, req, raw);
    } finally {
      rid = null;
    }
  };

  /** Resolve when `check()` returns a non-undefined value; reject after `ms`. */
  const until = (check, ms, what) =>
    new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        h.waiters.delete(waiter);
      };
      const waiter = () => {
        let v;
        try {
          v = check();
        } catch (e) {
          done();
          reject(e);
          return;
        }
        if (v !== undefined) {
          done();
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `${what}: not within ${ms} ms; statuses ${h.statuses.map((s) => s.name).join(' → ') || 'none'}; ` +
              `${h.messages.length} messages`,
          ),
        );
      }, ms);
      h.waiters.add(waiter);
      waiter();
    });

  h.waitStatus = (names, { from = 0, ms = STEP_MS } = {}) =>
    until(() => h.statuses.slice(from).find((s) => names.includes(s.name)), ms, `Strophe status in [${names}]`);

  h.nextMessage = (pred, ms = STEP_MS) =>
    until(
      () => {
        const hit = h.messages.find((m) => !h.consumed.has(m) && pred(m));
        if (hit) h.consumed.add(hit);
        return hit;
      },
      ms,
      'matching chat message',
    );

  h.inOrder = () =>
    h.messages
      .map((m, i) => [m, i])
      .sort(([, i], [, j]) => (rids[i] ?? 0) - (rids[j] ?? 0) || i - j)
      .map(([m]) => m);

  h.waitMessages = (n, ms = STEP_MS) => until(() => (h.messages.length >= n ? h.messages.length : undefined), ms, `${n} messages`);

  h.connect = (jid, password, ms = STEP_MS) => {
    const from = h.statuses.length;
    conn.addHandler(
      (msg) => {
        h.messages.push(messageRecord(msg));
        rids.push(rid);
        wake();
        return true; // keep the handler
      },
      null,
      'message',
      'chat',
    );
    conn.connect(jid, password, (status, condition, elem) => {
      h.statuses.push({
        status,
        name: statusName(status),
        condition: condition ?? null,
        elem: elem ? Strophe.serialize(elem) : null,
        t: Date.now(),
      });
      if (status === Strophe.Status.CONNECTED) h.jid = conn.jid;
      h.onStatus?.(h.statuses.at(-1));
      wake();
    });
    return h.waitStatus(SETTLED, { from, ms });
  };

  h.send = (elem) => {
    conn.send(elem);
    conn.flush();
  };

  h.disconnect = (reason = 'e2e done', ms = STEP_MS) => {
    const from = h.statuses.length;
    conn.disconnect(reason);
    return h.waitStatus(['DISCONNECTED'], { from, ms });
  };

  let closed = false;
  h.close = async () => {
    if (closed) return;
    closed = true;
    try {
      if (conn.connected && !conn.disconnecting) await h.disconnect('e2e cleanup', 5_000);
      else if (conn.disconnecting) await h.waitStatus(['DISCONNECTED'], { ms: 5_000 });
    } catch {
      /* forced below */
    }
    // Whatever state it is in: no request in flight, no timer left.
    try {
      conn._proto._abortAllRequests?.();
    } catch {
      /* already gone */
    }
    try {
      if (conn.connected || conn.disconnecting) conn._doDisconnect();
    } catch {
      /* already gone */
    }
    clearTimeout(conn._idleTimeout);
    for (const w of [...h.waiters]) w();
  };

  return h;
}
