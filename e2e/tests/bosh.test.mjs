// End-to-end: XMPP over BOSH (XEP-0124 + XEP-0206) through the ucgate binary
// to a real Prosody that requires c2s encryption (the gateway does STARTTLS).
// alice is Strophe.js (npm `strophe.js` 5) running in node over BOSH
// (http://127.0.0.1:PORT/http-bind); bob is @xmpp/client over the gateway's
// WebSocket route. See lib/strophe-node.mjs for what Strophe needs in node
// and lib/bosh-target.mjs for the servers.
//
//   UCGATE_BIN=/path/to/ucgate npm test      (default: <repo>/target/debug/ucgate)
//   E2E_BOSH_TARGET=prosody node --test tests/bosh.test.mjs
//        the same client logic against Prosody's own BOSH, no gateway: a
//        check of the harness itself (bob logs in straight over TCP with
//        STARTTLS; gateway-only assertions are skipped)
//
// Needs Debian's prosody (scripts/install-deps).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startBoshTarget } from '../lib/bosh-target.mjs';
import { UCGATE_BIN } from '../lib/gateway.mjs';
import { sleep, withTimeout } from '../lib/harness.mjs';
import { $msg, $pres, SETTLED, stropheClient } from '../lib/strophe-node.mjs';
import { login, xml } from '../lib/xmpp.mjs';

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const BULK = 1000; // messages each way in the bulk test
const BULK_MS = 25_000; // bound for each direction

const target = process.env.E2E_BOSH_TARGET || 'ucgate';
const title =
  target === 'prosody' ? "Prosody's own BOSH (harness check, no gateway)" : `BOSH through ucgate (${UCGATE_BIN}) to Prosody`;

