// A private ejabberd (Debian's `ejabberd` package, 23.01) for the XMPP
// end-to-end tests: config/pairing/ejabberd.yml filled in (free loopback
// ports, a test CA's certificate), its own Mnesia spool, log dir and Erlang
// node in a temp dir, c2s with `starttls_required: true`, s2s on a free
// port, users registered with `ejabberdctl register`. Stopped with
// `ejabberdctl stop`, then by killing its process group, always.
//
//   const e = await startEjabberd({ domain: 'ejabberd.test' }); // { port, caFile, users, stop() }
//   ... e.users.alice.password ...
//   await e.stop();
//
// How it runs (verified with ejabberd 23.01, Erlang/OTP 25, Debian bookworm):
//  * Everything goes through /usr/sbin/ejabberdctl with --config-dir (its
//    inetrc and vm.args are looked up there), --config, --ctl-config,
//    --spool and --logs pointing into the temp dir.
//  * The ejabberdctl.cfg written here sets a node name unique to the run
//    and ERL_DIST_PORT: the node then listens for Erlang distribution on
//    that (free, loopback) port with `-start_epmd false`, and ejabberdctl's
//    own client nodes connect straight to it. No epmd is started, so none
//    is left behind. The cookie is set with -setcookie (no ~/.erlang.cookie).
//  * ejabberdctl runs only as root (it then switches to the `ejabberd`
//    user with su) or as `ejabberd`. As root the harness spawns it as the
//    ejabberd user directly (uid/gid), with the temp dir handed to that
//    user, so the process tree is ours: `ejabberdctl foreground` is the
//    leader of its own process group, which stop() kills if
//    `ejabberdctl stop` did not end it.

import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { capture, freePorts, portAccepts, sleep, withTimeout } from './harness.mjs';
import { makeTestCA } from './prosody.mjs';
import { renderTemplate } from './proxy-process.mjs';

const execFileP = promisify(execFile);
const __dirname = path.dirname(fileURLToPath(import.meta.url));

export const EJABBERDCTL_BIN = process.env.EJABBERDCTL_BIN ?? '/usr/sbin/ejabberdctl';
export const EJABBERD_TEMPLATE = path.resolve(__dirname, '../../config/pairing/ejabberd.yml');
const EJABBERD_USER = 'ejabberd';
const LOG_LIMIT = 1 << 20;

const DEFAULT_USERS = {
  alice: 'alice-Pa55-word',
  bob: 'bob-Pa55-word',
};

/** uid and gid of the `ejabberd` user when we are root, else null (run as ourselves). */
async function runAs() {
  if (process.getuid() !== 0) {
    const { stdout } = await execFileP('id', ['-un']);
    if (stdout.trim() !== EJABBERD_USER) {
      throw new Error(`${EJABBERDCTL_BIN} runs only as root or as the ${EJABBERD_USER} user; the tests run as ${stdout.trim()}`);
    }
    return null;
  }
  const [uid, gid] = await Promise.all(
    ['-u', '-g'].map(async (flag) => Number((await execFileP('id', [flag, EJABBERD_USER])).stdout.trim())),
  );
  return { uid, gid };
}

function chownTree(dir, { uid, gid }) {
  fs.chownSync(dir, uid, gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(p, { uid, gid });
    else fs.chownSync(p, uid, gid);
  }
}

/** A double-quoted shell string for ejabberdctl.cfg (sourced by sh). */
const shq = (s) => `"${String(s).replace(/["\\$`]/g, '\\$&')}"`;

/**
 * Start a private ejabberd. Options:
 *   domain     its one host (default 'ejabberd.test')
 *   users      { name: password } registered (default alice, bob)
 *   port, s2sPort  c2s and s2s ports (default: free ones)
 *   s2sOutPort the port ejabberd dials for other servers' domains
 *              (`outgoing_s2s_port`; their names resolve through the
 *              node's inetrc: 'localhost' is 127.0.0.1). Default: its own
 *              s2s port (no peer).
 *   startTimeoutMs  (default 20 s)
 *   logLevel   ejabberd's `loglevel` (default 'info')
 *   keepDir    keep the temp dir after stop() (default: E2E_KEEP_TMP set)
 * Returns { domain, port, s2sPort, caFile, certFile, keyFile, users, dir,
 *   configFile, node, log(), ctl([args], ms), stop() }. `users` maps each name
 *   to { username, password, jid }. stop() is idempotent and never throws.
 */
