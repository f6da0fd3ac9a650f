// The Prosody harness on its own, without ucgate: @xmpp/client logs in
// straight over TCP with STARTTLS (test CA) to the private Prosody of
// lib/prosody.mjs. If this fails, tests/xmpp-websocket.test.mjs cannot pass
// whatever the gateway does.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startProsody } from '../lib/prosody.mjs';
import { expectLoginFailure, login, sendChat, trustCA } from '../lib/xmpp.mjs';

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Raw TCP: open a stream without STARTTLS and return everything Prosody sent
 * until the <stream:features/> closed (or 5 s passed / the socket closed).
 */
function plainStreamFeatures(port, domain) {
  return new Promise((resolve, reject) => {
    let data = '';
    const sock = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(), 5_000);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(data);
    };
    sock.setEncoding('utf8');
    sock.on('error', reject);
    sock.on('connect', () =>
      sock.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' version='1.0' xml:lang='en' ` +
          `xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`,
      ),
    );
    sock.on('data', (d) => {
      data += d;
      if (/<\/stream:features>/.test(data)) finish();
    });
    sock.on('close', finish);
  });
}

describe('Prosody harness, direct c2s with STARTTLS (no gateway)', { timeout: 120_000 }, () => {
  let prosody;
  let untrust;
  let service;
  const clients = [];
  let failed = false;

  before(async () => {
    prosody = await startProsody();
    service = `xmpp://127.0.0.1:${prosody.port}`;
    untrust = trustCA(prosody.caFile);
  }, { timeout: 60_000 });

  after(async () => {
    for (const c of clients) await c.stop().catch(() => {});
    untrust?.();
    if (failed && prosody) console.error(`[e2e] prosody log (tail):\n${prosody.log().split('\n').slice(-60).join('\n')}`);
    await prosody?.stop();
  }, { timeout: 30_000 });

  const track = async (p) => {
    try {
      return await p;
    } catch (e) {
      failed = true;
      throw e;
    }
  };

  it('without STARTTLS Prosody offers STARTTLS (required) and no SASL mechanism', async () => {
    await track(
      (async () => {
        const features = await plainStreamFeatures(prosody.port, prosody.domain);
        assert.match(features, /<stream:features/, `no stream features: ${features}`);
        assert.match(features, /<starttls[^>]*urn:ietf:params:xml:ns:xmpp-tls[^>]*>\s*<required\s*\/>/, features);
        assert.doesNotMatch(features, /<mechanisms/, `SASL offered before TLS: ${features}`);
      })(),
    );
  });

  it('alice and bob log in with STARTTLS and exchange messages both ways', async () => {
    await track(
      (async () => {
        const { alice, bob } = prosody.users;
        const a = await login({ service, domain: prosody.domain, username: alice.username, password: alice.password, resource: 'direct-a' });
        clients.push(a);
        const b = await login({ service, domain: prosody.domain, username: bob.username, password: bob.password, resource: 'direct-b' });
        clients.push(b);

        // The socket under the XMPP stream is TLS: STARTTLS happened.
        assert.equal(a.xmpp.socket.secure, true);
        assert.equal(a.xmpp.socket.socket.encrypted, true);
        assert.equal(a.xmpp.jid.toString(), `alice@${prosody.domain}/direct-a`);
        assert.equal(b.xmpp.jid.toString(), `bob@${prosody.domain}/direct-b`);

        const ab = await sendChat(a, b, 'hello bob, from alice (direct)');
        assert.equal(ab.received.getChildText('body'), 'hello bob, from alice (direct)');
        assert.equal(ab.received.attrs.from, ab.fromJid);
        assert.equal(ab.received.attrs.to, ab.toJid);
        assert.equal(ab.received.attrs.type, 'chat');

        const ba = await sendChat(b, a, 'héllo alice ✓ <&> from bob (direct)');
        assert.equal(ba.received.getChildText('body'), 'héllo alice ✓ <&> from bob (direct)');
        assert.equal(ba.received.attrs.from, ba.fromJid);
        assert.equal(ba.received.attrs.to, ba.toJid);

        await withTimeout(a.xmpp.stop(), 10_000, 'alice stop');
        await withTimeout(b.xmpp.stop(), 10_000, 'bob stop');
        assert.equal(a.xmpp.status, 'offline');
        assert.equal(b.xmpp.status, 'offline');
        assert.deepEqual(a.errors, []);
        assert.deepEqual(b.errors, []);
      })(),
    );
  });

  it('a wrong password gives the SASL failure not-authorized, and a good login still works', async () => {
    await track(
      (async () => {
        const { error, client } = await expectLoginFailure({
          service,
          domain: prosody.domain,
          username: 'alice',
          password: 'not-the-password',
        });
        assert.equal(error.name, 'SASLError', `${error.stack}`);
        assert.equal(error.condition, 'not-authorized');
        assert.ok(client.errors.some((e) => e.condition === 'not-authorized'), 'error event with not-authorized');

        const { bob } = prosody.users;
        const b = await login({ service, domain: prosody.domain, username: bob.username, password: bob.password });
        clients.push(b);
        await withTimeout(b.xmpp.stop(), 10_000, 'bob stop');
      })(),
    );
  });

  it('the second domain (example.test) works too', async () => {
    await track(
      (async () => {
        const { alice } = prosody.users;
        const a = await login({ service, domain: 'example.test', username: alice.username, password: alice.password });
        clients.push(a);
        assert.equal(a.xmpp.jid.bare().toString(), 'alice@example.test');
        await withTimeout(a.xmpp.stop(), 10_000, 'alice stop');
      })(),
    );
  });
});
