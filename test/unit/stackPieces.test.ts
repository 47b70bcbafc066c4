/**
 * The pure pieces the control plane and the CLI share: durations, stack names, where Docker puts a
 * container's cgroup for each driver, the agent container spec, the control plane's environment.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSeconds, parseDuration } from '../../src/core/duration';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupDir, agentsCgroupParent, containerCgroupDir } from '../../src/core/stack/cgroupPaths';
import { stackNames } from '../../src/core/stack/stackNames';
import { readConfig } from '../../src/controlplane/config';
import { demuxLogFrames } from '../../src/platform/docker/containers';

test('durations: Go-style units add up; a bare number or nothing is refused with the expected form', () => {
  assert.deepEqual(parseDuration('5m'), { seconds: 300 });
  assert.deepEqual(parseDuration('1h30m'), { seconds: 5400 });
  assert.deepEqual(parseDuration('90s'), { seconds: 90 });
  assert.deepEqual(parseDuration('1.5m'), { seconds: 90 });
  for (const bad of ['5', '', 'm', '5 minutes', '-5m', '0s']) {
    const r = parseDuration(bad);
    assert.ok('error' in r, `${JSON.stringify(bad)} refused`);
  }
  assert.match((parseDuration('5') as { error: string }).error, /30s, 5m, 1h or 1h30m/);
  assert.equal(formatSeconds(5400), '1h30m');
  assert.equal(formatSeconds(59.6), '1m');
  assert.equal(formatSeconds(0), '0s');
});

test('stack names derive from one prefix; a prefix Docker or cgroups would mangle is refused', () => {
  const n = stackNames();
  assert.deepEqual([n.network, n.envoy, n.coredns, n.controlplane, n.agentsCgroup], ['clawker-net', 'clawker-envoy', 'clawker-coredns', 'clawker-controlplane', 'clawker-agents']);
  assert.equal(stackNames('clawker-e2e-42').network, 'clawker-e2e-42-net');
  for (const bad of ['', 'Clawker', '../x', 'a/b', 'x y', '-x']) assert.throws(() => stackNames(bad), /stack prefix/);
});

test('cgroup paths: cgroupfs nests under the parent path, systemd under nested slices and a docker-<id>.scope', () => {
  const id = 'a'.repeat(64);
  assert.equal(agentsCgroupParent('cgroupfs', 'clawker-agents'), '/clawker-agents');
  assert.equal(agentsCgroupParent('systemd', 'clawker-agents'), 'clawker-agents.slice');
  assert.equal(agentsCgroupDir('cgroupfs', 'clawker-agents'), 'clawker-agents');
  assert.equal(agentsCgroupDir('systemd', 'clawker-agents'), 'clawker.slice/clawker-agents.slice');
  assert.equal(containerCgroupDir('cgroupfs', id, '/clawker-agents'), `clawker-agents/${id}`);
  assert.equal(containerCgroupDir('cgroupfs', id, ''), `docker/${id}`);
  assert.equal(containerCgroupDir('systemd', id, 'clawker-agents.slice'), `clawker.slice/clawker-agents.slice/docker-${id}.scope`);
  assert.equal(containerCgroupDir('systemd', id, undefined), `system.slice/docker-${id}.scope`);
  assert.throws(() => containerCgroupDir('cgroupfs', '../../etc', ''), /not a full container id/);
});

test('an agent container: firewall network, CoreDNS only, the agents cgroup, only the supervisor\'s capabilities, no privilege gain, our labels', () => {
  const names = stackNames();
  const base = { stack: names, project: 'web', image: 'img', workspace: '/src/web', settings: { ...DEFAULT_PROJECT_SETTINGS, env: { A: '1' }, enableHostProxy: false } };
  const firewall = { enabled: true as const, corednsIp: '192.168.215.201', cgroupParent: '/clawker-agents' };
  const { name, create: spec } = agentContainerSpec({ ...base, agent: 'dev', firewall });
  assert.equal(name, 'clawker.web.dev');
  assert.equal(spec.HostConfig.NetworkMode, 'clawker-net');
  assert.deepEqual(spec.HostConfig.Dns, ['192.168.215.201']);
  assert.equal(spec.HostConfig.CgroupParent, '/clawker-agents');
  assert.deepEqual(spec.HostConfig.CapDrop, ['ALL']);
  assert.deepEqual(spec.HostConfig.CapAdd, ['SETUID', 'SETGID', 'KILL'], "only agentd's own capabilities are added back");
  assert.deepEqual(spec.HostConfig.SecurityOpt, ['no-new-privileges:true']);
  assert.equal(spec.Labels['dev.clawker.component'], 'agent');
  assert.equal(spec.Labels['dev.clawker.agent'], 'dev');
  assert.equal(spec.Labels['dev.clawker.project'], 'web');
  assert.ok(spec.Env.includes('A=1'));
  // A label supplied by the caller cannot pretend the container is something else.
  const forged = agentContainerSpec({ ...base, agent: 'dev', firewall, extraLabels: { 'dev.clawker.component': 'envoy' } });
  assert.equal(forged.create.Labels['dev.clawker.component'], 'agent');
  assert.throws(() => agentContainerSpec({ ...base, agent: '../x', firewall }), /agent name/);
});

test("the control plane's environment: defaults from the spec, every wrong value named", () => {
  const c = readConfig({ CLAWKER_DATA_DIR: '/data' });
  assert.equal(c.pinDir, '/sys/fs/bpf/clawker');
  assert.deepEqual(c.upstreams, ['1.1.1.2', '1.0.0.2']);
  assert.equal(c.socketPath, '/run/clawker/controlplane.sock', "the API's socket is in the container's own tmpfs, never in the data dir");
  assert.equal(readConfig({ CLAWKER_DATA_DIR: '/data', CLAWKER_API_SOCKET: '/tmp/t/api.sock' }).socketPath, '/tmp/t/api.sock');
  assert.throws(() => readConfig({ CLAWKER_DATA_DIR: '/data', CLAWKER_API_SOCKET: 'api.sock' }), /CLAWKER_API_SOCKET: must be an absolute path/);
  assert.equal(c.names.network, 'clawker-net');
  assert.equal(c.hostProxyPort, 18374, 'the host proxy port of the agent contract');
  assert.equal(readConfig({ CLAWKER_DATA_DIR: '/data', CLAWKER_HOST_PROXY_PORT: '0' }).hostProxyPort, 0, '0 turns the host proxy port off');
  assert.equal(readConfig({ CLAWKER_DATA_DIR: '/data', CLAWKER_HOST_PROXY_PORT: '28374' }).hostProxyPort, 28374);
  for (const bad of ['65536', '-1', 'http', '1.5']) assert.throws(() => readConfig({ CLAWKER_DATA_DIR: '/d', CLAWKER_HOST_PROXY_PORT: bad }), /CLAWKER_HOST_PROXY_PORT/, bad);
  assert.deepEqual(readConfig({ CLAWKER_DATA_DIR: '/data', CLAWKER_UPSTREAM_DNS: '10.0.0.53, 10.0.0.54' }).upstreams, ['10.0.0.53', '10.0.0.54']);
  const inContainer = readConfig({});
  assert.equal(inContainer.dataDir, '/var/lib/clawker', "by default its own data dir: the state volume's mount point");
  assert.equal(inContainer.caDir, '/var/lib/clawker/firewall/ca');
  assert.equal(inContainer.eventsFile, '/var/lib/clawker/events/egress.jsonl');
  assert.throws(() => readConfig({ CLAWKER_DATA_DIR: 'relative' }), /CLAWKER_DATA_DIR: must be an absolute path/);
  assert.throws(() => readConfig({ CLAWKER_DATA_DIR: '/d', CLAWKER_UPSTREAM_DNS: '1.1.1.1;rm -rf' }), /CLAWKER_UPSTREAM_DNS/);
  assert.throws(() => readConfig({ CLAWKER_DATA_DIR: '/d', CLAWKER_STACK: 'Bad Name' }), /stack prefix/);
});

test("Docker's log framing: complete frames become text, a torn last frame is kept for the next chunk", () => {
  const frame = (stream: number, text: string): Buffer => {
    const body = Buffer.from(text);
    const header = Buffer.alloc(8);
    header[0] = stream;
    header.writeUInt32BE(body.length, 4);
    return Buffer.concat([header, body]);
  };
  const whole = Buffer.concat([frame(1, 'one\n'), frame(2, 'two\n'), frame(1, 'three\n')]);
  const cut = whole.length - 3;
  const first = demuxLogFrames(whole.subarray(0, cut));
  assert.equal(first.text, 'one\ntwo\n');
  const second = demuxLogFrames(Buffer.concat([first.rest, whole.subarray(cut)]));
  assert.equal(second.text, 'three\n');
  assert.equal(second.rest.length, 0);
});
