// SIP scenarios shared by tests/sip-kamailio-direct.test.mjs (Kamailio's own
// WebSocket listener) and tests/sip-websocket.test.mjs (through ucgate): the
// same flows, so the direct test proves the harness the gateway test relies on.

import assert from 'node:assert/strict';
import { startJssip, startSipjs, udpEndpoint } from './sipua.mjs';
import { runSipp, startSipp } from './sipp.mjs';
import { freeUdpTcpPort } from './kamailio.mjs';

const DOMAIN = '127.0.0.1';
const aor = (user) => `sip:${user}@${DOMAIN}`;

/** Start and register UAs ({ name: 'jssip'|'sipjs' }); returns a map and a closeAll(). */
export async function startAgents(wsUrl, spec, cleanup) {
  const agents = {};
  for (const [name, kind] of Object.entries(spec)) {
    const a = kind === 'jssip' ? await startJssip({ wsUrl, aor: aor(name) }) : await startSipjs({ wsUrl, aor: aor(name) });
    cleanup.push(() => a.close());
    agents[name] = a;
  }
  await Promise.all(Object.values(agents).map((a) => a.ready()));
  return agents;
}

/** MESSAGE a → b and b → a; bodies and From checked. */
export async function messageBothWays(a, b, tag) {
  const body1 = `hello ${b.aor} from ${a.aor} (${tag}) ✓`;
  assert.equal(await a.sendMessage(b.aor, body1), 200, `${tag}: MESSAGE ${a.aor} → ${b.aor} status`);
  const m1 = await b.messages.next();
  assert.equal(m1.body, body1);
  assert.match(m1.from, new RegExp(`^${a.aor}`));
  const body2 = `reply to ${a.aor} from ${b.aor} (${tag})`;
  assert.equal(await b.sendMessage(a.aor, body2), 200, `${tag}: MESSAGE ${b.aor} → ${a.aor} status`);
  const m2 = await a.messages.next();
  assert.equal(m2.body, body2);
  assert.match(m2.from, new RegExp(`^${b.aor}`));
}

/**
 * a calls b (INVITE with static SDP, auto-answered, ACK), then `hangupBy`
 * ('caller' | 'callee') sends BYE; both sides see the end. Returns the
 * INVITE as b received it (a JsSIP/SIP.js request object) and the SDP a got.
 */
export async function callAndHangUp(a, b, { hangupBy = 'caller', sdp } = {}) {
  const { session, remoteSdp } = await a.call(b.aor, { sdp });
  assert.match(remoteSdp ?? '', /^v=0/, 'caller got an SDP answer');
  const incoming = await b.calls.next();
  if (hangupBy === 'caller') {
    await a.hangup(session);
    await b.ended.next();
  } else {
    await b.hangup(incoming.session);
    await a.ended.next();
  }
  return { incoming, remoteSdp };
}

/** Register `user` at Kamailio with Contact = a SIPp UAS on `sippPort` (UDP). */
export async function registerUdpContact(kamailioPort, user, sippPort) {
  const ep = await udpEndpoint();
  try {
    const r = await ep.request(kamailioPort, {
      method: 'REGISTER',
      ruri: `sip:${DOMAIN}`,
      from: aor(user),
      to: aor(user),
      contact: `<sip:${user}@127.0.0.1:${sippPort}>;expires=600`,
      extra: ['Expires: 600'],
    });
    assert.equal(r.status, 200, `REGISTER ${user} → ${sippPort}: ${r.startLine}`);
  } finally {
    ep.close();
  }
}

/** SIPp (UDP, next to Kamailio) sends a MESSAGE to the WS agent `b`, and calls it. */
export async function sippToWs(kamailioPort, b, tag) {
  const body = `from SIPp to ${b.aor} (${tag})`;
  const user = b.aor.slice(4).split('@')[0];
  const r1 = await runSipp({ scenario: 'uac-message.xml', remote: `127.0.0.1:${kamailioPort}`, service: user, keys: { body } });
  assert.ok(r1.ok, `SIPp MESSAGE failed:\n${r1.output}`);
  const m = await b.messages.next();
  assert.equal(m.body.trim(), body);
  const r2 = await runSipp({ scenario: 'uac-call.xml', remote: `127.0.0.1:${kamailioPort}`, service: user });
  assert.ok(r2.ok, `SIPp call failed:\n${r2.output}`);
  const inc = await b.calls.next();
  assert.match(inc.request.body ?? '', /o=sipp/);
  await b.ended.next();
}

/** The WS agent `a` sends a MESSAGE to, and calls, a SIPp UAS registered as `user`. */
export async function wsToSipp(kamailioPort, a, user, tag) {
  const port = await freeUdpTcpPort();
  await registerUdpContact(kamailioPort, user, port);
  const uas = startSipp({ scenario: 'uas-message.xml', port });
  try {
    await new Promise((r) => setTimeout(r, 300)); // SIPp binds its socket
    assert.equal(await a.sendMessage(aor(user), `to SIPp (${tag})`), 200);
    const r = await uas.done;
    assert.ok(r.ok, `SIPp UAS MESSAGE failed:\n${r.output}`);
    assert.match(r.messages, /to SIPp/);
  } finally {
    uas.kill();
  }
  const uas2 = startSipp({ scenario: 'uas-call.xml', port });
  try {
    await new Promise((r) => setTimeout(r, 300));
    const { session, remoteSdp } = await a.call(aor(user));
    assert.match(remoteSdp ?? '', /o=sipp/);
    // A short talk time before BYE: JsSIP sends BYE microseconds after the
    // ACK, and Kamailio's two UDP workers may then forward them in either
    // order, which SIPp's UAS scenario (ACK, then BYE) rejects. ucgate
    // itself sends them in order on one socket.
    await new Promise((r) => setTimeout(r, 200));
    await a.hangup(session);
    const r = await uas2.done;
    assert.ok(r.ok, `SIPp UAS call failed:\n${r.output}`);
  } finally {
    uas2.kill();
  }
}
