// End-to-end: `[server.acme]` against Debian's pebble (lib/pebble.mjs).
//
// The gateway starts with no certificate at all, orders one for
// DOMAIN from pebble, answers pebble's TLS-ALPN-01 validation (RFC 8737) on
// its own listener (pebble's `tlsPort` is the gateway's port, its DNS maps
// every name to 127.0.0.1), and serves the certificate:
//  * a TLS client that trusts only pebble's root sees the SAN and issuer;
//  * headless Chromium, which trusts only pebble's root and intermediate
//    (--ignore-certificate-errors-spki-list, no --ignore-certificate-errors;
//    it refuses pebble's own self-signed HTTPS certificate as a control)
//    loads a page on https://DOMAIN:PORT and echoes over wss://DOMAIN:PORT;
//  * with `renew_before` longer than pebble's certificate lifetime and a
//    3 s `check_interval`, the gateway orders again and swaps the new
//    certificate in while the browser's WebSocket stays open and echoing.
// A restart on the same state directory serves the stored certificate
// without a new order.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { startGateway, toml, UCGATE_BIN } from '../lib/gateway.mjs';
import {
  CHROMIUM,
  CHROMIUM_ARGS,
  freePorts,
  makeTempDir,
  metricValue,
  scrapeMetrics,
  sleep,
  startEchoServer,
} from '../lib/harness.mjs';
import { startPebble } from '../lib/pebble.mjs';

const DOMAIN = 'chat.ucgate-acme.test';

function gatewayConfig({ port, adminPort, echoPort, pebble, stateDir, renewBefore }) {
  return `# written by e2e/tests/acme.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[server.acme]
domains = [${toml(DOMAIN)}]
contact = ["mailto:ops@ucgate-acme.test"]
directory = ${toml(pebble.directory)}
ca_file = ${toml(pebble.caFile)}
state_dir = ${toml(stateDir)}
check_interval = "3s"
${renewBefore ? `renew_before = ${toml(renewBefore)}` : ''}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = "/echo"
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}
origins = [${toml(`https://${DOMAIN}:${port}`)}]
`;
}

/** The certificate the gateway serves for DOMAIN, verified against `ca` only. */
function servedCert(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: DOMAIN, ca, ALPNProtocols: ['http/1.1'] });
    s.setTimeout(3_000, () => s.destroy(new Error('TLS connect timed out')));
    s.once('secureConnect', () => {
      const c = s.getPeerCertificate();
      s.end();
      resolve(c);
    });
    s.once('error', reject);
  });
}

/** Polls until `servedCert` verifies (and `accept(cert)` holds), within `ms`. */
async function waitForCert(port, ca, ms, accept = () => true, diag = () => '') {
  const deadline = Date.now() + ms;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      const c = await servedCert(port, ca);
      if (accept(c)) return c;
      last = `still ${c.fingerprint256}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(250);
  }
  throw new Error(`no acceptable certificate for ${DOMAIN} within ${ms} ms (${last})\n${diag()}`);
}

