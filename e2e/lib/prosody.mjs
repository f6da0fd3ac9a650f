// A private Prosody (Debian's `prosody` package) for the XMPP end-to-end tests:
// its own config, data directory, log, pidfile and test CA in a temp dir, c2s
// on a free 127.0.0.1 port with TLS *required* (so every login proves that
// STARTTLS happened), no s2s (unless `s2s`), no HTTP (unless `bosh`), users
// registered with prosodyctl. With `pairing`, the config is
// config/pairing/prosody.cfg.lua, the documented example, filled in.
// Stopped by its PID, always.
//
//   const p = await startProsody();           // { port, caFile, domain, users, stop() }
//   ... p.users.alice.password ...
//   await p.stop();
//
//   const p = await startProsody({ bosh: true }); // + Prosody's own BOSH (XEP-0206)
//   ... p.boshUrl ...                         // http://127.0.0.1:HTTPPORT/http-bind
//
// The BOSH option exists to validate BOSH client harnesses (Strophe.js in
// node, Converse.js in Chromium) against a known-good connection manager
// before pointing them at ucgate. Plain HTTP on loopback, so the BOSH
// sessions are declared secure (`consider_bosh_secure`): c2s requires
// encryption, and Prosody would otherwise offer no SASL mechanism over BOSH.
//
// Verified with Prosody 0.12.3 (Debian bookworm): `prosody -F --config FILE`
// runs in the foreground; `prosodyctl --config FILE register USER HOST PASS`
// honours the config; as root both need `run_as_root = true` (prosodyctl
// would otherwise switch to the `prosody` user, which cannot read the temp
// dir, and mod_posix refuses to run as root).

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { capture, freePort, portAccepts } from './harness.mjs';
import { renderTemplate } from './proxy-process.mjs';

const execFileP = promisify(execFile);

export const PROSODY_BIN = process.env.PROSODY_BIN ?? '/usr/bin/prosody';
export const PROSODYCTL_BIN = process.env.PROSODYCTL_BIN ?? '/usr/bin/prosodyctl';
export const PAIRING_TEMPLATE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/pairing/prosody.cfg.lua');

const LOG_LIMIT = 1 << 20;

