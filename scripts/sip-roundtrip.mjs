// SIP over WebSocket round trip for scripts/demo: two JsSIP user agents
// (from e2e/node_modules, via e2e/lib/sipua.mjs) register through the
// gateway's SIP route with the SIP core behind it (the demo's Kamailio),
// send each other a MESSAGE (which the core routes back through the
// gateway using the Path the gateway added), and unregister.
//
//   node scripts/sip-roundtrip.mjs WS_URL DOMAIN USER1 USER2
//
// Exit 0 when both messages arrived with the right sender and body, 1
// otherwise. Bounded: gives up after 30 s whatever happens.

import { startJssip } from '../e2e/lib/sipua.mjs';

const [url, domain, user1, user2] = process.argv.slice(2);
if (!user2) {
  console.error('usage: node scripts/sip-roundtrip.mjs WS_URL DOMAIN USER1 USER2');
  process.exit(2);
}

const say = (m) => console.error(`[sip-roundtrip] ${m}`);
const watchdog = setTimeout(() => {
  say('no result within 30 s');
  process.exit(1);
}, 30_000);

const agents = [];
let ok = false;
try {
  const aor1 = `sip:${user1}@${domain}`;
  const aor2 = `sip:${user2}@${domain}`;
  const a = await startJssip({ wsUrl: url, aor: aor1 });
  agents.push(a);
  const b = await startJssip({ wsUrl: url, aor: aor2 });
  agents.push(b);
  await a.ready();
  await b.ready();
  say(`${aor1} and ${aor2} registered via ${url}`);
  const check = async (from, to, fromAor, toAor, body) => {
    const status = await from.sendMessage(toAor, body);
    if (status !== 200) throw new Error(`MESSAGE ${fromAor} -> ${toAor} answered ${status}`);
    const got = await to.messages.next();
    if (got.body !== body || !got.from.startsWith(fromAor)) {
      throw new Error(`${toAor} got ${JSON.stringify(got)}, expected ${JSON.stringify(body)} from ${fromAor}`);
    }
    say(`${toAor} received "${body}" from ${fromAor}`);
  };
  await check(a, b, aor1, aor2, `hello ${user2}, from ${user1} through ucgate`);
  await check(b, a, aor2, aor1, `hello ${user1}, from ${user2} through ucgate`);
  ok = true;
} catch (e) {
  say(`failed: ${e.message}`);
} finally {
  for (const ag of agents) await ag.close();
  clearTimeout(watchdog);
}
process.exit(ok ? 0 : 1);
