// End-to-end: BOSH and XMPP-over-WebSocket details through the ucgate binary
// against a real Prosody, with raw HTTP BOSH requests (no client library, so
// every byte asserted is what the gateway sent):
//
//   (a) a <message/> declaring xmlns='http://jabber.org/protocol/httpbind'
//       itself is a jabber:client stanza (XEP-0206 §2): bob receives it;
//   (b) a request re-sent with the rid of a request still held: the older
//       copy gets an empty body (not type='error', XEP-0124 §17.3);
//   (c) Prosody killed (SIGKILL: the connection drops without a stream end):
//       the BOSH client gets remote-connection-failed, the WebSocket client
//       the stream error remote-connection-failed and <close/>;
//   (d) Prosody stopped (SIGTERM): its own <stream:error><system-shutdown/>
//       <text>Received SIGTERM</text></stream:error> reaches both clients
//       whole (BOSH: inside remote-stream-error);
//   (e) GET / HEAD with a query string (XEP-0252 script syntax) is 404.
//
// Two private Prosodys (each behind its own gateway), one for (a)(b)(e)(c),
// one for (d). Needs Debian's prosody (scripts/install-deps).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startBoshTarget } from '../lib/bosh-target.mjs';
import { withTimeout } from '../lib/harness.mjs';
import { login } from '../lib/xmpp.mjs';

const NS = 'http://jabber.org/protocol/httpbind';
const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const REQUEST_MS = 8_000;

/** A BOSH client made of raw HTTP requests. */
class RawBosh {
  constructor(url) {
    this.url = url;
    this.rid = 1_000_000 + Math.floor(Math.random() * 1_000_000);
    this.sid = null;
  }

