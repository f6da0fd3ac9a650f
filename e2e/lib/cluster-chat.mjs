// Chat clients that keep talking while the nodes behind the balancer
// restart (e2e/tests/cluster.test.mjs): each sends numbered messages to the
// others and records what it sent, what it received, its sessions and the
// time it spent offline; checkStreams() says what was lost or duplicated.
//
//   wsChatter   @xmpp/client over WebSocket with XEP-0198: on a lost
//               connection it reconnects through the same URL (the
//               balancer) and resumes its session.
//   boshChatter Strophe.js over BOSH: when its session ends (its node went
//               away) it logs in again, a new session.
//
// A message must arrive ("protected") unless one of its ends is a BOSH
// session that was offline when it was sent, or whose node was already
// stopping then (the issue: "BOSH sessions whose node stays up lose
// nothing"). Messages between XEP-0198 clients are always protected.

import { $msg, $pres, stropheClient } from './strophe-node.mjs';
import { sidNode } from './cluster.mjs';
import { makeClient, xml } from './xmpp.mjs';
import { sleep } from './harness.mjs';

const RECONNECT_DELAY_MS = 200;
const RELOGIN_WINDOW_MS = 15_000;
/** "Back online within a few seconds". */
export const MAX_OFFLINE_MS = 5_000;

const ID = /^(\w+)>(\w+)#(\d+)$/;

function base(name, jid, kind) {
  return {
    name,
    jid,
    kind,
    sent: [],
    gaps: [],
    offlineSince: null,
    stopping: false,
    seq: new Map(),
    problems: [],
    wentOffline(t = Date.now()) {
      if (this.offlineSince == null) this.offlineSince = t;
    },
    cameBack(how) {
      if (this.offlineSince == null) return;
      this.gaps.push({ ms: Date.now() - this.offlineSince, how });
      this.offlineSince = null;
    },
    next(target) {
      const seq = (this.seq.get(target.name) ?? 0) + 1;
      this.seq.set(target.name, seq);
      return { from: this.name, to: target.name, seq, t: Date.now(), id: `${this.name}>${target.name}#${seq}` };
    },
  };
}

/** An XEP-0198 client over WebSocket that resumes through `service` after every loss. */
export function wsChatter({ name, service, domain, username, password }) {
  const c = makeClient({ service, domain, username, password, resource: 'roll' });
  const { xmpp } = c;
  const sm = xmpp.streamManagement;
  const h = base(name, `${username}@${domain}/roll`, 'ws');
  let onlineEvents = 0;
  h.resumed = 0;

  xmpp.on('online', () => {
    onlineEvents++;
    if (onlineEvents > 1) h.problems.push(`${name}: a new session instead of a resumption`);
    h.cameBack('new session');
  });
  sm.on('resumed', () => {
    h.resumed++;
    h.cameBack('resumed');
  });
  sm.on('fail', (st) => h.problems.push(`${name}: XEP-0198 gave up on an outgoing stanza ${st.attrs?.id}`));
  xmpp.on('disconnect', () => {
    if (h.stopping) return;
    h.wentOffline();
    reconnect();
  });

  let reconnecting = false;
  async function reconnect() {
    if (reconnecting) return;
    reconnecting = true;
    const deadline = Date.now() + RELOGIN_WINDOW_MS;
    try {
      while (!h.stopping && Date.now() < deadline) {
        await sleep(RECONNECT_DELAY_MS);
        if (xmpp.status === 'online') return;
        try {
          await xmpp.reconnect.reconnect();
          return;
        } catch {
          /* again, through the balancer */
        }
      }
      if (!h.stopping) h.problems.push(`${name}: not back within ${RELOGIN_WINDOW_MS} ms`);
    } finally {
      reconnecting = false;
    }
  }

  h.start = async () => {
    await c.start();
    const deadline = Date.now() + 10_000;
    while (!(sm.enabled && sm.id)) {
      if (Date.now() > deadline) throw new Error(`${name}: XEP-0198 not enabled`);
      await sleep(25);
    }
    await xmpp.send(xml('presence'));
  };
  h.online = () => xmpp.status === 'online' && sm.enabled;
  h.session = () => undefined; // XEP-0198: one session throughout
  h.sendNext = async (target) => {
    const rec = { ...h.next(target), fromSession: undefined, toSession: target.session() };
    const stanza = xml('message', { to: target.jid, type: 'chat', id: rec.id }, xml('body', {}, String(rec.seq)));
    try {
      await xmpp.send(stanza);
    } catch {
      // Queued by XEP-0198 (and sent again on resumption) or not sent at all.
      if (!sm.outbound_q.some((i) => i.stanza === stanza)) rec.notSent = true;
    }
    h.sent.push(rec);
  };
  h.received = () => c.messages.filter((m) => m.attrs.type === 'chat').map((m) => m.attrs.id);
  h.stop = async () => {
    h.stopping = true;
    await c.stop();
  };
  return h;
}

