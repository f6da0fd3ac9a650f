// End-to-end (issue 15, "Prosody's self-signed certificate works when
// pinned"): a real Prosody with the certificate its own generator makes
// (`prosodyctl cert generate`: self-signed, CA:TRUE), named as the XMPP
// domain's `ca_file`. The gateway trusts exactly that certificate: a client
// logs in and chats through it over WebSocket. A control gateway pinned to
// another certificate refuses the same server (remote-connection-failed).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, makeTempDir, withTimeout } from '../lib/harness.mjs';
import { makeTestCA, startProsody } from '../lib/prosody.mjs';
import { ensureWebSocket, expectLoginFailure, login, sendChat } from '../lib/xmpp.mjs';

const ROUTE = '/xmpp-websocket';

function gatewayConfig({ port, adminPort, prosodyPort, caFile }) {
  return `# written by e2e/tests/prosody-self-signed.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(ROUTE)}
kind = "xmpp-websocket"

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

describe(`Prosody's own self-signed certificate, pinned (${UCGATE_BIN})`, { timeout: 120_000 }, () => {
  const env = { teardown: [], failed: false };

  before(async () => {
    await ensureWebSocket();
    env.dir = makeTempDir('ucgate-e2e-selfsigned-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.prosody = await startProsody({ domains: ['localhost'], selfSigned: true });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] prosody log (tail):\n${env.prosody.log().split('\n').slice(-60).join('\n')}`);
      await env.prosody.stop();
    });
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  async function gateway(name, caFile) {
    const [port, adminPort] = await freePorts(2);
    const dir = path.join(env.dir, name);
    fs.mkdirSync(dir);
    const g = await startGateway({
      dir,
      adminPort,
      config: gatewayConfig({ port, adminPort, prosodyPort: env.prosody.port, caFile }),
    });
    env.teardown.push(async () => {
      if (env.failed) console.error(`[e2e] ${name} gateway log (tail):\n${g.log().split('\n').slice(-40).join('\n')}`);
      await g.close();
    });
    return { g, service: `ws://127.0.0.1:${port}${ROUTE}` };
  }

  const user = (service, name) => ({
    service,
    domain: 'localhost',
    username: name,
    password: env.prosody.users[name].password,
    resource: `pinned-${name}`,
  });

  it('is what Prosody generates: self-signed with CA:TRUE', () => {
    const text = execFileSync('openssl', ['x509', '-in', env.prosody.caFile, '-noout', '-text'], { encoding: 'utf8' });
    assert.match(text, /CA:TRUE/);
    const field = (f) => execFileSync('openssl', ['x509', '-in', env.prosody.caFile, '-noout', `-${f}`], { encoding: 'utf8' }).replace(/^\w+=\s*/, '');
    assert.equal(field('subject'), field('issuer'), 'self-signed');
  });

  it('pinned as ca_file, a client logs in and chats through the gateway', async () => {
    const { service } = await gateway('pinned', env.prosody.caFile);
    let a, b;
    try {
      a = await login(user(service, 'alice'));
      b = await login(user(service, 'bob'));
      const { received } = await sendChat(a, b, 'hello over a pinned self-signed certificate');
      assert.equal(received.getChildText('body'), 'hello over a pinned self-signed certificate');
    } catch (e) {
      env.failed = true;
      throw e;
    } finally {
      await a?.stop().catch(() => {});
      await b?.stop().catch(() => {});
    }
  });

  it('pinned to another certificate, the same server is refused', async () => {
    const other = await makeTestCA(path.join(env.dir, 'other-ca'), ['localhost']);
    const { g, service } = await gateway('other', other.certFile);
    try {
      const { error } = await expectLoginFailure(user(service, 'alice'));
      assert.equal(error.condition, 'remote-connection-failed', `${error.stack}`);
      assert.match(await g.waitLog(/certificate|UnknownIssuer|not trusted/i), /certificate|UnknownIssuer|not trusted/i);
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });
});