export async function startEjabberd({
  domain = 'ejabberd.test',
  users = DEFAULT_USERS,
  port,
  s2sPort,
  s2sOutPort,
  startTimeoutMs = 20_000,
  logLevel = 'info',
  keepDir = !!process.env.E2E_KEEP_TMP,
} = {}) {
  if (!fs.existsSync(EJABBERDCTL_BIN)) {
    throw new Error(`${EJABBERDCTL_BIN} not found: run scripts/install-deps (Debian package ejabberd)`);
  }
  const owner = await runAs();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ucgate-ejabberd-'));
  const node = `ucgate-e2e-${crypto.randomBytes(4).toString('hex')}@localhost`;
  const cookie = crypto.randomBytes(16).toString('hex');
  const spool = path.join(dir, 'spool');
  const logs = path.join(dir, 'logs');
  const configFile = path.join(dir, 'ejabberd.yml');
  const ctlConfig = path.join(dir, 'ejabberdctl.cfg');
  const ctlArgs = ['--config-dir', dir, '--config', configFile, '--ctl-config', ctlConfig, '--spool', spool, '--logs', logs];
  const spawnOpts = { cwd: dir, env: { ...process.env, HOME: dir }, ...(owner ?? {}) };

  let child = null;
  let exited = Promise.resolve();
  let killOnExit = null;
  let stopped = false;
  let out = null; // the running child's output (capture)

  const readLog = () => {
    let text = '';
    for (const name of ['ejabberd.log', 'error.log']) {
      try {
        text += `--- ${name}:\n${fs.readFileSync(path.join(logs, name), 'utf8')}\n`;
      } catch {
        /* not yet written */
      }
    }
    const output = out ? out.text() : '';
    if (output) text += `--- ejabberdctl foreground stdout/stderr:\n${output}`;
    return text.length > LOG_LIMIT ? text.slice(-LOG_LIMIT) : text;
  };

  /** `ejabberdctl ARGS` against this node; resolves with its output, rejects with it. */
  const ctl = async (args, timeoutMs = 15_000) => {
    try {
      const { stdout, stderr } = await execFileP(EJABBERDCTL_BIN, [...ctlArgs, ...args], {
        ...spawnOpts,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      });
      return `${stdout}${stderr}`;
    } catch (e) {
      throw new Error(
        `ejabberdctl ${args.join(' ')} failed (${e.killed ? `killed after ${timeoutMs} ms` : `exit ${e.code ?? e.signal}`}):\n` +
          `${e.stdout ?? ''}${e.stderr ?? ''}`,
      );
    }
  };

  const running = () => child && child.exitCode === null && child.signalCode === null;
  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      /* already gone */
    }
  };

  async function stop() {
    if (stopped) return;
    stopped = true;
    if (killOnExit) process.removeListener('exit', killOnExit);
    if (running()) {
      await ctl(['stop'], 10_000).catch((e) => console.error(`[e2e] ${e.message}`));
      try {
        await withTimeout(exited, 10_000, 'ejabberd exit after ejabberdctl stop');
      } catch {
        console.error(`[e2e] ejabberd (group ${child.pid}) still running 10 s after ejabberdctl stop: SIGKILL`);
      }
    }
    // Whatever is left of the group (Erlang port programs such as memsup, inet_gethost).
    if (child) killGroup('SIGKILL');
    await withTimeout(exited, 5_000, 'ejabberd exit after SIGKILL').catch(() => {});
    if (keepDir) console.error(`[e2e] keeping the ejabberd dir ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }

  try {
    const certs = await makeTestCA(path.join(dir, 'certs'), [domain]);
    const taken = new Set([port, s2sPort, s2sOutPort]);
    const [distPort, ...spare] = (await freePorts(6)).filter((p) => !taken.has(p));
    port ??= spare[0];
    s2sPort ??= spare[1];
    fs.mkdirSync(spool);
    fs.mkdirSync(logs);
    fs.writeFileSync(
      configFile,
      `# written by e2e/lib/ejabberd.mjs from config/pairing/ejabberd.yml\n${renderTemplate(EJABBERD_TEMPLATE, {
        DOMAIN: domain,
        LOG_LEVEL: logLevel,
        CERT_FILE: certs.certFile,
        KEY_FILE: certs.keyFile,
        C2S_PORT: port,
        S2S_PORT: s2sPort,
        S2S_OUT_PORT: s2sOutPort ?? s2sPort,
      })}`,
    );
    fs.writeFileSync(
      ctlConfig,
      [
        '# written by e2e/lib/ejabberd.mjs: a throwaway node, no epmd',
        `ERLANG_NODE=${shq(node)}`,
        `ERL_DIST_PORT=${distPort}`,
        'INET_DIST_INTERFACE=127.0.0.1',
        `ERL_OPTIONS=${shq(`-setcookie ${cookie} -env ERL_CRASH_DUMP_BYTES 0`)}`,
        `EJABBERD_PID_PATH=${shq(path.join(dir, 'ejabberd.pid'))}`,
        `CONTRIB_MODULES_PATH=${shq(path.join(dir, 'modules'))}`,
        '',
      ].join('\n'),
    );
    // Erlang's resolver: the hosts file only, so that s2s toward `localhost`
    // goes to 127.0.0.1 and nothing waits for a DNS server.
    fs.writeFileSync(path.join(dir, 'inetrc'), '{lookup, [file]}.\n{host, {127,0,0,1}, ["localhost"]}.\n');
    if (owner) chownTree(dir, owner);

    child = spawn(EJABBERDCTL_BIN, [...ctlArgs, 'foreground'], {
      ...spawnOpts,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: stop() can end every process in it
    });
    out = capture(child, LOG_LIMIT);
    exited = out.exited;
    // Never leave an ejabberd behind, even if the test process dies abruptly.
    killOnExit = () => killGroup('SIGKILL');
    process.once('exit', killOnExit);

    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (out.error()) throw new Error(`cannot run ${EJABBERDCTL_BIN}: ${out.error().message}`);
      if (!running()) {
        throw new Error(`ejabberd exited (code ${child.exitCode}, signal ${child.signalCode}) during start-up\n${readLog()}`);
      }
      if ((await portAccepts(port)) && (await portAccepts(s2sPort))) break;
      if (Date.now() > deadline) {
        throw new Error(`ejabberd did not listen on 127.0.0.1:${port} (c2s) within ${startTimeoutMs} ms\n${readLog()}`);
      }
      await sleep(100);
    }

    const registered = {};
    for (const [name, password] of Object.entries(users)) {
      await ctl(['register', name, domain, password]);
      registered[name] = { username: name, password, jid: `${name}@${domain}` };
    }

    return {
      domain,
      port,
      s2sPort,
      users: registered,
      caFile: certs.caFile,
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      dir,
      configFile,
      node,
      pid: child.pid,
      log: readLog,
      ctl,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