const spkiHash = (pem) =>
  crypto
    .createHash('sha256')
    .update(new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');

describe(`ACME certificates from pebble through ucgate (${UCGATE_BIN})`, { timeout: 150_000 }, () => {
  let dir;
  let pebble;
  let echo;
  let port;
  let adminPort;
  let ca;
  let stateDir;
  let lastFingerprint;
  const gateways = [];
  let browser;

  before(async () => {
    dir = makeTempDir('ucgate-e2e-acme-');
    stateDir = `${dir}/acme-state`;
    [port, adminPort] = await freePorts(2);
    echo = await startEchoServer();
    pebble = await startPebble({ dir, tlsPort: port });
    const root = await pebble.root();
    const intermediate = await pebble.intermediate();
    assert.match(root, /BEGIN CERTIFICATE/);
    ca = [root, intermediate];
  }, { timeout: 30_000 });

  after(async () => {
    await browser?.close().catch(() => {});
    for (const gw of gateways) await gw.close().catch(() => {});
    await pebble?.close().catch(() => {});
    await echo?.close().catch(() => {});
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('obtains a certificate, serves it to Chromium over https and wss, and renews it live', { timeout: 55_000 }, async () => {
    const gw = await startGateway({
      dir,
      adminPort,
      config: gatewayConfig({ port, adminPort, echoPort: echo.port, pebble, stateDir, renewBefore: '87600h' }),
    });
    gateways.push(gw);
    const diag = () => `--- gateway log:\n${gw.log()}\n${pebble.log()}`;

    // 1. Served, verified against pebble's root only: SAN and issuer.
    const first = await waitForCert(port, ca, 20_000, () => true, diag);
    assert.equal(first.subjectaltname, `DNS:${DOMAIN}`, diag());
    assert.match(first.issuer.CN, /^Pebble Intermediate CA/, diag());
    const folder = `${stateDir}/${storedFolder(pebble.directory)}`;
    const mode = (f) => (fs.statSync(f).mode & 0o777).toString(8);
    assert.equal(mode(folder), '700');
    assert.equal(mode(`${folder}/account.json`), '600');
    assert.equal(mode(`${folder}/certificate.key`), '600');
    // (Which of the certificates is stored is checked after the restart: a
    // renewal may already be under way here.)
    assert.equal(new crypto.X509Certificate(fs.readFileSync(`${folder}/certificate.pem`)).subjectAltName, `DNS:${DOMAIN}`);

    // 2. A real browser that trusts pebble's CA and nothing else.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30_000,
      args: [
        ...CHROMIUM_ARGS.filter((a) => a !== '--ignore-certificate-errors'),
        `--host-resolver-rules=MAP ${DOMAIN} 127.0.0.1`,
        `--ignore-certificate-errors-spki-list=${ca.map(spkiHash).join(',')}`,
      ],
    });
    const context = await browser.newContext({ permissions: ['local-network-access'] });
    // Control: pebble's own HTTPS certificate is not trusted by this browser.
    const control = await context.newPage();
    await assert.rejects(control.goto(pebble.directory, { timeout: 10_000 }), /ERR_CERT/);
    await control.close();
    const page = await context.newPage();
    const failed = [];
    page.on('requestfailed', (r) => failed.push(`${r.url()}: ${r.failure()?.errorText}`));
    const res = await page
      .goto(`https://${DOMAIN}:${port}/`, { timeout: 15_000 })
      .catch((e) => assert.fail(`${e.message}\nfailed requests: ${failed.join('; ')}\n${diag()}`));
    assert.ok(res, 'a response');
    const sec = await res.securityDetails();
    assert.equal(sec.subjectName ?? DOMAIN, DOMAIN, JSON.stringify(sec));
    assert.match(sec.issuer, /^Pebble Intermediate CA/, JSON.stringify(sec));

    const echoOnce = (text) =>
      page.evaluate(
        (text) =>
          new Promise((resolve, reject) => {
            const ws = window.acmeWs;
            const t = setTimeout(() => reject(new Error('no echo in 5 s')), 5_000);
            ws.onmessage = (e) => {
              clearTimeout(t);
              resolve({ data: new TextDecoder().decode(e.data), state: ws.readyState });
            };
            ws.send(text);
          }),
        text,
      );
    await page.evaluate(
      (url) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url);
          ws.binaryType = 'arraybuffer'; // the tcp route sends binary messages
          window.acmeWs = ws;
          window.acmeWsClosed = null;
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error(`WebSocket to ${url} failed`));
          ws.onclose = (e) => (window.acmeWsClosed = e.code);
        }),
      `wss://${DOMAIN}:${port}/echo`,
    );
    assert.deepEqual(await echoOnce('before renewal'), { data: 'before renewal', state: 1 });

    // 3. Renewal: a new certificate is served; the open WebSocket stays.
    const renewed = await waitForCert(port, ca, 25_000, (c) => c.fingerprint256 !== first.fingerprint256, diag);
    assert.equal(renewed.subjectaltname, `DNS:${DOMAIN}`);
    assert.notEqual(renewed.serialNumber, first.serialNumber);
    assert.deepEqual(await echoOnce('after renewal'), { data: 'after renewal', state: 1 });
    assert.equal(await page.evaluate(() => window.acmeWsClosed), null, 'the WebSocket was not closed');
    lastFingerprint = renewed.fingerprint256;

    const { samples } = await scrapeMetrics(adminPort);
    assert.ok(metricValue(samples, 'ucgate_acme_orders_total', { result: 'ok' }) >= 2, diag());
    const expiry = metricValue(samples, 'ucgate_acme_cert_expiry_timestamp_seconds');
    assert.ok(expiry > Date.now() / 1000, `expiry ${expiry}`);
    assert.match(await gw.waitLog(/ACME: certificate obtained and now served/), /ACME: certificate obtained and now served/);
    await context.close();
    await gw.close();
  });

  it('a restart serves the stored certificate without a new order', { timeout: 30_000 }, async () => {
    assert.ok(lastFingerprint, 'the first test stored a certificate');
    const gw = await startGateway({
      dir,
      adminPort,
      // Default renewal margin: pebble's certificate is far from it.
      config: gatewayConfig({ port, adminPort, echoPort: echo.port, pebble, stateDir }),
    });
    gateways.push(gw);
    const diag = () => `--- gateway log:\n${gw.log()}`;
    const served = await waitForCert(port, ca, 5_000, () => true, diag);
    const stored = new crypto.X509Certificate(fs.readFileSync(`${stateDir}/${storedFolder(pebble.directory)}/certificate.pem`));
    assert.equal(served.fingerprint256, stored.fingerprint256, diag());
    await sleep(1_000);
    const { samples } = await scrapeMetrics(adminPort);
    assert.equal(metricValue(samples, 'ucgate_acme_orders_total', { result: 'ok' }) ?? 0, 0, diag());
    assert.match(await gw.waitLog(/serving the stored certificate/), /serving the stored certificate/, diag());
    await gw.close();
  });

  it('a failed validation is logged in words, counted, and leaves the listener without a certificate', { timeout: 30_000 }, async () => {
    // A second pebble whose validation authority connects to a port nobody
    // listens on: the challenge cannot be answered.
    const [deadPort, port2, admin2] = await freePorts(3);
    const badDir = makeTempDir('ucgate-e2e-acme-fail-');
    const bad = await startPebble({ dir: badDir, tlsPort: deadPort });
    let gw;
    try {
      gw = await startGateway({
        dir: badDir,
        adminPort: admin2,
        config: gatewayConfig({
          port: port2,
          adminPort: admin2,
          echoPort: echo.port,
          pebble: bad,
          stateDir: `${badDir}/acme-state`,
        }),
      });
      const diag = () => `--- gateway log:\n${gw.log()}\n${bad.log()}`;
      const deadline = Date.now() + 20_000;
      while (!/ACME: could not get a certificate/.test(gw.log()) && Date.now() < deadline) await sleep(200);
      const line = gw.log().split('\n').find((l) => l.includes('ACME: could not get a certificate')) ?? '';
      assert.match(line, new RegExp(`the CA could not validate ${DOMAIN.replaceAll('.', '\\.')}: `), diag());
      assert.match(line, /the listener has no certificate for these domains yet/, diag());
      assert.match(line, /retry_in=60s/, diag());
      const { samples } = await scrapeMetrics(admin2);
      assert.equal(metricValue(samples, 'ucgate_acme_orders_total', { result: 'error' }), 1, diag());
      assert.equal(metricValue(samples, 'ucgate_acme_cert_expiry_timestamp_seconds'), 0, diag());
      await assert.rejects(servedCert(port2, ca));
      assert.ok(gw.alive(), 'the gateway keeps running');
    } finally {
      await gw?.close();
      await bad.close();
      fs.rmSync(badDir, { recursive: true, force: true });
    }
  });
});

/** The state folder for a directory URL (see crates/ucgate/src/acme/files.rs). */
function storedFolder(url) {
  return url
    .replace(/^https:\/\//, '')
    .replace(/\/+$/, '')
    .replace(/[^A-Za-z0-9.-]/g, '_');
}
