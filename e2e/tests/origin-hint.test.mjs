// End-to-end: a real headless Chromium page is refused for its Origin; the
// gateway's log line says which `origins` line to write (issue 16 item 3);
// written into the configuration as given, the same page connects and
// echoes. The admin listener's /refused-origins lists the refused origin.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/origin-hint.test.mjs

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { checkConfig, startGateway, toml } from '../lib/gateway.mjs';
import {
  freePorts,
  launchChromium,
  makeCert,
  makeTempDir,
  openOriginPage,
  sleep,
  startEchoServer,
  withTimeout,
} from '../lib/harness.mjs';

// Chromium never resolves this host: Playwright fulfils the page itself.
// An https page: Chromium lets a secure page (with the local-network-access
// permission) open a WebSocket to the loopback gateway.
const PAGE_ORIGIN = 'https://chat.example.test:8123';

function config({ port, adminPort, echoPort, origins, cert, key }) {
  return `# written by e2e/tests/origin-hint.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
[[server.tls.certificate]]
cert = ${toml(cert)}
key = ${toml(key)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[log]
format = "json"

[[route]]
path = "/echo"
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}
${origins}
`;
}

// In the page: open a WebSocket, send one text message, report what happened.
async function pageEcho({ url, timeoutMs }) {
  return new Promise((resolve) => {
    const events = [];
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer'; // the tunnel echoes bytes as binary messages
    const t = setTimeout(() => resolve({ events: [...events, 'timeout'] }), timeoutMs);
    ws.onopen = () => {
      events.push('open');
      ws.send('hello through ucgate');
    };
    ws.onmessage = (m) => {
      events.push(`message:${typeof m.data === 'string' ? m.data : new TextDecoder().decode(m.data)}`);
      ws.close(1000);
    };
    ws.onerror = () => events.push('error');
    ws.onclose = (e) => {
      clearTimeout(t);
      resolve({ events: [...events, `close:${e.code}`] });
    };
  });
}

/** The `hint` fields of the gateway's JSON log lines about refused origins. */
function hints(log) {
  const out = [];
  for (const line of log.split('\n')) {
    if (!line.includes('origin_forbidden')) continue;
    let v;
    try {
      v = JSON.parse(line);
    } catch {
      continue;
    }
    const h = v.hint ?? v.fields?.hint;
    if (typeof h === 'string') out.push(h);
  }
  return out;
}

describe('the refused-origin hint, applied, lets the page in', { timeout: 120_000 }, () => {
  let browser;
  let echo;
  let tls;
  const gateways = [];
  const dirs = [];
  before(async () => {
    echo = await startEchoServer();
    const certDir = makeTempDir('ucgate-e2e-origin-hint-cert-');
    dirs.push(certDir);
    tls = await makeCert(certDir);
    browser = await launchChromium();
  }, { timeout: 60_000 });
  after(async () => {
    for (const gw of gateways) await gw.close().catch(() => {});
    await browser?.close().catch(() => {});
    await echo?.close().catch(() => {});
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }, { timeout: 30_000 });

  it('refused, then allowed by exactly the line the log gave', async () => {
    const { page, context, consoleLines } = await openOriginPage(browser, PAGE_ORIGIN);
    try {
      // 1. Refused: the route allows only another origin.
      const [port, adminPort] = await freePorts(2);
      const dir = makeTempDir('ucgate-e2e-origin-hint-');
      dirs.push(dir);
      const first = config({ port, adminPort, echoPort: echo.port, ...tls, origins: 'origins = ["https://other.example"]' });
      const originsLine = first.split('\n').findIndex((l) => l.startsWith('origins =')) + 1;
      const gw = await startGateway({ dir, config: first, adminPort });
      gateways.push(gw);
      const url = `wss://localhost:${port}/echo`;
      const refused = await withTimeout(page.evaluate(pageEcho, { url, timeoutMs: 10_000 }), 20_000, 'refused WebSocket');
      assert.ok(!refused.events.includes('open'), `opened despite the origin list: ${refused.events}`);
      assert.ok(refused.events.includes('close:1006'), `not refused: ${refused.events}\n${consoleLines.join('\n')}\n${gw.log()}`);

      const res = await fetch(`http://127.0.0.1:${adminPort}/refused-origins`, { signal: AbortSignal.timeout(5_000) });
      assert.equal(res.status, 200);
      const listed = await res.json();
      assert.deepEqual(
        listed.routes.map((r) => [r.route, r.refused_origins.map((o) => [o.origin, o.count])]),
        [['/echo', [[PAGE_ORIGIN, 1]]]],
      );

      let got = [];
      for (let i = 0; i < 50 && got.length === 0; i++) {
        got = hints(gw.log());
        if (got.length === 0) await sleep(100);
      }
      const expected =
        `add "${PAGE_ORIGIN}" to \`origins\` of the [[route]] with path = "/echo" (config line ${originsLine}): ` +
        `origins = ["https://other.example", "${PAGE_ORIGIN}"]`;
      assert.deepEqual(got, [expected], `log:\n${gw.log()}`);
      await gw.close();

      // 2. The line from the hint, written at the line it names.
      const snippet = got[0].slice(got[0].indexOf('): ') + 3);
      const [port2, adminPort2] = await freePorts(2);
      const dir2 = makeTempDir('ucgate-e2e-origin-hint-');
      dirs.push(dir2);
      const lines = config({ port: port2, adminPort: adminPort2, echoPort: echo.port, ...tls, origins: 'origins = ["https://other.example"]' }).split('\n');
      lines[originsLine - 1] = snippet;
      const second = lines.join('\n');
      const gw2 = await startGateway({ dir: dir2, config: second, adminPort: adminPort2 });
      gateways.push(gw2);
      const check = await checkConfig(gw2.configPath);
      assert.match(check, /^exit 0\n.*: OK \(1 route/, check);
      assert.ok(!check.includes('warning'), check);
      const allowed = await withTimeout(
        page.evaluate(pageEcho, { url: `wss://localhost:${port2}/echo`, timeoutMs: 10_000 }),
        20_000,
        'allowed WebSocket',
      );
      assert.deepEqual(allowed.events, ['open', 'message:hello through ucgate', 'close:1000'], `log:\n${gw2.log()}`);
    } finally {
      await context.close().catch(() => {});
    }
  });
});
