// End-to-end (issue 16 item 2): the admin listener's status page in
// headless Chromium, on a phone-sized screen: behind `admin.token` (401
// without it), it shows the version, the routes with their open sessions,
// the backends with their last connection and probe, the errors by cause
// and the refused origins; it loads nothing but itself, runs no script,
// and its width fits the screen (wide tables scroll inside their box). A
// screenshot is kept in target/e2e-artifacts/status-page.png.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import { freePorts, launchChromium, makeTempDir, sleep, startEchoServer, withTimeout } from '../lib/harness.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.resolve(__dirname, '../../target/e2e-artifacts');
const TOKEN = 'e2e-status-token-0123456789abcdef';

/** A raw WebSocket handshake; resolves with the status line. */
function handshake(port, route, origin) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.write(
        `GET ${route} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: ${origin}\r\n\r\n`,
      );
    });
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) {
        resolve(got.split('\r\n')[0]);
        s.destroy();
      }
    });
    s.on('error', reject);
    s.setTimeout(5_000, () => reject(new Error('no answer')));
  });
}

describe(`the status page in Chromium (${UCGATE_BIN})`, { timeout: 90_000 }, () => {
  const env = { teardown: [] };

  before(async () => {
    env.dir = makeTempDir('ucgate-e2e-status-');
    env.teardown.push(() => fs.rmSync(env.dir, { recursive: true, force: true }));
    env.echo = await startEchoServer();
    env.teardown.push(() => env.echo.close());
    // The dead backend is on a loopback address no test listens on: the
    // port alone was free a moment ago, and a test running alongside could
    // have bound it on 127.0.0.1 since.
    const [port, adminPort, deadPort] = await freePorts(3);
    Object.assign(env, { port, adminPort });
    env.gateway = await startGateway({
      dir: env.dir,
      adminPort,
      config: `[server]
listen = ${toml(`127.0.0.1:${port}`)}
[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}
token = ${toml(TOKEN)}
probe_interval = "300ms"
[[route]]
path = "/echo"
kind = "tcp"
backend = ${toml(`127.0.0.1:${env.echo.port}`)}
origins = ["https://good.example"]
[[route]]
path = "/gone"
kind = "tcp"
backend = ${toml(`127.255.0.1:${deadPort}`)}
origins = ["https://good.example"]
`,
    });
    env.teardown.push(() => env.gateway.close());
    env.browser = await launchChromium();
    env.teardown.push(() => env.browser.close());
  }, { timeout: 60_000 });

  after(async () => {
    for (const fn of env.teardown.reverse()) {
      await withTimeout(Promise.resolve().then(fn), 15_000, 'teardown step').catch((e) => console.error(e));
    }
  }, { timeout: 60_000 });

  it('without the token the page is 401', async () => {
    const context = await env.browser.newContext();
    const page = await context.newPage();
    const res = await page.goto(`http://127.0.0.1:${env.adminPort}/`, { timeout: 15_000 });
    assert.equal(res.status(), 401);
    await context.close();
  });

  it('with the token it shows what the gateway is doing, on a phone', async () => {
    // a refused origin, a backend that does not answer, one that does
    assert.match(await handshake(env.port, '/echo', 'https://evil.example'), / 403 /);
    assert.match(await handshake(env.port, '/gone', 'https://good.example'), / 502 /);
    assert.match(await handshake(env.port, '/echo', 'https://good.example'), / 101 /);
    await sleep(700); // two probe rounds

    const context = await env.browser.newContext({
      extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` },
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      javaScriptEnabled: true,
    });
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    const url = `http://127.0.0.1:${env.adminPort}/`;
    const res = await page.goto(url, { timeout: 15_000 });
    assert.equal(res.status(), 200);
    assert.deepEqual(requests, [url], 'the page loads nothing but itself');
    assert.equal(await page.locator('script').count(), 0);

    const text = await page.innerText('body');
    for (const want of [
      'ucgate',
      'running',
      '/echo',
      '/gone',
      `127.0.0.1:${env.echo.port}`,
      'origin_forbidden',
      'connect',
      'https://evil.example',
      'Errors by cause',
    ]) {
      assert.ok(text.includes(want), `"${want}" not on the page:\n${text}`);
    }
    // the backend that answers: probe ok; the one that does not: failed
    const rows = await page.$$eval('tr', (trs) => trs.map((t) => t.innerText));
    const echoRow = rows.find((r) => r.includes(`127.0.0.1:${env.echo.port}`));
    const goneRow = rows.find((r) => r.includes('backend of /gone') && /failed[\s\S]*failed/.test(r));
    assert.ok(echoRow && /\bok\b/.test(echoRow), `echo row: ${echoRow}`);
    assert.ok(goneRow, `no failed row for /gone in ${JSON.stringify(rows)}`);
    const width = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(width[0] <= width[1] + 1, `the page is wider than the screen: ${width}`);
    const refresh = await page.$eval('meta[http-equiv=refresh]', (m) => m.content);
    assert.equal(refresh, '5');

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });
    assert.ok(fs.statSync(path.join(ARTIFACTS, 'status-page.png')).size > 10_000);

    // the JSON: the same facts
    const json = await (await context.request.get(`http://127.0.0.1:${env.adminPort}/status`)).json();
    assert.equal(json.phase, 'running');
    assert.equal(json.routes[0].path, '/echo');
    assert.equal(json.targets[0].last_probe.ok, true);
    assert.equal(json.targets[1].last_probe.ok, false);
    await context.close();
  });
});
