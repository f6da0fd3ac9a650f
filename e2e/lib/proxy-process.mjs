// What the reverse-proxy helpers (haproxy.mjs, nginx.mjs) share: the example
// configurations of config/proxies/ filled in (only their @PLACEHOLDER@
// ports and paths change), and a foreground proxy process that is waited
// for on its port and always stopped.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, withTimeout } from './harness.mjs';

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

function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Spawn `bin args` in the foreground and wait until 127.0.0.1:`port`
 * accepts. Returns { pid, log(), stop() }; stop() is idempotent (SIGTERM,
 * SIGKILL after 5 s). A process that exits early fails the start with its
 * output.
 */
export async function startProcess({ name, bin, args, port, startTimeoutMs = 10_000 }) {
  if (!fs.existsSync(bin)) throw new Error(`${bin} not found: run scripts/install-deps (Debian package ${name})`);
  let output = '';
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const append = (chunk) => {
    output += chunk;
    if (output.length > LOG_LIMIT) output = output.slice(-LOG_LIMIT);
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  let spawnError = null;
  child.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    try {
      await withTimeout(exited, 5_000, `${name} exit after SIGTERM`);
    } catch {
      child.kill('SIGKILL');
      await withTimeout(exited, 5_000, `${name} exit after SIGKILL`).catch(() => {});
    }
  };
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (spawnError || child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`${name} did not start (${spawnError?.message ?? `exit ${child.exitCode}`}):\n${output}`);
    }
    if (await portAccepts(port)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${startTimeoutMs} ms:\n${output}`);
    }
    await sleep(50);
  }
  return { pid: child.pid, log: () => output, stop };
}
