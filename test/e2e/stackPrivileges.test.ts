/**
 * The stack's container specs on the real engine: the kernel grants each container exactly the
 * capabilities the spec lists (read from /proc/1/status), and the mounts are what they say.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { type EngineCapabilities, engineCapabilities, stackContainerSpecs } from '../../src/core/stack/containerSpecs';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensureFirewallNetwork } from '../../src/platform/docker/firewallNetwork';
import { BASE_IMAGE, requireTestbed } from './testbed';

const docker = new Docker();
const NETWORK = `clawker-e2e-stack-${process.pid}`;
const volumes = stackNames(`e2e-privileges-${process.pid}`).volumes;
const started: string[] = [];

// Linux capability numbers (include/uapi/linux/capability.h).
const CAP = { NET_BIND_SERVICE: 10, SYS_ADMIN: 21, BPF: 39 } as const;
const bits = (...caps: number[]): bigint => caps.reduce((m, c) => m | (1n << BigInt(c)), 0n);

let engine: EngineCapabilities;
before(async () => {
  await requireTestbed();
  engine = engineCapabilities((await docker.version()).ApiVersion);
});
after(async () => {
  for (const id of started) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  await docker.getNetwork(NETWORK).remove().catch(() => undefined);
  for (const v of Object.values(volumes) as string[]) await docker.getVolume(v).remove().catch(() => undefined);
});

async function runSpec(name: string): Promise<{ capEff: bigint; mounts: Docker.ContainerInspectInfo['Mounts'] }> {
  const net = await ensureFirewallNetwork(docker, NETWORK);
  const spec = stackContainerSpecs(NETWORK, net, { envoy: BASE_IMAGE, coredns: BASE_IMAGE, controlplane: BASE_IMAGE }, { volumes }, engine).find((s) => s.name === name)!;
  const { name: _name, ...options } = spec;
  const container = await docker.createContainer({ ...options, name: `${name}-e2e-${process.pid}`, Cmd: ['sleep', '60'], Entrypoint: [] });
  started.push(container.id);
  await container.start();
  const exec = await container.exec({ Cmd: ['cat', '/proc/1/status'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const output = await new Promise<string>((resolve) => {
    let text = '';
    stream.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    stream.on('end', () => resolve(text));
  });
  const capEff = /CapEff:\s*([0-9a-f]+)/.exec(output)?.[1];
  assert.ok(capEff, `no CapEff in /proc/1/status:\n${output}`);
  return { capEff: BigInt(`0x${capEff}`), mounts: (await container.inspect()).Mounts };
}

test('Envoy runs with no capability at all', async () => {
  assert.equal((await runSpec('clawker-envoy')).capEff, 0n);
});

test('CoreDNS runs with exactly CAP_BPF (where the engine knows it), CAP_SYS_ADMIN and CAP_NET_BIND_SERVICE, and /sys/fs/bpf mounted', async () => {
  const { capEff, mounts } = await runSpec('clawker-coredns');
  assert.equal(capEff, engine.knowsCapBpf ? bits(CAP.BPF, CAP.SYS_ADMIN, CAP.NET_BIND_SERVICE) : bits(CAP.SYS_ADMIN, CAP.NET_BIND_SERVICE));
  assert.ok(mounts.some((m) => m.Destination === '/sys/fs/bpf' && m.RW));
});

test('the control plane runs with exactly CAP_BPF (where the engine knows it) and CAP_SYS_ADMIN; cgroupfs read-only, bpffs read-write', async () => {
  const { capEff, mounts } = await runSpec('clawker-controlplane');
  assert.equal(capEff, engine.knowsCapBpf ? bits(CAP.BPF, CAP.SYS_ADMIN) : bits(CAP.SYS_ADMIN));
  assert.ok(mounts.some((m) => m.Destination === '/sys/fs/cgroup' && !m.RW));
  assert.ok(mounts.some((m) => m.Destination === '/sys/fs/bpf' && m.RW));
  assert.ok(mounts.some((m) => m.Destination === '/var/run/docker.sock'));
  // Its state and the rendered configurations are Docker volumes, never a host directory.
  assert.deepEqual(mounts.filter((m) => m.Type === 'bind').map((m) => m.Source).sort(), ['/sys/fs/bpf', '/sys/fs/cgroup', '/var/run/docker.sock']);
  assert.deepEqual(mounts.filter((m) => m.Type === 'volume').map((m) => m.Name).sort(), Object.values(volumes).sort());
});
