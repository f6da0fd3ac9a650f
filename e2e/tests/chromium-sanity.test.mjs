// Harness self-test: runs the same browser scenario as h2-websocket.test.mjs
// against a small node reference server (lib/reference-server.mjs) instead of
// ucgate. It proves that, with our flags, Chromium really sends WebSockets as
// RFC 8441 extended CONNECT on one HTTP/2 connection, and that the scenario's
// assertions catch a server that does not offer it (HTTP/1.1 fallback).
// Needs only Chromium and node; takes a few seconds.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startReferenceServer } from '../lib/reference-server.mjs';
import { checkEchoOverH2, checkOriginRefused, setupEnv, step } from '../lib/scenario.mjs';

function referenceServer({ enableConnectProtocol }) {
  return async ({ port, adminPort, cert, key, echoPort }) => {
    const srv = await startReferenceServer({
      port,
      adminPort,
      cert,
      key,
      enableConnectProtocol,
      routes: [
        { path: '/echo', backendPort: echoPort, origins: [`https://localhost:${port}`] },
        { path: '/echo-strict', backendPort: echoPort, origins: ['https://other.example'] },
      ],
    });
    return { close: () => srv.close() };
  };
}

describe('harness vs reference h2 server (ENABLE_CONNECT_PROTOCOL=1)', { timeout: 120_000 }, () => {
  let env;
  before(async () => {
    env = await setupEnv({ startServer: referenceServer({ enableConnectProtocol: true }) });
  }, { timeout: 90_000 });
  after(async () => {
    await env?.cleanup();
  }, { timeout: 60_000 });

  it('5 WebSockets echo over HTTP/2 on a single TCP connection', async () => {
    await step(env, (e) => checkEchoOverH2(e, { count: 5 }));
  });

  it('a WebSocket from a foreign origin is refused', async () => {
    await step(env, checkOriginRefused);
  });
});

describe('harness vs reference server without ENABLE_CONNECT_PROTOCOL', { timeout: 120_000 }, () => {
  let env;
  before(async () => {
    env = await setupEnv({ startServer: referenceServer({ enableConnectProtocol: false }) });
  }, { timeout: 90_000 });
  after(async () => {
    await env?.cleanup();
  }, { timeout: 60_000 });

  it('the scenario detects the HTTP/1.1 fallback', async () => {
    // Chromium then opens one new HTTP/1.1 connection per WebSocket; echoing
    // still works, so it must be the connection/h2 metric checks that fail.
    await assert.rejects(checkEchoOverH2(env, { count: 3 }), (err) => {
      assert.ok(err instanceof assert.AssertionError, `unexpected error: ${err?.stack ?? err}`);
      assert.match(err.message, /ucgate_connections_accepted_total\{listener="main"\} should be exactly 1/);
      return true;
    });
  });
});
