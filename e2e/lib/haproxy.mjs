// Debian's HAProxy in front of the gateway, run from the documented examples
// config/proxies/haproxy-tcp.cfg (TCP mode, PROXY protocol v2) and
// config/proxies/haproxy-http.cfg (HTTP mode, TLS, X-Forwarded-*), or from
// any other template (config/cluster/*.cfg: lib/cluster.mjs), in the
// foreground (-db) on a free loopback port.
//
//   const h = await startHaproxy({ dir, example: 'haproxy-tcp.cfg', port, ucgate: '127.0.0.1:5380' });
//   await h.stop();

import fs from 'node:fs';
import path from 'node:path';
import { renderExample, renderTemplate, runCheck, startProcess } from './proxy-process.mjs';

export const HAPROXY_BIN = process.env.HAPROXY_BIN ?? '/usr/sbin/haproxy';

/**
 * Start HAProxy with `example` listening on 127.0.0.1:`port`, forwarding to
 * `ucgate` (host:port). `pem` (certificate then key, one file) for the
 * examples that terminate TLS. The config is written to `dir` and checked
 * with `haproxy -c` first.
 */
export async function startHaproxy({ dir, example, port, ucgate, pem }) {
  const vars = { LISTEN: `127.0.0.1:${port}`, UCGATE: ucgate };
  if (pem) vars.PEM = pem;
  return runHaproxy({ file: path.join(dir, example), text: renderExample(example, vars), port });
}

/**
 * Start HAProxy with the template file `template` filled in with `vars`
 * (`LISTEN` is set to 127.0.0.1:`port`), written to `dir`.
 */
export async function startHaproxyTemplate({ dir, template, vars, port }) {
  const text = renderTemplate(template, { LISTEN: `127.0.0.1:${port}`, ...vars });
  return runHaproxy({ file: path.join(dir, path.basename(template)), text, port });
}

async function runHaproxy({ file, text, port }) {
  fs.writeFileSync(file, text);
  await runCheck(HAPROXY_BIN, ['-c', '-q', '-f', file]);
  const p = await startProcess({ name: 'haproxy', bin: HAPROXY_BIN, args: ['-db', '-f', file], port });
  return { ...p, configFile: file, url: (scheme, route) => `${scheme}://127.0.0.1:${port}${route}` };
}
