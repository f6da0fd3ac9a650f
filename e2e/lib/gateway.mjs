// Run the ucgate binary on a given configuration for an end-to-end test:
// spawn `$UCGATE_BIN run --config FILE`, keep its log, wait for /ready on the
// admin port, stop it with SIGTERM (SIGKILL after 5 s). Same behaviour as the
// gateway start in tests/h2-websocket.test.mjs, reusable by other tests.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, waitReady, withTimeout } from './harness.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
export const UCGATE_BIN = path.resolve(process.env.UCGATE_BIN ?? path.resolve(__dirname, '../../target/debug/ucgate'));
const LOG_LIMIT = 1 << 20;

/** A TOML basic string (JSON strings are valid TOML basic strings). */
export const toml = (s) => JSON.stringify(String(s));

export function checkConfig(configPath) {
  return new Promise((resolve) => {
    execFile(UCGATE_BIN, ['check-config', configPath], { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve(`exit ${err ? (err.code ?? err.signal) : 0}\n${stdout}${stderr}`),
    );
  });
}

/**
 * Write `config` to `dir`/ucgate.toml, start the gateway and wait until
 * `http://adminHost:adminPort/ready` answers 200 (`adminHost` defaults to
 * 127.0.0.1: the address of `admin.listen`). Returns
 * { log(), waitLog(re), alive(), abortCheck(), close() }; on a failed start the gateway is
 * already stopped and the error carries the config, log and check-config.
 */
export async function startGateway({ dir, config, adminPort, adminHost = '127.0.0.1', readyTimeoutMs = 15_000 }) {
  if (!fs.existsSync(UCGATE_BIN)) {
    throw new Error(`gateway binary ${UCGATE_BIN} not found: build it (cargo build) or set UCGATE_BIN`);
  }
  const configPath = path.join(dir, 'ucgate.toml');
  fs.writeFileSync(configPath, config);

  const child = spawn(UCGATE_BIN, ['run', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_LOG: 'info', ...process.env },
  });
  const out = capture(child, LOG_LIMIT);
  const { exited } = out;
  const log = out.text;
  const stdioClosed = new Promise((resolve) => child.once('close', resolve));
  // Never leave a gateway behind, even if the test process dies abruptly.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const alive = () => !out.error() && child.exitCode === null && child.signalCode === null;

  const gw = {
    configPath,
    pid: child.pid,
    log,
    /**
     * The log once it matches `re` (lines reach it through the gateway's
     * log thread and this process's pipe: not at once, least of all on a
     * loaded machine), or as it is after `ms`.
     */
    async waitLog(re, ms = 5_000) {
      const deadline = Date.now() + ms;
      while (!re.test(log()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return log();
    },
    alive,
    async abortCheck() {
      if (out.error()) throw new Error(`cannot run ${UCGATE_BIN}: ${out.error().message}`);
      if (!alive()) {
        await withTimeout(stdioClosed, 2_000, 'gateway stdio').catch(() => {}); // complete the log
        throw new Error(
          `gateway exited (code ${child.exitCode}, signal ${child.signalCode}).\n` +
            `--- config ${configPath}:\n${fs.readFileSync(configPath, 'utf8')}--- log:\n${log()}\n` +
            `--- ucgate check-config:\n${await checkConfig(configPath)}`,
        );
      }
    },
    /**
     * SIGTERM, then SIGKILL if the gateway has not exited within
     * `timeoutMs` (longer than shutdown_delay + drain_timeout for a full
     * drain). Resolves with how it exited ({ code, signal }).
     */
    async close({ timeoutMs = 5_000 } = {}) {
      process.removeListener('exit', killOnExit);
      if (!alive()) return exited;
      child.kill('SIGTERM');
      try {
        return await withTimeout(exited, timeoutMs, 'gateway exit after SIGTERM');
      } catch {
        console.error(`[e2e] gateway ignored SIGTERM for ${timeoutMs} ms, sending SIGKILL`);
        child.kill('SIGKILL');
        return await withTimeout(exited, 5_000, 'gateway exit after SIGKILL');
      }
    },
  };

  try {
    await waitReady(`http://${adminHost}:${adminPort}/ready`, { timeoutMs: readyTimeoutMs, abortCheck: gw.abortCheck });
  } catch (e) {
    await gw.close().catch(() => {});
    if (!e.message.includes('--- log:')) e.message += `\n--- gateway log:\n${log()}`;
    throw e;
  }
  return gw;
}
