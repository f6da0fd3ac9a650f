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

import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { freePorts, makeCert, sleep } from './harness.mjs';
import { startProcess } from './proxy-process.mjs';

export const PEBBLE = process.env.PEBBLE_BIN ?? '/usr/bin/pebble';
export const CHALLTESTSRV = process.env.PEBBLE_CHALLTESTSRV_BIN ?? '/usr/bin/pebble-challtestsrv';

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
  const dns = await startProcess({
    name: 'pebble-challtestsrv',
    bin: CHALLTESTSRV,
    args: [
      '-dns01', `127.0.0.1:${dnsPort}`,
      '-management', `127.0.0.1:${dnsMgmtPort}`,
      '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-defaultIPv4', '127.0.0.1',
      '-defaultIPv6', '',
    ],
    port: dnsMgmtPort,
  });
  let pebble;
  try {
    pebble = await startProcess({
      name: 'pebble',
      bin: PEBBLE,
      args: ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'],
      port: acmePort,
      env: { PEBBLE_VA_NOSLEEP: '1', PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0' },
    });
  } catch (e) {
    await dns.stop();
    throw e;
  }
  const ca = fs.readFileSync(cert, 'utf8');
  const directory = `https://127.0.0.1:${acmePort}/dir`;
  const handle = {
    directory,
    caFile: cert,
    log: () => `--- pebble:\n${pebble.log()}\n--- pebble-challtestsrv:\n${dns.log()}`,
    root: async () => (await httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, ca)).body,
    intermediate: async () => (await httpsGet(`https://127.0.0.1:${mgmtPort}/intermediates/0`, ca)).body,
    async close() {
      await pebble.stop();
      await dns.stop();
    },
  };
  const deadline = Date.now() + 15_000;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      if (!dns.alive() || !pebble.alive()) throw new Error('pebble or pebble-challtestsrv exited');
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
