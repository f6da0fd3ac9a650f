// Debian's nginx in front of the gateway, run from the documented example
// config/proxies/nginx-ucgate.conf (TLS, WebSocket and BOSH proxy with
// X-Forwarded-*), included as is in a minimal main configuration of its own
// (foreground, one process, every file in a temporary directory, so that no
// root-owned path or system service is involved).
//
//   const n = await startNginx({ dir, port, ucgate: '127.0.0.1:5380', cert, key });
//   await n.stop();

import fs from 'node:fs';
import path from 'node:path';
import { renderExample, renderTemplate, runCheck, startProcess } from './proxy-process.mjs';

export const NGINX_BIN = process.env.NGINX_BIN ?? '/usr/sbin/nginx';
export const NGINX_EXAMPLE = 'nginx-ucgate.conf';

/**
 * nginx on 127.0.0.1:`port` with config/proxies/nginx-ucgate.conf in front
 * of `ucgate` (TLS with `cert` and `key`), or with the site template file
 * `template` filled in with `vars` (`LISTEN` is set), each in its own
 * directory under `dir`.
 */
export async function startNginx({ dir, port, ucgate, cert, key, template, vars }) {
  const name = template ? path.basename(template, path.extname(template)) : 'nginx';
  const prefix = path.join(dir, name);
  fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  const site = path.join(prefix, template ? path.basename(template) : NGINX_EXAMPLE);
  const listen = `127.0.0.1:${port}`;
  fs.writeFileSync(
    site,
    template
      ? renderTemplate(template, { LISTEN: listen, ...vars })
      : renderExample(NGINX_EXAMPLE, { LISTEN: listen, UCGATE: ucgate, CERT: cert, KEY: key }),
  );
  const main = path.join(prefix, 'nginx.conf');
  const tmp = (name) => `${name} ${JSON.stringify(path.join(prefix, name.replace(/_path$/, '')))};`;
  fs.writeFileSync(
    main,
    [
      '# written by e2e/lib/nginx.mjs around the example it includes',
      'daemon off;',
      'master_process off;',
      `pid ${JSON.stringify(path.join(prefix, 'nginx.pid'))};`,
      `error_log ${JSON.stringify(path.join(prefix, 'logs', 'error.log'))} info;`,
      'events { worker_connections 1024; }',
      'http {',
      `  access_log ${JSON.stringify(path.join(prefix, 'logs', 'access.log'))};`,
      `  ${tmp('client_body_temp_path')}`,
      `  ${tmp('proxy_temp_path')}`,
      `  ${tmp('fastcgi_temp_path')}`,
      `  ${tmp('uwsgi_temp_path')}`,
      `  ${tmp('scgi_temp_path')}`,
      `  include ${JSON.stringify(site)};`,
      '}',
      '',
    ].join('\n'),
  );
  const args = ['-p', prefix, '-c', main];
  await runCheck(NGINX_BIN, ['-t', ...args]);
  const p = await startProcess({ name: 'nginx', bin: NGINX_BIN, args, port });
  const log = () => {
    const read = (f) => {
      try {
        return fs.readFileSync(path.join(prefix, 'logs', f), 'utf8');
      } catch {
        return '';
      }
    };
    return `${p.log()}--- error.log:\n${read('error.log')}--- access.log:\n${read('access.log')}`;
  };
  return { ...p, log, configFile: site, url: (scheme, route) => `${scheme}://127.0.0.1:${port}${route}` };
}
