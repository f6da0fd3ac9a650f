// A WebSocket echo round trip, for scripts/demo: opens URL, sends MESSAGE,
// waits until the same bytes came back, closes with 1000. Exit 0 on success,
// 1 on any failure or after TIMEOUT_MS (default 10000).
//
//   node scripts/ws-roundtrip.mjs [URL] [MESSAGE]
//
// Uses the global WebSocket (Node >= 22, or Node 20 with
// --experimental-websocket, which scripts/demo passes when needed). Node is a
// non-browser client: it sends no Origin header, so the default same-origin
// policy lets it in.

const url = process.argv[2] ?? 'ws://127.0.0.1:5290/echo';
const message = process.argv[3] ?? 'hello';
const timeoutMs = Number(process.env.TIMEOUT_MS ?? 10000);

if (typeof WebSocket !== 'function') {
  console.error('this node has no global WebSocket: use Node >= 22, or Node 20 with --experimental-websocket');
  process.exit(1);
}

const want = Buffer.from(message, 'utf8');
let got = Buffer.alloc(0);
let done = false;

const finish = (ok, text) => {
  if (done) return;
  done = true;
  (ok ? console.log : console.error)(text);
  clearTimeout(timer);
  process.exitCode = ok ? 0 : 1;
  // Give the close handshake a moment, then leave regardless.
  setTimeout(() => process.exit(process.exitCode), 500).unref();
};

const timer = setTimeout(() => {
  finish(false, `no echo from ${url} within ${timeoutMs} ms (received ${JSON.stringify(got.toString('utf8'))})`);
  try { ws.close(); } catch {}
}, timeoutMs);

const ws = new WebSocket(url);
ws.binaryType = 'arraybuffer';
ws.onopen = () => {
  const proto = ws.protocol ? ` (subprotocol ${ws.protocol})` : '';
  console.log(`connected to ${url}${proto}; sending ${JSON.stringify(message)}`);
  ws.send(message);
};
ws.onmessage = (ev) => {
  const chunk = typeof ev.data === 'string' ? Buffer.from(ev.data, 'utf8') : Buffer.from(ev.data);
  got = Buffer.concat([got, chunk]);
  if (got.length >= want.length) {
    const ok = got.equals(want);
    ws.close(1000, 'done');
    finish(ok, ok
      ? `echo received: ${JSON.stringify(got.toString('utf8'))}`
      : `unexpected echo: ${JSON.stringify(got.toString('utf8'))}, sent ${JSON.stringify(message)}`);
  }
};
ws.onerror = (ev) => {
  finish(false, `WebSocket error on ${url}: ${ev.message ?? ev.error?.message ?? 'connection failed (is the gateway running? the backend up?)'}`);
};
ws.onclose = (ev) => {
  finish(false, `WebSocket closed before the echo arrived: code ${ev.code}${ev.reason ? ` (${ev.reason})` : ''}`);
};
