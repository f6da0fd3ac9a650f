// The server side of the BOSH end-to-end tests (tests/bosh*.test.mjs): a
// private Prosody (c2s requires TLS) and, by default, the ucgate binary in
// front of it with a `bosh` route and an `xmpp-websocket` route.
//
// E2E_BOSH_TARGET selects what the BOSH clients talk to:
//   ucgate   (default) http://127.0.0.1:PORT/http-bind on the gateway, which
//            reaches Prosody over TCP with STARTTLS (verified against the
//            test CA); the second user logs in over the gateway's WebSocket
//            route; the admin /metrics is scraped.
//   prosody  Prosody's own BOSH (mod_bosh on a loopback HTTP port, see
//            startProsody({ bosh: true })), no gateway; the second user logs
//            in straight over TCP with STARTTLS (test CA trusted). This
//            validates the client harnesses against a known-good connection
//            manager; assertions about the gateway (metrics, no <starttls/>
//            in the features) are skipped.
//
//   const t = await startBoshTarget();
//   t.boshUrl, t.bobService, t.browserOrigin, t.browserBoshUrl, t.metric(...)
//   await t.stop({ failed });

import fs from 'node:fs';
import { startGateway, toml } from './gateway.mjs';
import { freePorts, makeTempDir, metricValue, scrapeMetrics, sleep } from './harness.mjs';
import { startProsody } from './prosody.mjs';
import { ensureWebSocket, trustCA } from './xmpp.mjs';

export const BOSH_ROUTE = '/http-bind';
export const WS_ROUTE = '/xmpp-websocket';
export const TARGETS = ['ucgate', 'prosody'];

export function boshTargetMode() {
  const mode = process.env.E2E_BOSH_TARGET || 'ucgate';
  if (!TARGETS.includes(mode)) throw new Error(`E2E_BOSH_TARGET=${mode}: expected one of ${TARGETS.join(', ')}`);
  return mode;
}

/** The gateway config of the BOSH tests: both XMPP routes, one domain, STARTTLS to Prosody. */
export function gatewayBoshConfig({ port, adminPort, prosodyPort, caFile, writer = 'e2e/lib/bosh-target.mjs' }) {
  // No `origins` on the routes: the default same-origin policy admits the
  // browser page served as http://localhost:PORT; node clients send no Origin.
  return `# written by ${writer}
[server]
listen = ${toml(`127.0.0.1:${port}`)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = ${toml(BOSH_ROUTE)}
kind = "bosh"

[[route]]
path = ${toml(WS_ROUTE)}
kind = "xmpp-websocket"

[xmpp.domains."localhost"]
address = ${toml(`127.0.0.1:${prosodyPort}`)}
tls = "starttls"
ca_file = ${toml(caFile)}
`;
}

const tail = (text, n = 80) => text.split('\n').slice(-n).join('\n');

/**
 * Start Prosody (+ the gateway in `ucgate` mode). A fresh temp dir holds the
 * gateway's config (removed by stop(), kept on failure with E2E_KEEP_TMP=1).
 * Returns:
 *   mode              'ucgate' | 'prosody'
 *   prosody, gateway  (gateway null in prosody mode)
 *   domain            'localhost'; users: { alice, bob } (see startProsody)
 *   httpPort          the port serving BOSH (gateway or Prosody)
 *   boshUrl           http://127.0.0.1:httpPort/http-bind  (node clients)
 *   browserOrigin     http://localhost:httpPort            (the page's origin)
 *   browserBoshUrl    http://localhost:httpPort/http-bind  (same origin as the page)
 *   bobService        @xmpp/client service for the other user
 *   adminPort         (null in prosody mode)
 *   metric(name, labels)  a gauge/counter value from /metrics (undefined when absent)
 *   alive()           throws if the gateway exited (no-op in prosody mode)
 *   stop({ failed })  stops everything; prints log tails when failed
 */
export async function startBoshTarget({ mode = boshTargetMode(), writer } = {}) {
  await ensureWebSocket(); // bob's @xmpp/client over ws:// on Node 20
  const dir = makeTempDir('ucgate-e2e-bosh-');
  const t = { mode, dir, gateway: null, adminPort: null, untrust: null };
  const stops = [
    (failed) => {
      if (failed && process.env.E2E_KEEP_TMP) console.error(`[e2e] keeping ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    },
  ];
  t.stop = async ({ failed = false } = {}) => {
    const errors = [];
    for (const fn of stops.reverse()) {
      try {
        await fn(failed);
      } catch (e) {
        errors.push(e);
      }
    }
    stops.length = 0;
    if (errors.length) throw new AggregateError(errors, 'BOSH target teardown failed');
  };

  try {
    // mod_blocklist (XEP-0191): Converse.js 14 waits for the blocklist before
    // it opens a chat with a JID outside the roster, and never gets it from a
    // server that does not announce urn:xmpp:blocking (sendMessage hangs).
    t.prosody = await startProsody({ domains: ['localhost'], bosh: mode === 'prosody', modules: ['blocklist'] });
    stops.push(async (failed) => {
      if (failed) console.error(`[e2e] prosody log (tail):\n${tail(t.prosody.log())}`);
      await t.prosody.stop();
    });
    t.domain = t.prosody.domain;
    t.users = t.prosody.users;

    if (mode === 'ucgate') {
      [t.httpPort, t.adminPort] = await freePorts(2);
      t.gateway = await startGateway({
        dir,
        adminPort: t.adminPort,
        config: gatewayBoshConfig({
          port: t.httpPort,
          adminPort: t.adminPort,
          prosodyPort: t.prosody.port,
          caFile: t.prosody.caFile,
          writer,
        }),
      });
      stops.push(async (failed) => {
        if (failed) console.error(`[e2e] gateway log (tail):\n${tail(t.gateway.log())}`);
        await t.gateway.close();
      });
      t.bobService = `ws://127.0.0.1:${t.httpPort}${WS_ROUTE}`;
    } else {
      t.httpPort = t.prosody.httpPort;
      t.untrust = trustCA(t.prosody.caFile); // bob does STARTTLS himself
      stops.push(() => t.untrust());
      t.bobService = `xmpp://127.0.0.1:${t.prosody.port}`;
    }
    t.boshUrl = `http://127.0.0.1:${t.httpPort}${BOSH_ROUTE}`;
    t.browserOrigin = `http://localhost:${t.httpPort}`;
    t.browserBoshUrl = `${t.browserOrigin}${BOSH_ROUTE}`;
  } catch (e) {
    await t.stop({ failed: true }).catch(() => {});
    throw e;
  }

  t.alive = async () => {
    if (t.gateway) await t.gateway.abortCheck();
  };

  t.metric = async (name, labels = {}) => {
    if (!t.adminPort) return undefined;
    const { samples } = await scrapeMetrics(t.adminPort);
    return metricValue(samples, name, labels);
  };

  /**
   * Poll the gateway's `ucgate_bosh_sessions_active` until it is `want`
   * (absent counts as 0), for at most `ms`. Returns the value, or null in
   * prosody mode (nothing to check).
   */
  t.expectBoshSessions = async (want, ms = 10_000) => {
    if (!t.gateway) return null;
    const deadline = Date.now() + ms;
    let value;
    for (;;) {
      value = await t.metric('ucgate_bosh_sessions_active');
      if (value === want || (want === 0 && value === undefined)) return want;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    throw new Error(`ucgate_bosh_sessions_active is ${value}, expected ${want} (waited ${ms} ms)`);
  };

  return t;
}
