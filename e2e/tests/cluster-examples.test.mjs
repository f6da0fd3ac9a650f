// The cluster examples of docs/cluster.md, checked without running a
// cluster (e2e/tests/cluster.test.mjs runs the balancers):
//
//  * docs/cluster.md shows config/cluster/haproxy-http.cfg, haproxy-tcp.cfg
//    and nginx-cluster.conf as they are (every directive, in order);
//  * contrib/kubernetes/ucgate.yaml parses (Debian's python3-yaml), its
//    ucgate.toml rendered for a pod the way the pod's command renders it
//    passes `ucgate check-config` (and its placeholder secret does not),
//    the peer Services sit at the addresses [cluster.peers] names, the
//    probes ask the admin listener, and the grace period covers preStop +
//    shutdown_delay + drain_timeout.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/cluster-examples.test.mjs

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { checkConfig } from '../lib/gateway.mjs';
import { makeTempDir } from '../lib/harness.mjs';

const execFileP = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PYTHON = process.env.PYTHON3_BIN ?? '/usr/bin/python3';
const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');

/** The lines of `text` that are neither blank nor comments, trimmed. */
const directives = (text) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

/** Seconds in a ucgate duration such as "2s", "500ms", "1m". */
function seconds(d) {
  const m = /^(\d+)(ms|s|m)$/.exec(d);
  assert.ok(m, `a duration: ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
}

/** A TOML key's string value in `text` (first occurrence). */
function tomlString(text, key) {
  const m = new RegExp(`^${key.replace(/[.]/g, '\\.')}\\s*=\\s*"([^"]*)"`, 'm').exec(text);
  assert.ok(m, `${key} in the configuration`);
  return m[1];
}

