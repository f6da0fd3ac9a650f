// Shared building blocks for the browser end-to-end tests: certificates, ports,
// the TCP echo backend, readiness polling, Prometheus scraping and Chromium.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const execFileP = promisify(execFile);

export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

// Flags verified against Chromium 156 (see e2e/README.md):
//  * --disable-quic: WebSockets over HTTP/3 are not wanted; keep to TCP+TLS.
//  * --disable-background-networking, --disable-component-update,
//    --disable-sync, --no-first-run: no traffic to Google services (there is no
//    network here beyond loopback; without them connections get refused).
//  * --ignore-certificate-errors: the gateway uses a throwaway self-signed cert.
//    The H2 session is still pooled and reused for WebSockets with it.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--ignore-certificate-errors',
];

/** Reject with `message` if `promise` has not settled within `ms`. */
export function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function makeTempDir(prefix = 'ucgate-e2e-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Self-signed P-256 certificate for localhost and 127.0.0.1, via the openssl CLI. */
export async function makeCert(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  await withTimeout(
    execFileP('openssl', [
      'req', '-x509', '-nodes',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-days', '2',
      '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-addext', 'extendedKeyUsage=serverAuth',
      '-keyout', key,
      '-out', cert,
    ]),
    15_000,
    'openssl req',
  );
  return { cert, key };
}

/** A currently free TCP port on 127.0.0.1 (bind to :0, read it, close). */
export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** Distinct free ports (the OS could hand the same one out twice after close). */
/** True when 127.0.0.1:`port` accepts a TCP connection (within 1 s). */
export function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1_000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Keeps the last `limit` characters a spawned `child` writes (stdout and
 * stderr together) and notes a spawn error: { text(), error(), exited },
 * `exited` resolving with { code, signal }.
 */
export function capture(child, limit = 1 << 20) {
  let text = '';
  let error = null;
  const append = (chunk) => {
    text += chunk;
    if (text.length > limit) text = text.slice(-limit);
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  child.on('error', (e) => {
    error = e;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { text: () => text, error: () => error, exited };
}

export async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** TCP echo backend on 127.0.0.1:0; counts the connections it accepted. */
export async function startEchoServer() {
  const sockets = new Set();
  const state = { accepted: 0 };
  const srv = net.createServer((sock) => {
    state.accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: srv.address().port,
    get accepted() {
      return state.accepted;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => srv.close(() => r()));
    },
  };
}

/**
 * Poll `url` until it answers 200, for at most `timeoutMs`. `abortCheck()` is
 * awaited each round and may throw (e.g. the gateway process already exited).
 */
export async function waitReady(url, { timeoutMs = 15_000, abortCheck = async () => {} } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    await abortCheck();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.cause?.code ?? e.message;
    }
    await sleep(100);
  }
  await abortCheck();
  throw new Error(`${url} not ready within ${timeoutMs} ms (last: ${last})`);
}

/**
 * Parse Prometheus text exposition format into samples
 * `{ name, labels: {k: v}, value }`. Comments and blank lines are skipped.
 */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[2]) {
      const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
      let lm;
      let consumed = 0;
      while ((lm = re.exec(m[2])) !== null) {
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        consumed = re.lastIndex;
      }
      if (consumed !== m[2].length) throw new Error(`unparseable labels: ${JSON.stringify(line)}`);
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/**
 * Sum of all samples named `name` whose labels include `labels` (a subset
 * match, so an extra label added later does not break the test). Returns
 * undefined when no sample matches, so a missing metric fails loudly.
 */
export function metricValue(samples, name, labels = {}) {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length === 0) return undefined;
  return hits.reduce((a, s) => a + s.value, 0);
}

export async function scrapeMetrics(adminPort) {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered HTTP ${res.status}: ${text}`);
  return { text, samples: parsePrometheus(text) };
}

/** Headless Chromium via playwright-core; Playwright makes a fresh temp profile. */
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run scripts/install-deps (or set CHROMIUM_BIN)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/**
 * A page whose document origin is `origin` (https://localhost:PORT) without
 * the server having to serve HTML: Playwright fulfils /e2e.html itself.
 *
 * Such a fulfilled document has no IP address space of its own, so Chromium's
 * Local Network Access checks treat it as public and block WebSockets to
 * localhost (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS) unless the
 * context is granted the 'local-network-access' permission.
 */
export async function openOriginPage(browser, origin) {
  const context = await browser.newContext({ permissions: ['local-network-access'] });
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.route(`${origin}/e2e.html`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>e2e</title>' }),
  );
  await page.goto(`${origin}/e2e.html`, { timeout: 15_000 });
  return { context, page, consoleLines };
}
