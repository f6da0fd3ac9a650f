// XMPP over WebSocket round trip for scripts/demo: two users log in with
// @xmpp/client (from e2e/node_modules, via e2e/lib/xmpp.mjs) over the
// gateway's WebSocket URL, send each other a chat message, and log out.
//
//   node scripts/xmpp-roundtrip.mjs WS_URL DOMAIN USER1 PASSWORD1 USER2 PASSWORD2
//
// Exit 0 when both messages arrived with the right from/to, 1 otherwise.
// Bounded: gives up after 30 s whatever happens.

import { ensureWebSocket, login, sendChat } from '../e2e/lib/xmpp.mjs';

const [url, domain, user1, pass1, user2, pass2] = process.argv.slice(2);
if (!pass2) {
  console.error('usage: node scripts/xmpp-roundtrip.mjs WS_URL DOMAIN USER1 PASSWORD1 USER2 PASSWORD2');
  process.exit(2);
}

const say = (m) => console.error(`[xmpp-roundtrip] ${m}`);
const watchdog = setTimeout(() => {
  say('no result within 30 s');
  process.exit(1);
}, 30_000);

const clients = [];
let ok = false;
try {
  await ensureWebSocket();
  const a = await login({ service: url, domain, username: user1, password: pass1, resource: 'demo-check' });
  clients.push(a);
  say(`${a.xmpp.jid} logged in via ${url}`);
  const b = await login({ service: url, domain, username: user2, password: pass2, resource: 'demo-check' });
  clients.push(b);
  say(`${b.xmpp.jid} logged in via ${url}`);

  for (const [from, to] of [
    [a, b],
    [b, a],
  ]) {
    const body = `hello ${to.xmpp.jid.local} from ${from.xmpp.jid.local}`;
    const r = await sendChat(from, to, body);
    const got = r.received.getChildText('body');
    if (got !== body || r.received.attrs.from !== r.fromJid || r.received.attrs.to !== r.toJid) {
      throw new Error(`unexpected message: ${r.received}`);
    }
    say(`${r.toJid} got "${got}" from ${r.received.attrs.from}`);
  }
  for (const c of clients.splice(0)) await c.stop();
  say('both logged out cleanly');
  ok = true;
} catch (e) {
  say(`failed: ${e.name}${e.condition ? ` (${e.condition})` : ''}: ${e.message}`);
  for (const c of clients) await c.stop().catch(() => {});
} finally {
  clearTimeout(watchdog);
}
process.exit(ok ? 0 : 1);
