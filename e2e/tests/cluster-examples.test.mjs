// The cluster examples of docs/cluster.md, checked without running a
// cluster (e2e/tests/cluster.test.mjs runs the balancers):
//
//  * docs/cluster.md shows config/cluster/haproxy-http.cfg, haproxy-tcp.cfg
//    and nginx-cluster.conf as they are (every directive, in order);
//  * contrib/kubernetes/ucgate.yaml parses (Debian's python3-yaml), the
//    pods run its ConfigMap's ucgate.toml, which passes `ucgate
//    check-config` (and its placeholder secret does not), its peers_srv
//    names the SRV records of the StatefulSet's headless Service, the
//    probes ask the admin listener, and the grace period covers preStop +
//    shutdown_delay + drain_timeout.
//
//   UCGATE_BIN=/path/to/ucgate node --test tests/cluster-examples.test.mjs

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { checkConfig } from '../lib/gateway.mjs';
import { makeTempDir } from '../lib/harness.mjs';

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
    const pod = sts.spec.template.spec;
    const [c] = pod.containers;

    // The container runs the ConfigMap's file.
    assert.deepEqual([...c.command, ...c.args], ['/usr/bin/ucgate', 'run', '--config', '/etc/ucgate/ucgate.toml']);
    const mount = c.volumeMounts.find((m) => m.mountPath === '/etc/ucgate');
    assert.equal(pod.volumes.find((v) => v.name === mount?.name)?.configMap?.name, cm.metadata.name);
    const config = cm.data['ucgate.toml'];
    assert.ok(config, 'the ConfigMap holds ucgate.toml');

    // Peers: the SRV records of the StatefulSet's headless Service, whose
    // port named `cluster` is cluster.listen's; each pod's node name is its
    // host name (the pod's name).
    const headless = kind('Service').find((s) => s.metadata.name === sts.spec.serviceName);
    assert.equal(headless?.spec.clusterIP, 'None', 'the governing Service is headless');
    const clusterPort = headless.spec.ports.find((p) => p.name === 'cluster')?.port;
    const cluster = config.split('[cluster]')[1];
    assert.equal(Number(tomlString(cluster, 'listen').split(':').pop()), clusterPort);
    assert.equal(
      tomlString(cluster, 'peers_srv'),
      `_cluster._tcp.${headless.metadata.name}.${headless.metadata.namespace}.svc.cluster.local`,
    );
    assert.equal(tomlString(cluster, 'node'), '@hostname');
    assert.ok(`${sts.metadata.name}-${sts.spec.replicas - 1}`.length <= 16, 'pod names are valid node names');

    const dir = makeTempDir('ucgate-e2e-k8s-');
    try {
      // check-config on the file as a pod reads it: this machine's host name
      // stands for no pod, so the pod's own name replaces "@hostname"; the
      // Secret's file is a temporary one.
      const secretFile = tomlString(cluster, 'secret_file');
      const secretMount = c.volumeMounts.find((m) => m.mountPath === path.dirname(secretFile));
      const [secret] = kind('Secret');
      assert.equal(pod.volumes.find((v) => v.name === secretMount?.name)?.secret?.secretName, secret.metadata.name);
      assert.ok(path.basename(secretFile) in secret.stringData, 'the Secret holds the key secret_file names');
      const rendered = config
        .split(secretFile)
        .join(path.join(dir, 'secret'))
        .replace('node = "@hostname"', `node = "${sts.metadata.name}-1"`);
      fs.writeFileSync(path.join(dir, 'ucgate.toml'), rendered);
      fs.writeFileSync(path.join(dir, 'secret'), `${'k'.repeat(64)}\n`);
      const ok = await checkConfig(path.join(dir, 'ucgate.toml'));
      assert.match(ok, /^exit 0\n/, ok);
      fs.writeFileSync(path.join(dir, 'secret'), secret.stringData[path.basename(secretFile)]);
      const placeholder = await checkConfig(path.join(dir, 'ucgate.toml'));
      assert.match(placeholder, /^exit 1\n[\s\S]*too short/, `the placeholder secret is refused: ${placeholder}`);

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