  /** POST one <body/> (the next rid unless given); resolves with { status, text }. */
  async post(attrs = '', payload = '', rid = ++this.rid) {
    const sid = this.sid ? ` sid='${this.sid}'` : '';
    const body = `<body xmlns='${NS}' xmlns:xmpp='urn:xmpp:xbosh' rid='${rid}'${sid} ${attrs}>${payload}</body>`;
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'text/xml; charset=utf-8' },
      body,
      signal: AbortSignal.timeout(REQUEST_MS),
    });
    return { status: res.status, text: await res.text() };
  }

  /** Sends, then empty requests, until a response matches `re`; returns it. */
  async until(re, attrs = '', payload = '') {
    let { text } = await this.post(attrs, payload);
    for (let i = 0; !re.test(text); i++) {
      assert.ok(i < 10 && !text.includes("type='terminate'"), `waiting for ${re}: ${text}`);
      ({ text } = await this.post());
    }
    return text;
  }

  /** Creates a session; resolves once the stream features arrived. */
  async create(domain) {
    const text = await this.until(
      /<mechanisms|<stream:features/,
      `to='${domain}' xml:lang='en' wait='5' hold='1' ver='1.11' xmpp:version='1.0'`,
    );
    this.sid ??= /sid='([^']+)'/.exec(text)?.[1];
    assert.ok(this.sid, `no sid: ${text}`);
    return text;
  }

  /** Creates a session and logs in (SASL PLAIN, restart, bind). */
  async login(domain, user, password, resource) {
    const created = await this.create(domain);
    assert.match(created, /PLAIN/, created);
    const plain = Buffer.from(`\0${user}\0${password}`).toString('base64');
    await this.until(/<success/, '', `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain}</auth>`);
    await this.until(/xmpp-bind/, `to='${domain}' xml:lang='en' xmpp:restart='true'`);
    const bound = await this.until(
      /<jid>/,
      '',
      `<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    this.jid = /<jid>([^<]+)<\/jid>/.exec(bound)[1];
    return this.jid;
  }
}

/** A raw RFC 7395 client: every text message and the close frame, recorded. */
function rawWs(url, domain) {
  const ws = new WebSocket(url, 'xmpp');
  const c = { ws, texts: [], close: null, waiters: [] };
  const wake = () => c.waiters.splice(0).forEach((w) => w());
  ws.on('message', (data, binary) => {
    if (!binary) c.texts.push(data.toString());
    wake();
  });
  ws.on('close', (code) => {
    c.close = code;
    wake();
  });
  ws.on('error', () => {});
  c.until = (pred, what, ms = 8_000) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (pred() ? resolve() : c.waiters.push(check));
        check();
      }),
      ms,
      `${what}; received ${JSON.stringify(c.texts)}, close ${c.close}`,
    );
  c.opened = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }).then(() => ws.send(`<open xmlns='${FRAMING}' to='${domain}' version='1.0'/>`));
  /** Resolves once <open/> and the features are in. */
  c.ready = async () => {
    await c.opened;
    await c.until(() => c.texts.some((t) => t.includes('<stream:features')), 'the stream features');
  };
  c.terminate = () => ws.terminate();
  return c;
}

/** Kill Prosody (its pid, started by the harness) and wait for it to exit. */
async function killProsody(t, signal) {
  const pid = t.prosody.pid;
  process.kill(pid, signal);
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    assert.ok(Date.now() < deadline, `prosody ${pid} still alive 5 s after ${signal}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('BOSH and XMPP edge cases through ucgate against a real Prosody', { timeout: 60_000 }, () => {
  const env = { failed: false, main: null, second: null, cleanups: [] };

  before(async () => {
    try {
      [env.main, env.second] = await Promise.all([
        startBoshTarget({ mode: 'ucgate', writer: 'e2e/tests/bosh-edge.test.mjs' }),
        startBoshTarget({ mode: 'ucgate', writer: 'e2e/tests/bosh-edge.test.mjs' }),
      ]);
    } catch (e) {
      env.failed = true;
      throw e;
    }
  }, { timeout: 40_000 });

  after(async () => {
    for (const fn of env.cleanups) await Promise.resolve(fn()).catch(() => {});
    for (const t of [env.main, env.second]) {
      await withTimeout(t?.stop({ failed: env.failed }) ?? Promise.resolve(), 15_000, 'teardown').catch(() => {});
    }
  }, { timeout: 30_000 });

  const step = async (fn) => {
    try {
      await fn();
    } catch (e) {
      env.failed = true;
      throw e;
    }
  };

  it('(a) a <message/> declaring the httpbind namespace reaches bob as a jabber:client message', async () => {
    await step(async () => {
      const t = env.main;
      const bob = await login({
        service: t.bobService,
        domain: t.domain,
        username: t.users.bob.username,
        password: t.users.bob.password,
        resource: 'edge-bob',
      });
      env.cleanups.push(() => bob.stop());
      const alice = new RawBosh(t.boshUrl);
      const aliceJid = await alice.login(t.domain, 'alice', t.users.alice.password, 'edge-a');
      const bobJid = bob.xmpp.jid.toString();
      const got = bob.nextMessage((m) => m.attrs.id === 'ns1', 8_000);
      got.catch(() => {});
      // (held until `wait`: nothing comes back for alice)
      const sent = alice.post(
        '',
        `<message xmlns='${NS}' to='${bobJid}' type='chat' id='ns1'><body>declared httpbind</body></message>`,
      );
      sent.catch(() => {});
      const m = await got;
      assert.equal(m.getChildText('body'), 'declared httpbind');
      assert.equal(m.attrs.from, aliceJid);
      // ending the session answers the held request: the session was fine
      // (before, it was answered at once with condition='bad-request')
      await alice.post("type='terminate'");
      assert.deepEqual(await sent, { status: 200, text: `<body xmlns='${NS}' type='terminate'/>` });
      await bob.stop();
    });
  });

  it('(b) a re-sent rid answers the older copy with an empty body', async () => {
    await step(async () => {
      const c = new RawBosh(env.main.boshUrl);
      await c.create(env.main.domain);
      const rid = ++c.rid;
      const older = c.post('', '', rid);
      await new Promise((r) => setTimeout(r, 300)); // held by now
      const newer = c.post('', '', rid);
      const answered = await withTimeout(older, 3_000, 'the older copy answered at once');
      assert.deepEqual(answered, { status: 200, text: `<body xmlns='${NS}'/>` });
      // the newer copy holds the rid: a terminate request now is
      // acknowledged on the oldest open request, which is that copy (§13)
      const next = await c.post("type='terminate'");
      assert.deepEqual(next, { status: 200, text: `<body xmlns='${NS}'/>` });
      assert.deepEqual(await newer, { status: 200, text: `<body xmlns='${NS}' type='terminate'/>` });
    });
  });

  it('(e) GET and HEAD with a query string (XEP-0252 script syntax) are 404; the bare path keeps its page', async () => {
    await step(async () => {
      const url = env.main.boshUrl;
      const script = `${url}?${encodeURIComponent(`<body rid='1' xmlns='${NS}' to='localhost'/>`)}`;
      assert.equal((await fetch(script, { signal: AbortSignal.timeout(REQUEST_MS) })).status, 404);
      assert.equal((await fetch(`${url}?x`, { method: 'HEAD', signal: AbortSignal.timeout(REQUEST_MS) })).status, 404);
      const page = await fetch(url, { signal: AbortSignal.timeout(REQUEST_MS) });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /BOSH/);
    });
  });

  it('(c) Prosody killed: BOSH gets remote-connection-failed, WebSocket the stream error and <close/>', async () => {
    await step(async () => {
      const t = env.main;
      const bosh = new RawBosh(t.boshUrl);
      await bosh.create(t.domain);
      const ws = rawWs(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, t.domain);
      env.cleanups.push(() => ws.terminate());
      await ws.ready();
      const held = bosh.post();
      held.catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      await killProsody(t, 'SIGKILL');
      assert.deepEqual(await held, {
        status: 200,
        text: `<body xmlns='${NS}' type='terminate' condition='remote-connection-failed'/>`,
      });
      await ws.until(() => ws.close !== null, 'the WebSocket close');
      const end = ws.texts.slice(-2);
      assert.match(end[0], /^<stream:error xmlns:stream='http:\/\/etherx\.jabber\.org\/streams'><remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
      assert.equal(end[1], `<close xmlns='${FRAMING}'/>`);
      assert.equal(ws.close, 1000);
      assert.equal(await t.metric('ucgate_bosh_terminations_total', { condition: 'remote-connection-failed' }), 1);
    });
  });

  it("(d) Prosody stopped: its own system-shutdown stream error reaches both clients whole", async () => {
    await step(async () => {
      const t = env.second;
      const bosh = new RawBosh(t.boshUrl);
      await bosh.login(t.domain, 'alice', t.users.alice.password, 'edge-d');
      const ws = rawWs(`ws://127.0.0.1:${t.httpPort}/xmpp-websocket`, t.domain);
      env.cleanups.push(() => ws.terminate());
      await ws.ready();
      const held = bosh.post();
      held.catch(() => {});
      await new Promise((r) => setTimeout(r, 300));
      await killProsody(t, 'SIGTERM');
      await ws.until(() => ws.close !== null, 'the WebSocket close');
      const [error, close] = ws.texts.slice(-2);
      // Prosody 0.12: session:close{ condition = "system-shutdown", text = "Received SIGTERM" }
      assert.match(error, /^<stream:error [^>]*><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text [^>]*>Received SIGTERM<\/text><\/stream:error>$/);
      assert.equal(close, `<close xmlns='${FRAMING}'/>`);
      const { status, text } = await held;
      assert.equal(status, 200);
      assert.equal(
        text,
        `<body xmlns='${NS}' xmlns:stream='http://etherx.jabber.org/streams' type='terminate' condition='remote-stream-error'>${error}</body>`,
      );
    });
  });
});
