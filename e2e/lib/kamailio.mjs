// A private Kamailio (Debian's `kamailio` package) for the SIP end-to-end
// tests: the project's own config (config/pairing/kamailio.cfg, a template)
// written with free 127.0.0.1 ports into a temp dir, run in the foreground
// (`kamailio -f FILE -DD -E`, log on stderr, kept in memory), ready when an
// OPTIONS over UDP is answered and the TCP port(s) accept, stopped by its PID
// (SIGTERM, SIGKILL after 5 s), always.
//
//   const k = await startKamailio();                 // UDP+TCP on k.port
//   ... k.coreUri('udp') ...                         // 'sip:127.0.0.1:PORT;transport=udp'
//   await k.stop();
//
//   const k = await startKamailio({ websocket: true }); // + Kamailio's own WS listener
//   ... k.wsUrl ...                                  // ws://127.0.0.1:WSPORT/
//
//   const k = await startKamailio({ tls: true });    // + a SIP-over-TLS listener
//   ... k.coreUri('tls'), k.tlsPort, k.caFile ...    // 'sip:127.0.0.1:TLSPORT;transport=tls'
//
// The TLS option (tls module, Debian package kamailio-tls-modules) makes a
// test CA and a server certificate signed by it (DNS localhost, IP
// 127.0.0.1; openssl CLI) in the temp dir, writes tls.cfg (that server
// certificate; as a client Kamailio does not verify the peer) and starts
// with `-A WITH_TLS`; ready when the TLS port also accepts.
//
// The WebSocket option (xhttp + websocket modules, Debian package
// kamailio-websocket-modules) exists to validate the SIP client harness
// (JsSIP, SIP.js, SIPp) against a known-good WebSocket SIP server, without
// ucgate.
//
// Verified with kamailio 5.6.3 (Debian bookworm), as root and not: `-DD`
// keeps the main process in the foreground (it forks its workers, which die
// with it), `-E` logs to stderr, `-Y DIR` moves the runtime dir out of
// /run/kamailio, `-A WITH_WEBSOCKET` switches the config's #!ifdef blocks.

import { execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { capture, freePort, portAccepts } from './harness.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
export const KAMAILIO_BIN = process.env.KAMAILIO_BIN ?? '/usr/sbin/kamailio';
export const KAMAILIO_CFG_TEMPLATE = path.resolve(__dirname, '../../config/pairing/kamailio.cfg');
/** The SIP domain Kamailio serves (AORs are sip:USER@SIP_DOMAIN). */
export const SIP_DOMAIN = '127.0.0.1';

const LOG_LIMIT = 2 << 20;
const execFileP = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A port free for both UDP and TCP on 127.0.0.1. */
export async function freeUdpTcpPort() {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const sock = dgram.createSocket('udp4');
    const ok = await new Promise((resolve) => {
      sock.once('error', () => resolve(false));
      sock.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise((r) => sock.close(r));
    if (ok) return port;
  }
  throw new Error('no port free for both UDP and TCP');
}

/** Send one SIP OPTIONS over UDP to 127.0.0.1:port; resolves with the status line or null after `ms`. */
export function sipOptionsUdp(port, ms = 1_000) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => finish(null), ms);
    sock.on('error', () => finish(null));
    sock.on('message', (buf) => finish(buf.toString('utf8').split('\r\n')[0]));
    sock.bind(0, '127.0.0.1', () => {
      const lport = sock.address().port;
      const branch = `z9hG4bK${Math.random().toString(36).slice(2)}`;
      const msg =
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\n` +
        `Via: SIP/2.0/UDP 127.0.0.1:${lport};branch=${branch};rport\r\n` +
        `Max-Forwards: 70\r\n` +
        `From: <sip:probe@127.0.0.1>;tag=${branch.slice(7)}\r\n` +
        `To: <sip:127.0.0.1:${port}>\r\n` +
        `Call-ID: ${branch}@127.0.0.1\r\n` +
        `CSeq: 1 OPTIONS\r\n` +
        `Content-Length: 0\r\n\r\n`;
      sock.send(msg, port, '127.0.0.1', (err) => err && finish(null));
    });
  });
}

async function openssl(args) {
  try {
    await execFileP('openssl', args, { timeout: 15_000, killSignal: 'SIGKILL' });
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed (${e.killed ? 'killed after 15 s' : `exit ${e.code ?? e.signal}`}):\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * A test CA and a server certificate signed by it, valid for DNS `localhost`
 * and IP 127.0.0.1 (CN localhost), P-256, 2 days, with the openssl CLI, in
 * `dir`. Returns { caFile, caKey, certFile, keyFile }.
 */
export async function makeSipTestCA(dir, { cn = 'ucgate e2e SIP test CA' } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  const csr = path.join(dir, 'server.csr');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  const ext = path.join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  await openssl([
    'req', '-x509', '-new', '-nodes', ...ec, '-days', '2',
    '-subj', `/O=ucgate e2e/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', caKey, '-out', caFile,
  ]);
  await openssl(['req', '-new', '-nodes', ...ec, '-subj', '/CN=localhost', '-keyout', keyFile, '-out', csr]);
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  await openssl([
    'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', ext, '-out', certFile,
  ]);
  return { caFile, caKey, certFile, keyFile };
}

/** The tls module's config: our server certificate; as a client, no verification. */
export function kamailioTlsConfig({ certFile, keyFile }) {
  return `# written by e2e/lib/kamailio.mjs
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = ${keyFile}
certificate = ${certFile}

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
`;
}

