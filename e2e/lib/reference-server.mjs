// A tiny stand-in for ucgate, used to validate the browser harness without the
// Rust gateway (tests/chromium-sanity.test.mjs). It implements just enough:
//
//  * one TLS listener speaking HTTP/2 (with SETTINGS_ENABLE_CONNECT_PROTOCOL=1)
//    and HTTP/1.1 (ALPN fallback),
//  * WebSocket routes reached via RFC 8441 extended CONNECT (h2) or the classic
//    RFC 6455 Upgrade (http/1.1), each bridged to a TCP backend,
//  * per-route Origin allow-lists (403 otherwise),
//  * an admin HTTP listener with /ready and Prometheus-style /metrics using the
//    same metric names as ucgate.
//
// Counting h2 and http1 upgrades separately is what lets the sanity test prove
// which protocol Chromium actually used.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { FrameParser, encodeFrame, OP } from './wsframe.mjs';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export async function startReferenceServer({
  port,
  adminPort,
  cert,
  key,
  routes,
  enableConnectProtocol = true,
}) {
  const counters = {
    connections: 0,
    upgrades: new Map(), // `${route}|${http}` -> n
    rejected: new Map(), // route -> n
  };
  const bump = (map, k) => map.set(k, (map.get(k) ?? 0) + 1);
  const sockets = new Set();
  const routeFor = (path) => routes.find((r) => r.path === path);

  // Bridge a WebSocket byte stream (duplex) to the route's TCP backend.
  function bridge(duplex, route) {
    const parser = new FrameParser();
    const backend = net.connect(route.backendPort, '127.0.0.1');
    sockets.add(backend);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      backend.destroy();
      if (!duplex.destroyed) duplex.end();
    };
    backend.on('data', (d) => duplex.write(encodeFrame(OP.BINARY, d)));
    backend.on('error', finish);
    backend.on('close', finish);
    duplex.on('error', finish);
    duplex.on('close', finish);
    duplex.on('data', (chunk) => {
      let frames;
      try {
        frames = parser.push(chunk);
      } catch {
        finish();
        return;
      }
      for (const f of frames) {
        if (f.opcode === OP.TEXT || f.opcode === OP.BINARY || f.opcode === OP.CONT) {
          backend.write(f.payload);
        } else if (f.opcode === OP.PING) {
          duplex.write(encodeFrame(OP.PONG, f.payload));
        } else if (f.opcode === OP.CLOSE) {
          duplex.write(encodeFrame(OP.CLOSE, f.payload.subarray(0, 2)));
          finish();
        }
      }
    });
  }

  const server = http2.createSecureServer({
    cert: fs.readFileSync(cert),
    key: fs.readFileSync(key),
    allowHTTP1: true,
    settings: { enableConnectProtocol },
  });

  server.on('secureConnection', (sock) => {
    counters.connections++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });

  // HTTP/2: extended CONNECT carries the WebSocket.
  server.on('stream', (stream, headers) => {
    const route = routeFor(headers[':path']);
    if (headers[':method'] === 'CONNECT' && headers[':protocol'] === 'websocket' && route) {
      if (!route.origins.includes(headers.origin)) {
        bump(counters.rejected, route.path);
        stream.respond({ ':status': 403 }, { endStream: true });
        return;
      }
      bump(counters.upgrades, `${route.path}|h2`);
      stream.respond({ ':status': 200 });
      bridge(stream, route);
      return;
    }
    stream.respond({ ':status': 404, 'content-type': 'text/plain' });
    stream.end('not found\n');
  });

  // Node's compat layer (active because of the 'request' listener below) would
  // answer every h2 CONNECT with 405 and end the stream unless a 'connect'
  // listener exists; extended CONNECT is handled in 'stream' above instead.
  server.on('connect', () => {});

  // HTTP/1.1 (ALPN fallback): only 404s; the WebSocket path is 'upgrade'.
  server.on('request', (req, res) => {
    if (req.httpVersionMajor === 2) return; // handled by 'stream'
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  server.on('upgrade', (req, socket) => {
    const route = routeFor(req.url);
    const ok =
      route &&
      (req.headers.upgrade ?? '').toLowerCase() === 'websocket' &&
      route.origins.includes(req.headers.origin);
    if (!ok) {
      if (route) bump(counters.rejected, route.path);
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    bump(counters.upgrades, `${route.path}|http1`);
    const accept = crypto
      .createHash('sha1')
      .update(req.headers['sec-websocket-key'] + WS_GUID)
      .digest('base64');
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    bridge(socket, route);
  });

  const admin = http.createServer((req, res) => {
    if (req.url === '/ready') {
      res.writeHead(200).end('ready\n');
    } else if (req.url === '/metrics') {
      const lines = [
        '# TYPE ucgate_connections_accepted_total counter',
        `ucgate_connections_accepted_total{listener="main"} ${counters.connections}`,
        '# TYPE ucgate_ws_upgrades_total counter',
      ];
      for (const [k, n] of counters.upgrades) {
        const [route, proto] = k.split('|');
        lines.push(`ucgate_ws_upgrades_total{route="${route}",http="${proto}"} ${n}`);
      }
      lines.push('# TYPE ucgate_ws_rejected_total counter');
      for (const [route, n] of counters.rejected) {
        lines.push(`ucgate_ws_rejected_total{route="${route}"} ${n}`);
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(lines.join('\n') + '\n');
    } else {
      res.writeHead(404).end();
    }
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(adminPort, '127.0.0.1', resolve);
  });

  return {
    counters,
    async close() {
      for (const s of sockets) s.destroy();
      admin.closeAllConnections();
      await Promise.all([
        new Promise((r) => server.close(() => r())),
        new Promise((r) => admin.close(() => r())),
      ]);
    },
  };
}
