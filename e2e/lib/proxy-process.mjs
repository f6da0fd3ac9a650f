// What the reverse-proxy helpers (haproxy.mjs, nginx.mjs) share: the example
// configurations of config/proxies/ filled in (only their @PLACEHOLDER@
// ports and paths change), and a foreground proxy process that is waited
// for on its port and always stopped.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, portAccepts, sleep, withTimeout } from './harness.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
export const EXAMPLES_DIR = path.resolve(__dirname, '../../config/proxies');
const LOG_LIMIT = 1 << 20;

/**
 * The example `name` from config/proxies/ with every `@KEY@` replaced by
 * `vars[KEY]`; throws if a placeholder is left or a variable is unused.
 */
export function renderExample(name, vars) {
  return renderTemplate(path.join(EXAMPLES_DIR, name), vars);
}

/**
 * The file `file` with every `@KEY@` replaced by `vars[KEY]`; throws if a
 * placeholder outside a comment (`#`, `--`) is left or a variable is unused.
 */
export function renderTemplate(file, vars) {
  const name = path.basename(file);
  let text = fs.readFileSync(file, 'utf8');
  for (const [k, v] of Object.entries(vars)) {
    const token = `@${k}@`;
    if (!text.includes(token)) throw new Error(`${name} has no ${token}`);
    text = text.split(token).join(String(v));
  }
  const left = /@[A-Z_]+@/.exec(text.replace(/^\s*(#|--).*$/gm, ''));
  if (left) throw new Error(`${name}: ${left[0]} not given`);
  return text;
}

/** Run `bin args` to completion (a config check); rejects with its output. */
export function runCheck(bin, args, ms = 10_000) {
  return new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: ms }, (err, stdout, stderr) =>
      err ? reject(new Error(`${bin} ${args.join(' ')} failed:\n${stdout}${stderr}`)) : resolve(`${stdout}${stderr}`),
    );
  });
}

/**
 * Spawn `bin args` (with `env` added to the environment) in the foreground
 * and wait until 127.0.0.1:`port` accepts. Returns { pid, log(), alive(),
 * stop() }; stop() is idempotent (SIGTERM, SIGKILL after 5 s). A process
 * that exits early fails the start with its output.
 */
export async function startProcess({ name, bin, args, port, env = {}, startTimeoutMs = 10_000 }) {
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run scripts/install-deps (Debian package ${name})`);
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const out = capture(child, LOG_LIMIT);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const alive = () => !out.error() && child.exitCode === null && child.signalCode === null;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (!alive()) return;
    child.kill('SIGTERM');
    try {
      await withTimeout(out.exited, 5_000, `${name} exit after SIGTERM`);
    } catch {
      child.kill('SIGKILL');
      await withTimeout(out.exited, 5_000, `${name} exit after SIGKILL`).catch(() => {});
    }
  };
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (!alive()) {
      await stop();
      throw new Error(`${name} did not start (${out.error()?.message ?? `exit ${child.exitCode}`}):\n${out.text()}`);
    }
    if (await portAccepts(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${startTimeoutMs} ms:\n${out.text()}`);
    }
    await sleep(50);
  }
  return { pid: child.pid, log: out.text, alive, stop };
}
