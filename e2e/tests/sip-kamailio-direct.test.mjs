// The SIP harness alone, no gateway: a private Kamailio (lib/kamailio.mjs,
// config/pairing/kamailio.cfg) with its OWN WebSocket listener (xhttp +
// websocket modules), JsSIP and SIP.js in node (lib/sipua.mjs, static SDP,
// no WebRTC) and SIPp over UDP (lib/sipp.mjs, e2e/sipp/*.xml). Proves that
// the flows tests/sip-websocket.test.mjs runs through ucgate work against a
// known-good SIP-over-WebSocket server.

import { after, before, test } from 'node:test';
import { startKamailio } from '../lib/kamailio.mjs';
import { callAndHangUp, messageBothWays, sippToWs, startAgents, wsToSipp } from '../lib/sip-flows.mjs';

let kam;
const cleanup = [];

before(async () => {
  kam = await startKamailio({ websocket: true });
});

after(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
  await kam?.stop();
});

const withLog = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (e) {
    e.message += `\n--- kamailio log (tail):\n${kam.log().slice(-6000)}`;
    throw e;
  }
};

test('JsSIP: two UAs register, MESSAGE both ways, call and BYE (both directions)', withLog(async () => {
  const { alice, bob } = await startAgents(kam.wsUrl, { alice: 'jssip', bob: 'jssip' }, cleanup);
  await messageBothWays(alice, bob, 'jssip');
  await callAndHangUp(alice, bob, { hangupBy: 'caller' });
  await callAndHangUp(bob, alice, { hangupBy: 'callee' });
}));

test('SIP.js: registers, MESSAGE both ways with JsSIP, calls both ways', withLog(async () => {
  const { carol, dave } = await startAgents(kam.wsUrl, { carol: 'sipjs', dave: 'jssip' }, cleanup);
  await messageBothWays(carol, dave, 'sipjs');
  await callAndHangUp(carol, dave, { hangupBy: 'caller' });
  await callAndHangUp(dave, carol, { hangupBy: 'callee' });
}));

test('SIPp over UDP ↔ WebSocket users (JsSIP and SIP.js): MESSAGE and call both ways', withLog(async () => {
  const { erin, frank } = await startAgents(kam.wsUrl, { erin: 'jssip', frank: 'sipjs' }, cleanup);
  await sippToWs(kam.port, erin, 'jssip');
  await sippToWs(kam.port, frank, 'sipjs');
  await wsToSipp(kam.port, erin, 'sippuas1', 'jssip');
  await wsToSipp(kam.port, frank, 'sippuas2', 'sipjs');
}));