const DEFAULT_USERS = {
  alice: 'alice-Pa55-word',
  bob: 'bob-Pa55-word',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${message}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Lua string literal (long brackets would do too; this escapes what matters). */
const lua = (s) => `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

async function run(cmd, args, { timeoutMs = 15_000, env } = {}) {
  try {
    return await execFileP(cmd, args, { timeout: timeoutMs, killSignal: 'SIGKILL', env: env ?? process.env });
  } catch (e) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${e.killed ? `killed after ${timeoutMs} ms` : `exit ${e.code ?? e.signal}`}):\n` +
        `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
  }
}

/**
 * A test CA and a server certificate signed by it, for `names` (DNS SANs; the
 * first is also the CN), with the openssl CLI. P-256 keys, valid 2 days.
 * Returns { caFile, caKey, certFile, keyFile } (PEM paths in `dir`).
 */
export async function makeTestCA(dir, names = ['localhost']) {
  fs.mkdirSync(dir, { recursive: true });
  const caFile = path.join(dir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  const csr = path.join(dir, 'server.csr');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  const ext = path.join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  await run('openssl', [
    'req', '-x509', '-new', '-nodes', ...ec, '-days', '2',
    '-subj', '/O=ucgate e2e/CN=ucgate e2e test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', caKey, '-out', caFile,
  ]);
  await run('openssl', ['req', '-new', '-nodes', ...ec, '-subj', `/CN=${names[0]}`, '-keyout', keyFile, '-out', csr]);
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', ext, '-out', certFile,
  ]);
  return { caFile, caKey, certFile, keyFile };
}

/**
 * `prosodyctl cert generate DOMAIN`, every question answered with its
 * default (as an operator pressing Enter would): the key and the
 * self-signed certificate land in the config's data_path.
 */
function prosodyctlCertGenerate(configFile, domain) {
  return new Promise((resolve, reject) => {
    const child = spawn(PROSODYCTL_BIN, ['--config', configFile, 'cert', 'generate', domain], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`prosodyctl cert generate ${domain} failed (${code}):\n${out}`));
    });
    child.stdin.end('\n'.repeat(20));
  });
}

/**
 * Where the one s2s peer's domain is: an SRV record served by libunbound
 * itself (lua-unbound's `options` become ub_ctx_set_option calls; one
 * `local-data:` each, hence one peer), pointing at "localhost.", one of
 * libunbound's built-in local zones (127.0.0.1).
 */
function s2sPeerLines(s2s) {
  const peers = Object.entries(s2s?.peers ?? {});
  if (peers.length > 1) throw new Error('prosody: one s2s peer at most (one unbound local-data option)');
  if (!peers.length) return '';
  const [domain, port] = peers[0];
  const record = `_xmpp-server._tcp.${domain}. 60 IN SRV 0 0 ${Number(port)} localhost.`;
  return `-- The peer server's domain resolves to its s2s port on loopback.
unbound = { options = { ["local-data:"] = ${lua(record)} } }`;
}

/**
 * config/pairing/prosody.cfg.lua filled in, behind the test's own global
 * settings (paths, loopback, no IPv6, the s2s peer's address).
 */
export function pairingConfig({ dir, port, s2sPort, domain, certFile, keyFile, s2s = null, logLevel = 'debug' }) {
  return `-- written by e2e/lib/prosody.mjs: the test's own settings, then config/pairing/prosody.cfg.lua
run_as_root = true -- see prosodyConfig()
pidfile = ${lua(path.join(dir, 'prosody.pid'))}
data_path = ${lua(path.join(dir, 'data'))}
certificates = ${lua(path.join(dir, 'certs'))}
plugin_paths = {}
log = {
  { levels = { min = ${lua(logLevel)} }, to = "file", filename = ${lua(path.join(dir, 'prosody.log'))} };
}
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
s2s_direct_tls_ports = {}
component_ports = {}
use_ipv6 = false
${s2sPeerLines(s2s)}

${renderTemplate(PAIRING_TEMPLATE, { DOMAIN: domain, C2S_PORT: port, S2S_PORT: s2sPort, CERT_FILE: certFile, KEY_FILE: keyFile })}`;
}

export function prosodyConfig({ dir, port, domains, certFile, keyFile, logLevel = 'debug', httpPort = null, modules = [], s2s = null }) {
  const ssl = `{ certificate = ${lua(certFile)}; key = ${lua(keyFile)}; }`;
  const bosh = httpPort != null;
  return `-- written by e2e/lib/prosody.mjs: a throwaway Prosody for the tests
-- Tests may run as root (CI does): without this prosodyctl would switch to the
-- "prosody" user and mod_posix would refuse to start. Harmless otherwise.
run_as_root = true
-- (no "daemonize": 0.12 deprecates it; the test runs prosody -F, in the foreground)
pidfile = ${lua(path.join(dir, 'prosody.pid'))}
data_path = ${lua(path.join(dir, 'data'))}
certificates = ${lua(path.join(dir, 'certs'))}
plugin_paths = {}

log = {
  { levels = { min = ${lua(logLevel)} }, to = "file", filename = ${lua(path.join(dir, 'prosody.log'))} };
}

-- Only loopback, only c2s on the test's port (and s2s on its own, if asked).
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_interfaces = { "127.0.0.1" }
c2s_ports = { ${Number(port)} }
c2s_direct_tls_ports = {}
${
    s2s
      ? `s2s_ports = { ${Number(s2s.port)} }
s2s_interfaces = { "127.0.0.1" }
use_ipv6 = false`
      : 's2s_ports = {}'
  }
s2s_direct_tls_ports = {}
${s2sPeerLines(s2s)}
${
    bosh
      ? `-- Prosody's own BOSH (mod_bosh over mod_http) on a loopback HTTP port, for
-- validating BOSH client harnesses. Plain HTTP: declared secure on purpose.
http_ports = { ${Number(httpPort)} }
http_interfaces = { "127.0.0.1" }
http_default_host = ${lua(domains[0])}
consider_bosh_secure = true`
      : 'http_ports = {}'
  }
https_ports = {}
component_ports = {}

modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix";${bosh ? ' "bosh";' : ''}${s2s ? ' "dialback";' : ''}${modules.map((m) => ` ${lua(m)};`).join('')}
}
modules_disabled = { ${s2s ? '' : '"s2s"; '}"offline"; }