/** The config file text for the given ports (template substitution). */
export function kamailioConfig({ port, wsPort = 0, tlsPort = 0, tlsCfg = '', debug = 2 }) {
  return fs
    .readFileSync(KAMAILIO_CFG_TEMPLATE, 'utf8')
    .replaceAll('@@SIP_PORT@@', String(port))
    .replaceAll('@@WS_PORT@@', String(wsPort))
    .replaceAll('@@TLS_PORT@@', String(tlsPort))
    .replaceAll('@@TLS_CFG@@', tlsCfg)
    .replaceAll('@@DEBUG@@', String(debug));
}

/**
 * Start a private Kamailio. Options:
 *   port       UDP and TCP SIP port (default: a free one)
 *   websocket  also Kamailio's own WebSocket listener (default false)
 *   wsPort     its port (default: a free one)
 *   tls        also a SIP-over-TLS listener with a test CA's certificate (default false)
 *   tlsPort    its port (default: a free one)
 *   debug      Kamailio debug level (default 2 = info: one line per request/reply)
 *   dir        working dir (default: a fresh temp dir, removed by stop())
 *   startTimeoutMs  (default 15 s)
 * Returns { port, wsPort, wsUrl, tlsPort, caFile, domain, coreUri(transport),
 *   dir, configFile, pid, log(), alive(), stop() }; coreUri('tls') names the
 *   TLS port. stop() is idempotent and never throws.
 */
export async function startKamailio({
  port,
  websocket = false,
  wsPort,
  tls = false,
  tlsPort,
  debug = 2,
  dir,
  startTimeoutMs = 15_000,
  keepDir = !!process.env.E2E_KEEP_TMP,
} = {}) {
  if (!fs.existsSync(KAMAILIO_BIN)) {
    throw new Error(`${KAMAILIO_BIN} not found: run scripts/install-deps (Debian package kamailio)`);
  }
  const ownDir = !dir;
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'ucgate-kamailio-'));
  let child = null;
  let exited = Promise.resolve();
  let killOnExit = null;
  let stopped = false;
  let out = null; // the running child's output (capture)
  const output = () => (out ? out.text() : '');
  const alive = () => !!child && child.exitCode === null && child.signalCode === null;

  async function stop() {
    if (stopped) return;
    stopped = true;
    if (killOnExit) process.removeListener('exit', killOnExit);
    if (alive()) {
      child.kill('SIGTERM');
      try {
        await withTimeout(exited, 5_000, 'kamailio exit after SIGTERM');
      } catch {
        console.error(`[e2e] kamailio (pid ${child.pid}) ignored SIGTERM for 5 s, sending SIGKILL`);
        child.kill('SIGKILL');
        await withTimeout(exited, 5_000, 'kamailio exit after SIGKILL').catch(() => {});
      }
    }
    if (ownDir) {
      if (keepDir) console.error(`[e2e] keeping the Kamailio dir ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  try {
    port ??= await freeUdpTcpPort();
    if (websocket && wsPort == null) {
      do wsPort = await freePort();
      while (wsPort === port);
    }
    let tlsCfg = '';
    let certs = null;
    if (tls) {
      if (tlsPort == null) {
        do tlsPort = await freePort();
        while (tlsPort === port || tlsPort === wsPort);
      }
      certs = await makeSipTestCA(path.join(dir, 'tls'));
      tlsCfg = path.join(dir, 'tls.cfg');
      fs.writeFileSync(tlsCfg, kamailioTlsConfig(certs));
    }
    const configFile = path.join(dir, 'kamailio.cfg');
    fs.writeFileSync(configFile, kamailioConfig({ port, wsPort: wsPort ?? 0, tlsPort: tlsPort ?? 0, tlsCfg, debug }));
    const args = ['-f', configFile, '-DD', '-E', '-m', '64', '-M', '8', '-Y', dir, '-w', dir];
    if (websocket) args.push('-A', 'WITH_WEBSOCKET');
    if (tls) args.push('-A', 'WITH_TLS');

    child = spawn(KAMAILIO_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    out = capture(child, LOG_LIMIT);
    exited = out.exited;
    // Never leave a Kamailio behind, even if the test process dies abruptly
    // (the workers exit when the main process dies).
    killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);

    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (out.error()) throw new Error(`cannot run ${KAMAILIO_BIN}: ${out.error().message}`);
      if (!alive()) {
        await sleep(100); // let the log complete
        throw new Error(
          `kamailio exited (code ${child.exitCode}, signal ${child.signalCode}) during start-up\n` +
            `--- ${KAMAILIO_BIN} ${args.join(' ')}\n${output()}`,
        );
      }
      const status = await sipOptionsUdp(port, 500);
      if (
        status &&
        (await portAccepts(port)) &&
        (!websocket || (await portAccepts(wsPort))) &&
        (!tls || (await portAccepts(tlsPort)))
      ) {
        break;
      }
      if (Date.now() > deadline) {
        throw new Error(`kamailio did not answer on 127.0.0.1:${port} within ${startTimeoutMs} ms\n${output()}`);
      }
      await sleep(100);
    }

    return {
      port,
      wsPort: websocket ? wsPort : null,
      wsUrl: websocket ? `ws://127.0.0.1:${wsPort}/` : null,
      tlsPort: tls ? tlsPort : null,
      caFile: certs?.caFile ?? null,
      domain: SIP_DOMAIN,
      coreUri: (transport = 'udp') => {
        if (transport === 'tls' && !tls) throw new Error('coreUri("tls"): Kamailio was started without tls: true');
        return `sip:127.0.0.1:${transport === 'tls' ? tlsPort : port};transport=${transport}`;
      },
      dir,
      configFile,
      pid: child.pid,
      log: output,
      alive,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
