/**
 * Where agents reach the host (src/core/engine/hostGateway.ts): host.docker.internal read from an
 * /etc/hosts as Docker writes it, and where the host proxy listens for each kind of engine; and the
 * control plane's reading of its own hosts file into the datapath's one host address.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { readConfig } from '../../src/controlplane/config';
import { ControlPlane } from '../../src/controlplane/controlPlane';
import { HOST_GATEWAY_EXTRA_HOST, hostGatewayFromHosts, hostProxyListenAddress } from '../../src/core/engine/hostGateway';
import type { Bpfman } from '../../src/platform/bpf/bpfman';
import { isLocalAddress } from '../../src/platform/docker/hostGatewayProbe';

const dir = mkdtempSync(join(tmpdir(), 'clawker-hostgateway-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// What Docker 20.10 writes for a container created with ExtraHosts host.docker.internal:host-gateway.
const DOCKER_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n172.17.0.1\thost.docker.internal\n192.168.215.7\tabc123def456\n';

describe('host.docker.internal in /etc/hosts', () => {
  test("Docker's own file: the host-gateway address", () => {
    assert.equal(HOST_GATEWAY_EXTRA_HOST, 'host.docker.internal:host-gateway');
    assert.equal(hostGatewayFromHosts(DOCKER_HOSTS), '172.17.0.1');
  });

  test('the first IPv4 line naming it, among aliases, in any case; comments and IPv6 lines are not answers', () => {
    assert.equal(hostGatewayFromHosts('# 10.0.0.9 host.docker.internal\nfd00::1 host.docker.internal\n10.1.1.1 gw HOST.Docker.Internal # the host\n10.2.2.2 host.docker.internal\n'), '10.1.1.1');
    assert.equal(hostGatewayFromHosts('  192.168.65.254   host.docker.internal  \r\n'), '192.168.65.254');
  });

  test('none: no line, a near name, a bad address, an empty file', () => {
    for (const text of ['', '127.0.0.1 localhost\n', '10.0.0.1 host.docker.internal.evil\n', '10.0.0.1 xhost.docker.internal\n', '300.1.1.1 host.docker.internal\n', 'host.docker.internal 10.0.0.1\n']) {
      assert.equal(hostGatewayFromHosts(text), undefined, JSON.stringify(text));
    }
  });
});

describe('where the host proxy listens', () => {


  test('Docker Desktop, OrbStack, Colima: loopback, whatever their host-gateway is', () => {
    for (const kind of ['docker-desktop', 'orbstack', 'colima'] as const) {
      assert.deepEqual(hostProxyListenAddress({ kind, hostGateway: '192.168.65.254', hostGatewayIsLocal: false }), { address: '127.0.0.1' }, kind);
      assert.deepEqual(hostProxyListenAddress({ kind, hostGateway: undefined, hostGatewayIsLocal: false }), { address: '127.0.0.1' }, kind);
    }
  });

  test('a Linux or remote engine: its host-gateway, when that is an address of this machine', () => {
    assert.deepEqual(hostProxyListenAddress({ kind: 'linux-local', hostGateway: '172.17.0.1', hostGatewayIsLocal: true }), { address: '172.17.0.1' });
    assert.deepEqual(hostProxyListenAddress({ kind: 'remote', hostGateway: '10.0.2.15', hostGatewayIsLocal: true }), { address: '10.0.2.15' });
  });

  test('a host-gateway that is not this machine: refused, naming it and what to do', () => {
    const r = hostProxyListenAddress({ kind: 'remote', hostGateway: '172.18.0.1', hostGatewayIsLocal: false });
    assert.deepEqual(r, {
      what: "the engine's host-gateway (172.18.0.1, what host.docker.internal is in its containers) is not an address of this machine, so agents cannot reach a host proxy here",
      next: "start that engine's dockerd with --host-gateway-ip set to an address of this machine that it can route to, or set security.enable_host_proxy: false in .clawker.yaml (no git credentials or browser sign-in from agents)",
    });
  });

  test('no host-gateway at all: refused, with the engine version that has one', () => {
    const r = hostProxyListenAddress({ kind: 'linux-local', hostGateway: undefined, hostGatewayIsLocal: false });
    assert.ok('what' in r);
    assert.equal(r.what, 'the engine gives its containers no IPv4 address for host.docker.internal (host-gateway), so agents cannot reach the host proxy');
    assert.match(r.next, /^use Docker 20\.10 or later, or set security\.enable_host_proxy: false/);
  });
});

describe("the control plane's host-gateway", () => {
  const enrollConfig = (hostsText: string | undefined, port = '18374') => {
    const hostsFile = join(dir, `hosts-${Math.random().toString(16).slice(2)}`);
    if (hostsText !== undefined) writeFileSync(hostsFile, hostsText);
    const config = readConfig({ CLAWKER_DATA_DIR: join(dir, 'data'), CLAWKER_HOSTS_FILE: hostsFile, CLAWKER_HOST_PROXY_PORT: port });
    const warnings: string[] = [];
    const cp = new ControlPlane(config, {} as Docker, {} as Bpfman, { progress: () => undefined, warn: (m) => warnings.push(m), audit: () => undefined });
    const internals = cp as unknown as { addresses: object; hostGateway: string | undefined; readHostGateway(): string | undefined; containerConfig(flags?: string[]): unknown; status(): { network: { hostGateway?: string } } };
    internals.addresses = { subnet: '10.9.0.0/24', gateway: '10.9.0.1', envoy: '10.9.0.200', coredns: '10.9.0.201', controlplane: '10.9.0.202' };
    internals.hostGateway = internals.readHostGateway();
    return { enroll: internals.containerConfig(['lockdown']), warnings, status: internals.status().network };
  };
  const base = { envoy: '10.9.0.200', coredns: '10.9.0.201', gateway: '10.9.0.1', network: '10.9.0.0/24', flags: ['lockdown'] };

  test('enrolled with the host-gateway and the port, and status says where', () => {
    const r = enrollConfig(DOCKER_HOSTS);
    assert.deepEqual(r.enroll, { ...base, hostProxyAddress: '172.17.0.1', hostProxyPort: 18374 });
    assert.equal(r.status.hostGateway, '172.17.0.1');
    assert.deepEqual(r.warnings, []);
  });

  test('no host proxy in the datapath, with a warning, when the file is missing, has no entry, or names the gateway; none at port 0', () => {
    for (const [text, warning] of [
      [undefined, /unreadable \(ENOENT/],
      ['127.0.0.1 localhost\n', /has no IPv4 host\.docker\.internal/],
      ['10.9.0.1 host.docker.internal\n', /is the firewall network's gateway \(10\.9\.0\.1\), which agents may never reach/],
    ] as const) {
      const r = enrollConfig(text);
      assert.deepEqual(r.enroll, base, String(text));
      assert.equal(r.status.hostGateway, undefined);
      assert.equal(r.warnings.length, 1);
      assert.match(r.warnings[0]!, warning);
    }
    assert.deepEqual(enrollConfig(DOCKER_HOSTS, '0').enroll, base);
  });
});

describe("whether an address is this machine's (a socket binds to it)", () => {
  test('loopback is, a TEST-NET address is not', async () => {
    assert.equal(await isLocalAddress('127.0.0.1'), true);
    assert.equal(await isLocalAddress('192.0.2.1'), false);
  });
});