describe(`Strophe.js in node over ${title}`, { timeout: 240_000 }, () => {
  const env = { failed: false, t: null };

  before(async () => {
    try {
      env.t = await startBoshTarget({ writer: 'e2e/tests/bosh.test.mjs' });
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 90_000 });

  after(async () => {
    await withTimeout(env.t?.stop({ failed: env.failed }) ?? Promise.resolve(), 40_000, 'teardown');
  }, { timeout: 60_000 });

  /**
   * Run `fn({ track, strophe })`: @xmpp/client handles passed to track() are
   * stopped and Strophe clients made with strophe() closed when the body
   * ends, however it ends. On failure Strophe's statuses and raw traffic are
   * printed (and the server logs in teardown).
   */
  const step = async (fn) => {
    const xmpps = [];
    const strophes = [];
    const track = (c) => {
      xmpps.push(c);
      return c;
    };
    const strophe = (url = env.t.boshUrl) => {
      const s = stropheClient(url);
      strophes.push(s);
      return s;
    };
    try {
      await env.t.alive();
      try {
        await fn({ track, strophe });
      } catch (e) {
        for (const s of strophes) {
          console.error(`[e2e] Strophe ${s.service}: statuses ${JSON.stringify(s.statuses)}`);
          console.error(`[e2e] Strophe raw (last 30):\n${s.raw.slice(-30).map((r) => `${r.dir}: ${r.data.slice(0, 600)}`).join('\n')}`);
        }
        throw e;
      } finally {
        for (const s of strophes) await withTimeout(s.close(), 15_000, 'Strophe close').catch(() => {});
        for (const c of xmpps) await c.stop().catch(() => {});
      }
      await env.t.alive(); // the gateway survived whatever the test did
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  const bobLogin = (resource) =>
    login({
      service: env.t.bobService,
      domain: env.t.domain,
      username: env.t.users.bob.username,
      password: env.t.users.bob.password,
      resource,
    });

  /** Log alice in over BOSH with Strophe; asserts CONNECTED and the full JID. */
  async function aliceLogin(strophe, resource) {
    const a = strophe();
    const jid = `alice@${env.t.domain}/${resource}`;
    const st = await a.connect(jid, env.t.users.alice.password);
    assert.equal(st.name, 'CONNECTED', `Strophe statuses: ${JSON.stringify(a.statuses)}`);
    assert.equal(a.jid, jid);
    a.send($pres().tree()); // available: Prosody routes chats to the resource
    return a;
  }

  /** Wait until `client.messages` (an @xmpp/client handle) holds `n` matching stanzas. */
  async function waitCount(client, pred, n, ms) {
    const deadline = Date.now() + ms;
    for (;;) {
      const got = client.messages.filter(pred);
      if (got.length >= n) return got;
      if (Date.now() > deadline) {
        throw new Error(`${got.length} of ${n} messages within ${ms} ms (last: ${got.at(-1)?.attrs.id ?? 'none'})`);
      }
      await sleep(25);
    }
  }

  it('alice (Strophe.js over BOSH) and bob (@xmpp/client over WebSocket) chat both ways; disconnect is clean', async (t) => {
    await step(async ({ track, strophe }) => {
      const b = track(await bobLogin('ws-bob'));
      const bobJid = b.xmpp.jid.toString();
      assert.equal(bobJid, `bob@${env.t.domain}/ws-bob`);
      await b.xmpp.send(xml('presence'));

      const a = await aliceLogin(strophe, 'bosh-node');
      const aliceJid = a.jid;
      // Strophe authenticated with a mechanism it was offered (SASL inside BOSH).
      const features = a.raw.filter((r) => r.dir === 'in' && /<(stream:)?features[\s>/]/.test(r.data));
      assert.ok(features.length >= 2, `stream features seen: ${JSON.stringify(features)}`);
      const auth = a.raw.find((r) => r.dir === 'out' && r.data.includes('<auth') && r.data.includes(NS_SASL));
      const mechanism = /mechanism=["']([^"']+)["']/.exec(auth?.data ?? '')?.[1];
      assert.ok(mechanism && features[0].data.includes(`>${mechanism}<`), `SASL: ${auth?.data}`);
      // The gateway did STARTTLS to Prosody; the BOSH client is never offered it.
      if (env.t.gateway) {
        for (const f of features) assert.ok(!f.data.includes('starttls'), `starttls offered over BOSH: ${f.data}`);
      }
      assert.equal(await env.t.expectBoshSessions(1), env.t.gateway ? 1 : null);
      t.diagnostic(`${env.t.mode}: alice ${aliceJid} via ${env.t.boshUrl}, SASL ${mechanism}`);

      // alice (BOSH) → bob (WebSocket)
      const id1 = `bosh-${process.pid}-1`;
      const toBob = 'hello bob, from alice over BOSH';
      const atBobP = b.nextMessage((m) => m.attrs.id === id1, 20_000);
      atBobP.catch(() => {});
      a.send($msg({ to: bobJid, type: 'chat', id: id1 }).c('body').t(toBob).tree());
      const atBob = await atBobP;
      assert.equal(atBob.getChildText('body'), toBob);
      assert.equal(atBob.attrs.from, aliceJid);
      assert.equal(atBob.attrs.to, bobJid);
      assert.equal(atBob.attrs.type, 'chat');

      // bob (WebSocket) → alice (BOSH)
      const id2 = `ws-${process.pid}-2`;
      const toAlice = 'héllo alice ✓ <&> "quotes" — from bob over WebSocket';
      await b.xmpp.send(xml('message', { to: aliceJid, type: 'chat', id: id2 }, xml('body', {}, toAlice)));
      const atAlice = await a.nextMessage((m) => m.id === id2);
      assert.deepEqual(atAlice, { from: bobJid, to: aliceJid, type: 'chat', id: id2, body: toAlice });

      // About 40 KB each way: one stanza in one BOSH request, one in a response.
      const big = 'y'.repeat(40_000);
      const id3 = `bosh-${process.pid}-3`;
      const bigAtBobP = b.nextMessage((m) => m.attrs.id === id3, 20_000);
      bigAtBobP.catch(() => {});
      a.send($msg({ to: bobJid, type: 'chat', id: id3 }).c('body').t(big).tree());
      assert.equal((await bigAtBobP).getChildText('body'), big);
      const id4 = `ws-${process.pid}-4`;
      await b.xmpp.send(xml('message', { to: aliceJid, type: 'chat', id: id4 }, xml('body', {}, big)));
      assert.equal((await a.nextMessage((m) => m.id === id4)).body, big);

      // Clean disconnect: unavailable presence + type='terminate', then DISCONNECTED.
      const before = a.statuses.length;
      const d = await a.disconnect('e2e done');
      assert.equal(d.name, 'DISCONNECTED');
      const tailNames = a.statuses.slice(before).map((s) => s.name);
      assert.equal(tailNames[0], 'DISCONNECTING', `statuses: ${tailNames}`);
      for (const bad of ['CONNFAIL', 'AUTHFAIL', 'ERROR', 'CONNTIMEOUT']) {
        assert.ok(!a.statuses.some((s) => s.name === bad), `statuses: ${a.statuses.map((s) => s.name)}`);
      }
      const out = a.raw.filter((r) => r.dir === 'out').map((r) => r.data);
      assert.ok(out.some((o) => /type=["']terminate["']/.test(o)), 'no terminate body sent');
      await env.t.expectBoshSessions(0);

      await withTimeout(b.xmpp.stop(), 10_000, 'bob xmpp.stop()');
      assert.deepEqual(b.errors.map(String), []);
    });
  });

  it(`${BULK} messages sent quickly arrive complete and in order, bob → alice (BOSH) and alice (BOSH) → bob`, { timeout: 90_000 }, async (t) => {
    await step(async ({ track, strophe }) => {
      const b = track(await bobLogin('ws-bulk'));
      await b.xmpp.send(xml('presence'));
      const a = await aliceLogin(strophe, 'bosh-bulk');
      const bobJid = b.xmpp.jid.toString();
      const aliceJid = a.jid;
      const n = (i) => String(i).padStart(4, '0');

      // bob → alice: the gateway batches what Prosody sends into the held responses.
      const tag1 = `b2a-${process.pid}-`;
      let t0 = Date.now();
      for (let i = 0; i < BULK; i++) {
        await b.xmpp.send(xml('message', { to: aliceJid, type: 'chat', id: `${tag1}${n(i)}` }, xml('body', {}, `bob→alice #${n(i)}`)));
      }
      const sentMs = Date.now() - t0;
      const isB2A = (m) => m.id?.startsWith(tag1);
      try {
        await a.waitMessages(BULK, BULK_MS); // alice gets nothing else meanwhile
      } catch (e) {
        const got = a.messages.filter(isB2A);
        throw new Error(`bob → alice: ${e.message}; received ${got.length} of ${BULK} (last: ${got.at(-1)?.id ?? "none"})`);
      }
      const got1 = a.messages.filter(isB2A);
      assert.equal(got1.length, BULK);
      for (let i = 0; i < BULK; i++) {
        const m = got1[i];
        const want = { from: bobJid, to: aliceJid, type: 'chat', id: `${tag1}${n(i)}`, body: `bob→alice #${n(i)}` };
        if (m.id !== want.id || m.body !== want.body || m.from !== want.from || m.to !== want.to) {
          assert.deepEqual(m, want, `message ${i} of ${BULK} (out of order, lost or altered)`);
        }
      }
      const b2aMs = Date.now() - t0;
      const bodiesIn = a.raw.filter((r) => r.dir === 'in').length;

      // alice → bob: Strophe queues all of them and sends them in as few
      // requests as its two request slots allow (~120 KB in all).
      const tag2 = `a2b-${process.pid}-`;
      t0 = Date.now();
      for (let i = 0; i < BULK; i++) {
        a.conn.send($msg({ to: bobJid, type: 'chat', id: `${tag2}${n(i)}` }).c('body').t(`alice→bob #${n(i)}`).tree());
      }
      a.conn.flush();
      const isA2B = (m) => m.attrs.id?.startsWith(tag2);
      let got2;
      try {
        got2 = await waitCount(b, isA2B, BULK, BULK_MS);
      } catch (e) {
        throw new Error(`alice → bob: ${e.message}`);
      }
      assert.equal(got2.length, BULK);
      for (let i = 0; i < BULK; i++) {
        const m = got2[i];
        const ok =
          m.attrs.id === `${tag2}${n(i)}` &&
          m.getChildText('body') === `alice→bob #${n(i)}` &&
          m.attrs.from === aliceJid &&
          m.attrs.to === bobJid;
        assert.ok(ok, `message ${i} of ${BULK} (out of order, lost or altered): ${m}`);
      }
      const a2bMs = Date.now() - t0;
      const bodiesOut = a.raw.filter((r) => r.dir === 'out' && r.data.includes(tag2)).length;
      t.diagnostic(
        `${env.t.mode}: bob→alice ${BULK} in ${b2aMs} ms (sent in ${sentMs} ms, ${bodiesIn} BOSH responses so far); ` +
          `alice→bob ${BULK} in ${a2bMs} ms (${bodiesOut} BOSH requests)`,
      );

      assert.ok(!a.statuses.some((s) => SETTLED.includes(s.name) && s.name !== 'CONNECTED'), JSON.stringify(a.statuses));
      assert.equal((await a.disconnect()).name, 'DISCONNECTED');
      await env.t.expectBoshSessions(0);
      assert.deepEqual(b.errors.map(String), []);
    });
  });

  it('a wrong password gives AUTHFAIL (SASL not-authorized); the gateway keeps serving and a good login works', async (t) => {
    await step(async ({ strophe }) => {
      const bad = strophe();
      const st = await bad.connect(`alice@${env.t.domain}/bosh-bad`, 'not-the-password');
      assert.equal(st.name, 'AUTHFAIL', `statuses: ${JSON.stringify(bad.statuses)}`);
      assert.match(st.elem ?? '', /<failure[^>]*urn:ietf:params:xml:ns:xmpp-sasl[^>]*>.*<not-authorized\s*\/>/s);
      assert.ok(!bad.statuses.some((s) => s.name === 'CONNECTED'));
      t.diagnostic(`wrong password: ${st.name} ${st.elem}`);
      // Strophe leaves the session open after AUTHFAIL; disconnect ends it.
      const d = await bad.disconnect('after authfail');
      assert.equal(d.name, 'DISCONNECTED');
      await env.t.expectBoshSessions(0);
      await env.t.alive();

      const a = await aliceLogin(strophe, 'bosh-good');
      await env.t.expectBoshSessions(1);
      assert.equal((await a.disconnect()).name, 'DISCONNECTED');
      await env.t.expectBoshSessions(0);
    });
  });
});