/** A Strophe.js BOSH client that logs in again whenever its session ends. */
export function boshChatter({ name, service, domain, username, password }) {
  const h = base(name, `${username}@${domain}/roll`, 'bosh');
  h.sessions = [];
  let current = null;
  let conn = null;
  const handles = [];

  async function login() {
    const deadline = Date.now() + RELOGIN_WINDOW_MS;
    while (!h.stopping) {
      const c = stropheClient(service);
      handles.push(c);
      conn = c;
      let st;
      try {
        st = await c.connect(h.jid, password, 10_000);
      } catch (e) {
        st = { name: `no status (${e.message})` };
      }
      if (st.name === 'CONNECTED') {
        const sid = c.conn._proto.sid;
        current = { sid, node: sidNode(sid), start: Date.now(), end: null };
        h.sessions.push(current);
        c.onStatus = (s) => onStatus(c, s);
        c.send($pres().tree());
        h.cameBack('new session');
        return;
      }
      await c.close();
      if (Date.now() > deadline) {
        h.problems.push(`${name}: no BOSH session within ${RELOGIN_WINDOW_MS} ms (last: ${st.name})`);
        return;
      }
      await sleep(RECONNECT_DELAY_MS);
    }
  }

  function onStatus(c, s) {
    if (c !== conn || !current) return;
    if (!['CONNFAIL', 'DISCONNECTED', 'ERROR', 'CONNTIMEOUT', 'AUTHFAIL'].includes(s.name)) return;
    current.end = Date.now();
    current.endedBy = `${s.name} ${s.condition ?? ''}`.trim();
    current = null;
    if (h.stopping) return;
    h.wentOffline();
    c.close().finally(() => login());
  }

  h.start = async () => {
    await login();
    if (!current) throw new Error(`${name}: no BOSH session: ${h.problems.join('; ')}`);
  };
  h.online = () => current != null;
  h.session = () => current;
  h.sendNext = async (target) => {
    const rec = { ...h.next(target), fromSession: current, toSession: target.session() };
    conn.send($msg({ to: target.jid, type: 'chat', id: rec.id }).c('body').t(String(rec.seq)).tree());
    h.sent.push(rec);
  };
  h.received = () => handles.flatMap((c) => c.inOrder().map((m) => m.id));
  h.stop = async () => {
    h.stopping = true;
    for (const c of handles) await c.close();
  };
  return h;
}

/**
 * When `session` (a BOSH session { node, start }) stopped being safe: the
 * SIGTERM of the first restart of its node that ended (exit) after the
 * session began. `restarts`: [{ node, term, exit }].
 */
function doomedAt(session, restarts) {
  const r = restarts
    .filter((x) => x.node === session.node && x.exit > session.start)
    .sort((a, b) => a.term - b.term)[0];
  return r ? r.term : Infinity;
}

function isProtected(rec, restarts) {
  if (rec.notSent) return false;
  for (const s of [rec.fromSession, rec.toSession]) {
    if (s === undefined) continue; // XEP-0198 end
    if (s === null) return false; // that BOSH end was offline
    if (!(rec.t < doomedAt(s, restarts))) return false;
  }
  return true;
}

/**
 * Waits up to `settleMs` for every protected message, then lists the
 * problems: lost protected messages, duplicates, messages out of order or
 * never sent, clients offline longer than MAX_OFFLINE_MS or not back, and
 * each client's own problems (a failed resumption, ...).
 */
export async function checkStreams({ clients, restarts, settleMs }) {
  const sent = clients.flatMap((c) => c.sent);
  const must = sent.filter((r) => isProtected(r, restarts));
  const arrived = () => {
    const got = new Set();
    for (const c of clients) for (const id of c.received()) got.add(id);
    return got;
  };
  const deadline = Date.now() + settleMs;
  let got = arrived();
  while (must.some((r) => !got.has(r.id)) && Date.now() < deadline) {
    await sleep(200);
    got = arrived();
  }
  await sleep(300); // late duplicates

  const problems = [];
  const sentIds = new Set(sent.filter((r) => !r.notSent).map((r) => r.id));
  let received = 0;
  for (const c of clients) {
    const seen = new Map(); // sender -> last seq
    const ids = new Set();
    for (const id of c.received()) {
      const m = ID.exec(id ?? '');
      if (!m || m[2] !== c.name) continue;
      received++;
      if (ids.has(id)) problems.push(`${id} arrived twice`);
      ids.add(id);
      if (!sentIds.has(id)) problems.push(`${id} arrived but was never sent`);
      const seq = Number(m[3]);
      if (seq <= (seen.get(m[1]) ?? 0)) problems.push(`${id} arrived after #${seen.get(m[1])}`);
      seen.set(m[1], Math.max(seq, seen.get(m[1]) ?? 0));
    }
    for (const r of must)
      if (r.to === c.name && !ids.has(r.id)) problems.push(`${r.id} lost (sent at +${r.t - sent[0].t} ms)`);
    for (const g of c.gaps) if (g.ms > MAX_OFFLINE_MS) problems.push(`${c.name} offline ${g.ms} ms before ${g.how}`);
    if (!c.online()) problems.push(`${c.name} not online at the end`);
    problems.push(...c.problems);
  }
  const lostUnprotected = sent.filter((r) => !r.notSent && !must.includes(r) && !got.has(r.id)).length;
  const gaps = clients.map((c) => `${c.name} ${c.gaps.map((g) => `${g.ms}ms ${g.how}`).join(', ') || 'never offline'}`);
  const sessions = clients
    .filter((c) => c.kind === 'bosh')
    .map((c) => `${c.name} ${c.sessions.map((s) => `${s.node}${s.endedBy ? ` (${s.endedBy})` : ''}`).join(' → ')}`);
  const summary =
    `${sent.length} sent, ${must.length} protected, ${received} received, ${lostUnprotected} unprotected lost; ` +
    `offline: ${gaps.join('; ')}; BOSH sessions: ${sessions.join('; ')}; ` +
    `restarts: ${restarts.map((r) => `${r.node} drained in ${r.exit - r.term} ms, ready after ${r.ready - r.term} ms`).join('; ')}`;
  return { problems: problems.slice(0, 40), summary };
}