describe('cluster examples (docs/cluster.md, config/cluster/, contrib/kubernetes/)', { timeout: 60_000 }, () => {
  it('docs/cluster.md shows each balancer example as it is', () => {
    const doc = directives(read('docs/cluster.md'));
    for (const file of ['haproxy-http.cfg', 'haproxy-tcp.cfg', 'nginx-cluster.conf']) {
      let at = 0;
      for (const line of directives(read(`config/cluster/${file}`))) {
        const found = doc.indexOf(line, at);
        assert.notEqual(found, -1, `docs/cluster.md lacks (in order) this line of config/cluster/${file}: ${line}`);
        at = found + 1;
      }
    }
  });

  it('contrib/kubernetes/ucgate.yaml: its configuration passes check-config, probes and grace period fit the drain', { timeout: 30_000 }, async () => {
    assert.ok(fs.existsSync(PYTHON), `${PYTHON} not found: run scripts/install-deps`);
    const docs = await parseYaml(read('contrib/kubernetes/ucgate.yaml'));
    const kind = (k) => docs.filter((d) => d.kind === k);
    const [sts] = kind('StatefulSet');
    const [cm] = kind('ConfigMap');
    assert.ok(sts && cm, `a StatefulSet and a ConfigMap: ${docs.map((d) => d.kind)}`);
    const template = cm.data['ucgate.toml.in'];
    const pod = sts.spec.template.spec;
    const [c] = pod.containers;

    // The headless Service that governs the StatefulSet.
    const headless = kind('Service').find((s) => s.metadata.name === sts.spec.serviceName);
    assert.equal(headless?.spec.clusterIP, 'None', 'the governing Service is headless');

    // [cluster.peers]: every pod, at the address of the Service selecting it.
    const peers = Object.fromEntries(
      [...template.split('[cluster.peers]')[1].matchAll(/^(\S+)\s*=\s*"([^"]+)"/gm)].map((m) => [m[1], m[2]]),
    );
    const names = Array.from({ length: sts.spec.replicas }, (_, i) => `${sts.metadata.name}-${i}`);
    assert.deepEqual(Object.keys(peers), names, 'one peer line per pod');
    const clusterPort = tomlString(template.split('[cluster]')[1], 'listen').split(':').pop();
    for (const n of names) {
      const svc = kind('Service').find((s) => s.spec.selector?.['statefulset.kubernetes.io/pod-name'] === n);
      assert.ok(svc, `a Service for pod ${n}`);
      assert.equal(peers[n], `${svc.spec.clusterIP}:${svc.spec.ports[0].port}`, `${n}'s peer address is its Service's`);
      assert.equal(String(svc.spec.ports[0].port), clusterPort);
    }

    // The pod's command, run here on the ConfigMap's file for pod -1 (paths
    // moved to a temporary directory; the final exec checked, not run).
    const dir = makeTempDir('ucgate-e2e-k8s-');
    try {
      const script = c.args[0];
      const lines = script.trim().split('\n');
      assert.equal(lines.at(-1), 'exec /usr/bin/ucgate run --config /run/ucgate/ucgate.toml');
      const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.name, m.mountPath]));
      assert.equal(mounts.run, '/run/ucgate');
      fs.mkdirSync(path.join(dir, 'etc'));
      fs.mkdirSync(path.join(dir, 'run'));
      fs.writeFileSync(path.join(dir, 'etc', 'ucgate.toml.in'), template);
      const local = lines
        .slice(0, -1)
        .join('\n')
        .split(`${mounts.config}/`)
        .join(`${dir}/etc/`)
        .split('/run/ucgate/')
        .join(`${dir}/run/`);
      const pod1 = names[1];
      await execFileP('/bin/sh', ['-c', local], { env: { ...process.env, POD_NAME: pod1 }, timeout: 10_000 });
      let rendered = fs.readFileSync(path.join(dir, 'run', 'ucgate.toml'), 'utf8');
      assert.equal(tomlString(rendered, 'node'), pod1);
      assert.ok(!new RegExp(`^${pod1} =`, 'm').test(rendered), 'the pod is not its own peer');
      const secretFile = tomlString(rendered, 'secret_file');
      assert.equal(path.dirname(secretFile), mounts['cluster-secret']);
      const [secret] = kind('Secret');
      assert.ok(path.basename(secretFile) in secret.stringData, 'the Secret holds the key secret_file names');
      rendered = rendered.split(secretFile).join(path.join(dir, 'secret'));
      fs.writeFileSync(path.join(dir, 'ucgate.toml'), rendered);
      fs.writeFileSync(path.join(dir, 'secret'), `${'k'.repeat(64)}\n`);
      const ok = await checkConfig(path.join(dir, 'ucgate.toml'));
      assert.match(ok, /^exit 0\n/, ok);
      fs.writeFileSync(path.join(dir, 'secret'), secret.stringData[path.basename(secretFile)]);
      const placeholder = await checkConfig(path.join(dir, 'ucgate.toml'));
      assert.match(placeholder, /^exit 1\n[\s\S]*too short/, `the example's placeholder secret is refused: ${placeholder}`);

      // Probes on the admin listener.
      const adminPort = Number(tomlString(rendered.split('[admin]')[1], 'listen').split(':').pop());
      const port = (name) => c.ports.find((p) => p.name === name)?.containerPort;
      assert.equal(port(c.readinessProbe.httpGet.port), adminPort);
      assert.equal(c.readinessProbe.httpGet.path, '/ready');
      assert.equal(port(c.livenessProbe.httpGet.port), adminPort);
      assert.equal(c.livenessProbe.httpGet.path, '/live');

      // The grace period covers preStop, the shutdown delay and the drain.
      const preStop = c.lifecycle.preStop.exec.command;
      assert.equal(preStop[0], 'sleep');
      const server = rendered.split('[server]')[1].split('\n[')[0];
      const needed = Number(preStop[1]) + seconds(tomlString(server, 'shutdown_delay')) + seconds(tomlString(server, 'drain_timeout'));
      assert.ok(
        pod.terminationGracePeriodSeconds > needed,
        `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} > preStop + shutdown_delay + drain_timeout = ${needed}`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The YAML documents of `text`, via Debian's python3-yaml. */
async function parseYaml(text) {
  const child = execFile(
    PYTHON,
    ['-c', 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)'],
    { timeout: 10_000 },
  );
  const out = new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`python3-yaml could not parse it (exit ${code}):\n${stderr}`)),
    );
  });
  child.stdin.end(text);
  return JSON.parse(await out);
}