-- Every client login must go through TLS (for the gateway: its STARTTLS).
c2s_require_encryption = true
s2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"

ssl = ${ssl}

${domains.map((d) => `VirtualHost ${lua(d)}\n  ssl = ${ssl}\n`).join('\n')}`;
}

/**
 * Start a private Prosody. Options:
 *   domains   VirtualHosts (default ['localhost', 'example.test']); the first is `domain`
 *   users     { name: password } registered on every domain (default alice, bob)
 *   port      c2s port (default: a free one)
 *   bosh      also serve Prosody's own BOSH at http://127.0.0.1:HTTPPORT/http-bind
 *             (plain HTTP, `consider_bosh_secure`; default false)
 *   modules   extra modules_enabled entries (e.g. ['blocklist'])
 *   s2s       server-to-server on 127.0.0.1 (default null: no s2s at all):
 *             { port, peers: { 'ejabberd.test': PORT } } listens on `port`
 *             (STARTTLS required, dialback) and reaches the one peer domain
 *             at 127.0.0.1:PORT
 *   pairing   run config/pairing/prosody.cfg.lua (the example of docs/deploy.md)
 *             for the one domain instead of the generated config; s2s on
 *             `s2s.port` (default: a free port); not with bosh, modules,
 *             selfSigned (default false)
 *   selfSigned  Prosody's own self-signed certificate for the first domain,
 *             made by `prosodyctl cert generate` (CA:TRUE, as operators get
 *             it), instead of one from a test CA; `caFile` is then that
 *             certificate itself (default false)
 *   dir       working dir (default: a fresh temp dir, removed by stop())
 *   startTimeoutMs  (default 15 s)
 * Returns { port, caFile, certFile, keyFile, domain, domains, users, dir,
 *   configFile, logFile, pid, log(), stop() }, plus { httpPort, boshUrl }
 *   with `bosh` (null without). `users` maps each name to
 *   { username, password, jid }. stop() is idempotent and never throws.
 */
export async function startProsody({
  domains = ['localhost', 'example.test'],
  users = DEFAULT_USERS,
  port,
  bosh = false,
  modules = [],
  s2s = null,
  pairing = false,
  selfSigned = false,
  dir,
  startTimeoutMs = 15_000,
  keepDir = !!process.env.E2E_KEEP_TMP,
} = {}) {
  for (const bin of [PROSODY_BIN, PROSODYCTL_BIN]) {
    if (!fs.existsSync(bin)) {
      throw new Error(`${bin} not found: run scripts/install-deps (Debian package prosody)`);
    }
  }
  const ownDir = !dir;
  dir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'ucgate-prosody-'));
  let child = null;
  let exited = Promise.resolve();
  let killOnExit = null;
  let stopped = false;
  let out = null; // the running child's output (capture)

  const logFile = path.join(dir, 'prosody.log');
  const readLog = () => {
    let text = '';
    try {
      text = fs.readFileSync(logFile, 'utf8');
    } catch {
      /* not yet written */
    }
    const output = out ? out.text() : '';
    if (output) text += `\n--- prosody stdout/stderr:\n${output}`;
    return text.length > LOG_LIMIT ? text.slice(-LOG_LIMIT) : text;
  };

  async function stop() {
    if (stopped) return;
    stopped = true;
    if (killOnExit) process.removeListener('exit', killOnExit);
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      try {
        await withTimeout(exited, 5_000, 'prosody exit after SIGTERM');
      } catch {
        console.error(`[e2e] prosody (pid ${child.pid}) ignored SIGTERM for 5 s, sending SIGKILL`);
        child.kill('SIGKILL');
        await withTimeout(exited, 5_000, 'prosody exit after SIGKILL').catch(() => {});
      }
    }
    if (ownDir) {
      if (keepDir) console.error(`[e2e] keeping the Prosody dir ${dir}`);
      else fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  try {
    fs.mkdirSync(path.join(dir, 'data'), { recursive: true, mode: 0o750 });
    const certs = selfSigned
      ? {
          certFile: path.join(dir, 'data', `${domains[0]}.crt`),
          keyFile: path.join(dir, 'data', `${domains[0]}.key`),
        }
      : await makeTestCA(path.join(dir, 'certs'), domains);
    port ??= await freePort();
    let httpPort = null;
    if (bosh) {
      do httpPort = await freePort();
      while (httpPort === port);
    }
    const configFile = path.join(dir, 'prosody.cfg.lua');
    if (pairing) {
      if (bosh || selfSigned || modules.length || domains.length !== 1) {
        throw new Error('startProsody: pairing takes one domain and no bosh, modules or selfSigned');
      }
      let s2sPort = s2s?.port;
      while (s2sPort == null || s2sPort === port) s2sPort = await freePort();
      fs.writeFileSync(configFile, pairingConfig({ dir, port, s2sPort, domain: domains[0], s2s, ...certs }));
    } else {
      fs.writeFileSync(configFile, prosodyConfig({ dir, port, domains, httpPort, modules, s2s, ...certs }));
    }
    if (selfSigned) {
      fs.mkdirSync(path.join(dir, 'certs'), { recursive: true });
      await prosodyctlCertGenerate(configFile, domains[0]);
      // prosodyctl writes into the certificates directory when it exists
      // and is writable, else into data_path
      const inCerts = path.join(dir, 'certs', `${domains[0]}.crt`);
      if (fs.existsSync(inCerts)) {
        certs.certFile = inCerts;
        certs.keyFile = path.join(dir, 'certs', `${domains[0]}.key`);
        fs.writeFileSync(configFile, prosodyConfig({ dir, port, domains, httpPort, modules, s2s, ...certs }));
      }
      certs.caFile = certs.certFile;
    }

    // Fail early and clearly on a config Prosody does not accept.
    await run(PROSODYCTL_BIN, ['--config', configFile, 'check', 'config']).catch((e) => {
      throw new Error(`prosodyctl check config rejected ${configFile}:\n${e.message}`);
    });

    const registered = {};
    for (const domain of domains) {
      for (const [name, password] of Object.entries(users)) {
        await run(PROSODYCTL_BIN, ['--config', configFile, 'register', name, domain, password]);
      }
    }
    for (const [name, password] of Object.entries(users)) {
      registered[name] = { username: name, password, jid: `${name}@${domains[0]}` };
    }

    child = spawn(PROSODY_BIN, ['-F', '--config', configFile], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    out = capture(child, LOG_LIMIT);
    exited = out.exited;
    // Never leave a Prosody behind, even if the test process dies abruptly.
    killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);

    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (out.error()) throw new Error(`cannot run ${PROSODY_BIN}: ${out.error().message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `prosody exited (code ${child.exitCode}, signal ${child.signalCode}) during start-up\n${readLog()}`,
        );
      }
      if ((await portAccepts(port)) && (httpPort == null || (await portAccepts(httpPort)))) break;
      if (Date.now() > deadline) {
        const ports = httpPort == null ? `${port}` : `${port} (c2s) and ${httpPort} (http)`;
        throw new Error(`prosody did not listen on 127.0.0.1:${ports} within ${startTimeoutMs} ms\n${readLog()}`);
      }
      await sleep(100);
    }

    return {
      port,
      domain: domains[0],
      domains,
      users: registered,
      caFile: certs.caFile,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      httpPort,
      boshUrl: httpPort == null ? null : `http://127.0.0.1:${httpPort}/http-bind`,
      dir,
      configFile,
      logFile,
      pid: child.pid,
      log: readLog,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
