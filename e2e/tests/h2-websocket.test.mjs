// End-to-end: WebSockets over HTTP/2 (RFC 8441 extended CONNECT) from a real
// headless Chromium through the ucgate binary to a TCP echo backend.
//
//   UCGATE_BIN=/path/to/ucgate npm test      (default: <repo>/target/debug/ucgate)
//
// The gateway gets a throwaway self-signed certificate, a main listener and an
// admin listener on free loopback ports, and two routes: /echo (allows the
// page's origin) and /echo-strict (allows only https://other.example).

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withTimeout } from '../lib/harness.mjs';
import { checkEchoOverH2, checkOriginRefused, setupEnv, step } from '../lib/scenario.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
const UCGATE_BIN = path.resolve(process.env.UCGATE_BIN ?? path.resolve(__dirname, '../../target/debug/ucgate'));
const WEBSOCKETS = 5;
const LOG_LIMIT = 1 << 20;

const toml = (s) => JSON.stringify(String(s)); // JSON strings are valid TOML basic strings

function gatewayConfig({ port, adminPort, cert, key, echoPort }) {
  return `# written by e2e/tests/h2-websocket.test.mjs
[server]
listen = ${toml(`127.0.0.1:${port}`)}
[[server.tls.certificate]]
cert = ${toml(cert)}
key = ${toml(key)}

[admin]
listen = ${toml(`127.0.0.1:${adminPort}`)}

[[route]]
path = "/echo"
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}
origins = [${toml(`https://localhost:${port}`)}]
max_message_size = "128KiB"

[[route]]
path = "/echo-strict"
kind = "tcp"
backend = ${toml(`127.0.0.1:${echoPort}`)}
origins = ["https://other.example"]
`;
}

function checkConfig(configPath) {
  return new Promise((resolve) => {
    execFile(UCGATE_BIN, ['check-config', configPath], { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve(`exit ${err ? (err.code ?? err.signal) : 0}\n${stdout}${stderr}`),
    );
  });
}

async function startGateway({ dir, port, adminPort, cert, key, echoPort }) {
  if (!fs.existsSync(UCGATE_BIN)) {
    throw new Error(`gateway binary ${UCGATE_BIN} not found: build it (cargo build) or set UCGATE_BIN`);
  }
  const configPath = path.join(dir, 'ucgate.toml');
  fs.writeFileSync(configPath, gatewayConfig({ port, adminPort, cert, key, echoPort }));

  let log = '';
  const append = (chunk) => {
    log += chunk;
    if (log.length > LOG_LIMIT) log = log.slice(-LOG_LIMIT);
  };
  const child = spawn(UCGATE_BIN, ['run', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_LOG: 'info', ...process.env },
  });
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  let spawnError = null;
  child.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const stdioClosed = new Promise((resolve) => child.once('close', resolve));
  // Never leave a gateway behind, even if the test process dies abruptly.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  return {
    log: () => log,
    async abortCheck() {
      if (spawnError) throw new Error(`cannot run ${UCGATE_BIN}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        await withTimeout(stdioClosed, 2_000, 'gateway stdio').catch(() => {}); // complete the log
        throw new Error(
          `gateway exited (code ${child.exitCode}, signal ${child.signalCode}) before becoming ready.\n` +
            `--- config ${configPath}:\n${fs.readFileSync(configPath, 'utf8')}--- log:\n${log}\n` +
            `--- ucgate check-config:\n${await checkConfig(configPath)}`,
        );
      }
    },
    async close() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null || spawnError) return;
      child.kill('SIGTERM');
      try {
        await withTimeout(exited, 5_000, 'gateway exit after SIGTERM');
      } catch {
        console.error('[e2e] gateway ignored SIGTERM for 5 s, sending SIGKILL');
        child.kill('SIGKILL');
        await withTimeout(exited, 5_000, 'gateway exit after SIGKILL');
      }
    },
  };
}

describe(`WebSockets over HTTP/2 through ucgate (${UCGATE_BIN})`, { timeout: 180_000 }, () => {
  let env;
  before(async () => {
    env = await setupEnv({ startServer: startGateway });
  }, { timeout: 90_000 });
  after(async () => {
    await env?.cleanup();
  }, { timeout: 60_000 });

  it(`${WEBSOCKETS} WebSockets echo text and binary over HTTP/2 on one TCP connection`, async () => {
    await step(env, (e) => checkEchoOverH2(e, { count: WEBSOCKETS }));
  });

  it('a route whose origins exclude the page origin refuses the WebSocket', async () => {
    await step(env, checkOriginRefused);
  });
});
