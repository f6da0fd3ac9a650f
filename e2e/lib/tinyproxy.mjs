// A private forward proxy for the browser end-to-end tests: Debian's
// tinyproxy on a free 127.0.0.1 port, with a config and a log file written
// into the test's temp dir, run in the foreground (`-d`) and stopped by PID.
//
//   const tp = await startTinyproxy({ dir, connectPorts: [gatewayPort], bind: '127.0.0.9' });
//   ... chromium --proxy-server=tp.url ...
//   tp.connects()   // the targets of the CONNECTs tinyproxy logged ("127.0.0.1:PORT")
//   await tp.stop();
//
// Verified with tinyproxy 1.11.1 (Debian bookworm): `LogLevel Connect` logs
// each request line ("Request (file descriptor N): CONNECT host:port
// HTTP/1.1") and, once the upstream connection is made, "Established
// connection to host …"; `Bind` sets the source address of the upstream
// connections; `ConnectPort` limits CONNECT to the ports listed (403
// otherwise); `Filter` + `FilterDefaultDeny Yes` admit only the host names
// the filter file matches, for CONNECT and plain requests alike (403);
// `BasicAuth user password` answers 407 without the right
// Proxy-Authorization. As root without `User` it warns and keeps the
// current user.

import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './harness.mjs';
import { startProcess } from './proxy-process.mjs';

export const TINYPROXY_BIN = process.env.TINYPROXY_BIN ?? '/usr/bin/tinyproxy';

/**
 * Start tinyproxy. `connectPorts`: the only ports CONNECT may reach; `bind`:
 * the source address of its connections upstream; `auth`: { username,
 * password } for Basic proxy authentication. Returns { port, url, bind,
 * logFile, log(), connects(), stop() }.
 */
export async function startTinyproxy({ dir, connectPorts, bind = null, auth = null, name = 'tinyproxy' }) {
  const port = await freePort();
  const logFile = path.join(dir, `${name}.log`);
  const configFile = path.join(dir, `${name}.conf`);
  // Only 127.0.0.1 may be reached: Chromium's own background requests
  // (component updates, sign-in) get 403 here instead of leaving the machine
  // on a host that has a network.
  const filterFile = path.join(dir, `${name}.filter`);
  fs.writeFileSync(filterFile, '^127\\.0\\.0\\.1$\n');
  const lines = [
    '# written by e2e/lib/tinyproxy.mjs',
    `Port ${port}`,
    'Listen 127.0.0.1',
    ...(bind ? [`Bind ${bind}`] : []),
    'Timeout 30',
    `LogFile "${logFile}"`,
    'LogLevel Connect',
    'MaxClients 50',
    'Allow 127.0.0.1',
    // No Via header and no X-Tinyproxy header: only CONNECT is used anyway.
    'DisableViaHeader Yes',
    ...connectPorts.map((p) => `ConnectPort ${p}`),
    `Filter "${filterFile}"`,
    'FilterType ere',
    'FilterDefaultDeny Yes',
    ...(auth ? [`BasicAuth ${auth.username} ${auth.password}`] : []),
  ];
  fs.writeFileSync(configFile, `${lines.join('\n')}\n`);
  const proc = await startProcess({ name, bin: TINYPROXY_BIN, args: ['-d', '-c', configFile], port });
  const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    bind,
    logFile,
    log: () => `${log()}${proc.log()}`,
    /** The host:port of every CONNECT request tinyproxy logged, in order. */
    connects: () => [...log().matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP\/1\.[01]/g)].map((m) => m[1]),
    /** Every request line tinyproxy logged as "METHOD target", in order. */
    requests: () => [...log().matchAll(/Request \(file descriptor \d+\): (\S+) (\S+) HTTP\/1\.[01]/g)].map((m) => `${m[1]} ${m[2]}`),
    /** How many upstream connections tinyproxy made (after any authentication). */
    established: () => [...log().matchAll(/Established connection to host /g)].length,
    stop: proc.stop,
  };
}
