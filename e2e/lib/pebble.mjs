// Debian's pebble (Let's Encrypt's ACME test CA) on loopback for the ACME
// end-to-end test, with pebble-challtestsrv as its DNS server so that any
// name resolves to 127.0.0.1.
//
// Pebble's validation authority connects to a domain's `tlsPort` for
// TLS-ALPN-01; the config points it at the gateway's listener port. Pebble
// serves its ACME directory over HTTPS with the certificate given in its
// config: a throwaway self-signed one for 127.0.0.1 (makeCert), which the
// gateway trusts through `server.acme.ca_file`. Pebble makes a new root and
// intermediate at every start; roots() and intermediates() fetch them from
// the management port.
//
//   PEBBLE_VA_NOSLEEP=1        validate at once (no random 0–15 s wait)
//   PEBBLE_VA_ALWAYS_VALID=0   really validate (connect to the gateway)
//   PEBBLE_WFE_NONCEREJECT=0   no random badNonce refusals (deterministic)

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePorts, makeCert, sleep, withTimeout } from './harness.mjs';

export const PEBBLE = process.env.PEBBLE_BIN ?? '/usr/bin/pebble';
export const CHALLTESTSRV = process.env.PEBBLE_CHALLTESTSRV_BIN ?? '/usr/bin/pebble-challtestsrv';
const LOG_LIMIT = 1 << 20;

function startProcess(name, bin, args, env) {
  let log = '';
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const append = (c) => {
    log += c;
    if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT);
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  let spawnError = null;
  child.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  return {
    log: () => log,
    check() {
      if (spawnError) throw new Error(`cannot run ${bin}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (code ${child.exitCode}, signal ${child.signalCode}):\n${log}`);
      }
    },
    async close() {
      process.removeListener('exit', killOnExit);
      if (spawnError || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      try {
        await withTimeout(exited, 3_000, `${name} exit`);
      } catch {
        child.kill('SIGKILL');
        await withTimeout(exited, 3_000, `${name} exit after SIGKILL`);
      }
    },
  };
}

/** GET over HTTPS, trusting only `ca` (a PEM string). */
function httpsGet(url, ca) {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Starts pebble-challtestsrv (DNS: every A query answers 127.0.0.1, no
 * AAAA) and pebble, validating TLS-ALPN-01 on `tlsPort`. Resolves once the
 * directory answers. Returns { directory, caFile, root(), intermediate(),
 * log(), close() }.
 */
export async function startPebble({ dir, tlsPort }) {
  for (const bin of [PEBBLE, CHALLTESTSRV]) {
    if (!fs.existsSync(bin)) throw new Error(`${bin} not found: apt-get install pebble (scripts/install-deps)`);
  }
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort, httpPort] = await freePorts(5);
  const { cert, key } = await makeCert(dir);
  const config = path.join(dir, 'pebble-config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: cert,
        privateKey: key,
        // HTTP-01 is not used (the gateway has no plain listener): a free
        // port nothing listens on.
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dns = startProcess('pebble-challtestsrv', CHALLTESTSRV, [
    '-dns01', `127.0.0.1:${dnsPort}`,
    '-management', `127.0.0.1:${dnsMgmtPort}`,
    '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-defaultIPv4', '127.0.0.1',
    '-defaultIPv6', '',
  ]);
  const pebble = startProcess('pebble', PEBBLE, ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_VA_ALWAYS_VALID: '0',
    PEBBLE_WFE_NONCEREJECT: '0',
  });
  const ca = fs.readFileSync(cert, 'utf8');
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const handle = {
    directory,
    caFile: cert,
    log: () => `--- pebble:\n${pebble.log()}\n--- pebble-challtestsrv:\n${dns.log()}`,
    root: async () => (await httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, ca)).body,
    intermediate: async () => (await httpsGet(`https://127.0.0.1:${mgmtPort}/intermediates/0`, ca)).body,
    async close() {
      await pebble.close();
      await dns.close();
    },
  };
  const deadline = Date.now() + 15_000;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      dns.check();
      pebble.check();
      const r = await httpsGet(directory, ca);
      if (r.status === 200 && r.body.includes('newOrder')) return handle;
      last = `HTTP ${r.status}`;
    } catch (e) {
      if (/exited|cannot run/.test(e.message)) {
        await handle.close();
        throw e;
      }
      last = e.message;
    }
    await sleep(100);
  }
  await handle.close();
  throw new Error(`pebble's directory ${directory} did not answer in 15 s (${last})\n${handle.log()}`);
}
