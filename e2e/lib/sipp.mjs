// SIPp (Debian package sip-tester, /usr/bin/sipp) for the SIP end-to-end
// tests: run one of the scenarios in e2e/sipp/ over UDP against a core, one
// call (-m 1), bounded by SIPp's own -timeout and a kill timer, with its
// message trace kept for the failure message. Verified with SIPp 3.6.1.
//
//   const r = await runSipp({ scenario: 'uac-message.xml', remote: `127.0.0.1:${k.port}`,
//                             service: 'alice', keys: { body: 'hello' } });
//   // r = { code, ok, output, messages }
//
//   const uas = startSipp({ scenario: 'uas-call.xml', port });  // waits for a call
//   ...; const r = await uas.done;

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeUdpTcpPort } from './kamailio.mjs';

const __dirname = path.dirname(fileURLToPath(import.meta.url));
export const SIPP_BIN = process.env.SIPP_BIN ?? '/usr/bin/sipp';
export const SIPP_DIR = path.resolve(__dirname, '../sipp');

/**
 * Start SIPp. Options: scenario (file in e2e/sipp/), remote ('127.0.0.1:PORT',
 * for a UAC), port (local port, default any), service (-s), keys ({ k: v } →
 * -key k v), transport ('u1' = UDP), timeoutS (default 15).
 * Returns { port, done: Promise<{ code, ok, output, messages }>, kill() }.
 */
export function startSipp({ scenario, remote, port = 0, service, keys = {}, transport = 'u1', timeoutS = 15 }) {
  if (!fs.existsSync(SIPP_BIN)) throw new Error(`${SIPP_BIN} not found: run scripts/install-deps (Debian package sip-tester)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ucgate-sipp-'));
  const messageFile = path.join(dir, 'messages.log');
  const errorFile = path.join(dir, 'errors.log');
  const args = [
    '-sf', path.join(SIPP_DIR, scenario),
    '-i', '127.0.0.1',
    '-t', transport,
    '-m', '1',
    '-nostdin',
    '-timeout', `${timeoutS}s`,
    '-timeout_error',
    '-trace_msg', '-message_file', messageFile,
    '-trace_err', '-error_file', errorFile,
  ];
  if (port) args.push('-p', String(port));
  if (service) args.push('-s', service);
  for (const [k, v] of Object.entries(keys)) args.push('-key', k, String(v));
  if (remote) args.push(remote);
  const child = spawn(SIPP_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (c) => {
    output += c;
    if (output.length > 200_000) output = output.slice(-200_000);
  };
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const hardKill = setTimeout(() => child.kill('SIGKILL'), (timeoutS + 5) * 1000);
  const done = new Promise((resolve) => {
    child.once('error', (e) => {
      output += `\nspawn error: ${e.message}`;
    });
    child.once('close', (code, signal) => {
      clearTimeout(hardKill);
      process.removeListener('exit', killOnExit);
      const read = (f) => {
        try {
          return fs.readFileSync(f, 'utf8');
        } catch {
          return '';
        }
      };
      const messages = read(messageFile);
      const errors = read(errorFile);
      if (!process.env.E2E_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
      resolve({
        code: code ?? signal,
        ok: code === 0,
        output: `sipp ${args.join(' ')}\n--- exit ${code ?? signal}\n--- errors:\n${errors}\n--- messages:\n${messages}`,
        messages,
      });
    });
  });
  return {
    port,
    done,
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/** Run a UAC scenario to its end (local port: a free one unless given). */
export async function runSipp(opts) {
  const port = opts.port || (await freeUdpTcpPort());
  return startSipp({ ...opts, port }).done;
}
