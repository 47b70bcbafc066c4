/** The stack's containers get exactly the privileges the spec lists, and nothing else. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stackAddresses } from '../../src/core/stack/addresses';
import { engineCapabilities, stackContainerSpecs } from '../../src/core/stack/containerSpecs';
import { stackNames } from '../../src/core/stack/stackNames';

const addresses = stackAddresses('192.168.215.0/24', '192.168.215.1');
assert.ok(!('error' in addresses));
const specs = stackContainerSpecs('clawker-net', addresses, { envoy: 'e', coredns: 'c', controlplane: 'p' }, { volumes: stackNames('clawker').volumes });
const byName = Object.fromEntries(specs.map((s) => [s.name, s]));

test('each component sits at its fixed address on clawker-net', () => {
  assert.equal(byName['clawker-envoy']!.NetworkingConfig.EndpointsConfig['clawker-net']!.IPAMConfig.IPv4Address, '192.168.215.200');
  assert.equal(byName['clawker-coredns']!.NetworkingConfig.EndpointsConfig['clawker-net']!.IPAMConfig.IPv4Address, '192.168.215.201');
  assert.equal(byName['clawker-controlplane']!.NetworkingConfig.EndpointsConfig['clawker-net']!.IPAMConfig.IPv4Address, '192.168.215.202');
});

test('every container drops all capabilities, cannot gain privileges, has a read-only root and our labels', () => {
  for (const s of specs) {
    assert.deepEqual(s.HostConfig.CapDrop, ['ALL'], s.name);
    assert.ok(s.HostConfig.SecurityOpt.includes('no-new-privileges:true'), s.name);
    assert.equal(s.HostConfig.ReadonlyRootfs, true, s.name);
    assert.equal(s.Labels['dev.clawker.managed'], 'true', s.name);
  }
});

test('Envoy has no capability and no mount but its configuration volume, read-only (not the CA key)', () => {
  const envoy = byName['clawker-envoy']!;
  assert.deepEqual(envoy.HostConfig.CapAdd, []);
  assert.deepEqual(envoy.HostConfig.Binds, ['clawker-envoy-config:/etc/envoy/clawker:ro']);
});

test('CoreDNS: CAP_BPF + CAP_SYS_ADMIN (and port 53), only /sys/fs/bpf from the host', () => {
  const coredns = byName['clawker-coredns']!;
  assert.deepEqual([...coredns.HostConfig.CapAdd].sort(), ['BPF', 'NET_BIND_SERVICE', 'SYS_ADMIN']);
  assert.deepEqual(coredns.HostConfig.Binds, ['/sys/fs/bpf:/sys/fs/bpf', 'clawker-coredns-config:/etc/coredns:ro']);
  assert.ok(!coredns.HostConfig.SecurityOpt.some((o) => o.startsWith('apparmor')));
});

test('control plane: CAP_BPF + CAP_SYS_ADMIN, bpffs rw, cgroupfs ro, the Docker socket, apparmor=unconfined', () => {
  const cp = byName['clawker-controlplane']!;
  assert.deepEqual([...cp.HostConfig.CapAdd].sort(), ['BPF', 'SYS_ADMIN']);
  assert.deepEqual(
    [...cp.HostConfig.Binds].sort(),
    [
      '/sys/fs/bpf:/sys/fs/bpf:rw',
      '/sys/fs/cgroup:/sys/fs/cgroup:ro',
      '/var/run/docker.sock:/var/run/docker.sock',
      'clawker-controlplane-state:/var/lib/clawker',
      'clawker-envoy-config:/var/lib/clawker/firewall/stack/envoy',
      'clawker-coredns-config:/var/lib/clawker/firewall/stack/coredns',
    ].sort(),
  );
  assert.ok(cp.HostConfig.SecurityOpt.includes('apparmor=unconfined'));
});

test("no stack container mounts a path of the user's host: only volumes and the engine host's bpffs, cgroupfs and socket", () => {
  const engineHost = new Set(['/sys/fs/bpf', '/sys/fs/cgroup', '/var/run/docker.sock']);
  for (const s of specs) {
    for (const bind of s.HostConfig.Binds) {
      const source = bind.split(':')[0]!;
      assert.ok(!source.startsWith('/') || engineHost.has(source), `${s.name}: ${bind}`);
    }
  }
});

test("control plane: a rootless engine's own socket is what it mounts, always at /var/run/docker.sock inside", () => {
  const rootless = stackContainerSpecs('clawker-net', addresses, { envoy: 'e', coredns: 'c', controlplane: 'p' }, { volumes: stackNames('clawker').volumes, engineSocket: '/run/user/1000/docker.sock' });
  const cp = rootless.find((x) => x.name === 'clawker-controlplane')!;
  assert.ok(cp.HostConfig.Binds.includes('/run/user/1000/docker.sock:/var/run/docker.sock'), cp.HostConfig.Binds.join(' '));
  assert.ok(!cp.HostConfig.Binds.some((b) => b.startsWith('/var/run/docker.sock')));
});

test('no container is privileged or shares the host network', () => {
  for (const s of specs) {
    assert.equal((s.HostConfig as { Privileged?: boolean }).Privileged, undefined, s.name);
    assert.equal(s.HostConfig.NetworkMode, 'clawker-net', s.name);
  }
});

test('on an engine that does not know CAP_BPF, the BPF users get CAP_SYS_ADMIN alone, never more', () => {
  assert.deepEqual(engineCapabilities('1.41'), { knowsCapBpf: false });
  assert.deepEqual(engineCapabilities('1.43'), { knowsCapBpf: true });
  const old = stackContainerSpecs('clawker-net', addresses, { envoy: 'e', coredns: 'c', controlplane: 'p' }, { volumes: stackNames('clawker').volumes }, engineCapabilities('1.41'));
  assert.deepEqual(old.find((s) => s.name === 'clawker-controlplane')!.HostConfig.CapAdd, ['SYS_ADMIN']);
  assert.deepEqual([...old.find((s) => s.name === 'clawker-coredns')!.HostConfig.CapAdd].sort(), ['NET_BIND_SERVICE', 'SYS_ADMIN']);
});

test('only the control plane is given host.docker.internal (the host-gateway it tells the datapath); Envoy and CoreDNS are not', () => {
  assert.deepEqual(byName['clawker-controlplane']!.HostConfig.ExtraHosts, ['host.docker.internal:host-gateway']);
  assert.equal(byName['clawker-envoy']!.HostConfig.ExtraHosts, undefined);
  assert.equal(byName['clawker-coredns']!.HostConfig.ExtraHosts, undefined);
});
