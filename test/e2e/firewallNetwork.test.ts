/** The firewall network on the real Docker engine: created once, labelled, addresses from its gateway. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Docker from 'dockerode';
import { ensureFirewallNetwork, FirewallNetworkError } from '../../src/platform/docker/firewallNetwork';
import { LABEL_MANAGED } from '../../src/core/stack/labels';
import { BASE_IMAGE, requireTestbed } from './testbed';

const docker = new Docker();
const NAME = `clawker-e2e-net-${process.pid}`;
const FOREIGN = `clawker-e2e-foreign-${process.pid}`;
const containers: string[] = [];

before(async () => {
  await requireTestbed();
});

after(async () => {
  for (const id of containers) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
  for (const name of [NAME, FOREIGN]) await docker.getNetwork(name).remove().catch(() => undefined);
});

test('creates the network with our label, and finds it again without recreating it', async () => {
  const first = await ensureFirewallNetwork(docker, NAME);
  assert.equal(first.created, true);
  const info = await docker.getNetwork(NAME).inspect();
  assert.equal(info.Labels?.[LABEL_MANAGED], 'true');
  const again = await ensureFirewallNetwork(docker, NAME);
  assert.equal(again.created, false);
  assert.equal(again.id, first.id);
  assert.equal(again.envoy, first.gateway.replace(/\.\d+$/, '.200'));
  assert.equal(again.coredns, first.gateway.replace(/\.\d+$/, '.201'));
});

test('a container can be placed at the Envoy address', async () => {
  const net = await ensureFirewallNetwork(docker, NAME);
  const container = await docker.createContainer({
    Image: BASE_IMAGE,
    Cmd: ['sleep', '30'],
    Labels: { 'dev.clawker.e2e.pid': String(process.pid) },
    HostConfig: { NetworkMode: NAME },
    NetworkingConfig: { EndpointsConfig: { [NAME]: { IPAMConfig: { IPv4Address: net.envoy } } } },
  });
  containers.push(container.id);
  await container.start();
  const info = await container.inspect();
  assert.equal(info.NetworkSettings.Networks[NAME]?.IPAddress, net.envoy);
});

test('a network of that name that Clawker did not create is refused, untouched', async () => {
  await docker.createNetwork({ Name: FOREIGN, Driver: 'bridge' });
  await assert.rejects(ensureFirewallNetwork(docker, FOREIGN), (e: unknown) => e instanceof FirewallNetworkError && /did not create; Clawker will not use or change it/.test(e.message));
  const info = await docker.getNetwork(FOREIGN).inspect();
  assert.equal(info.Labels?.[LABEL_MANAGED], undefined);
});
