/**
 * eBPF on the test bed: the smoke `cgroup/connect4` program from bpf/tests/smoke_connect4.c, built
 * by `make -C bpf`, loaded and pinned with bpftool, attached to a real container's cgroup v2.
 *
 * Traffic stays on this machine: two TCP listeners on the Docker bridge gateway (docker0), one on a
 * port the program denies (a key of the pinned map `smoke_deny_ports`) and one it allows. The
 * container connects with bash's /dev/tcp (the minbase image has no curl or nc).
 *
 *   before attach      both ports connect
 *   attached           denied port: connect() fails with EPERM, the listener sees nothing;
 *                      allowed port still connects
 *   map key removed    the denied port connects again at once (user-space map update)
 *   detached           every port connects
 */
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostListener } from './datapath-testbed';
import {
  BPF_DIR, BPFFS_DIR, bpftool, cgroup2DirOfPid, containerGateway, containerPid, removeContainer, requireTestbed,
  run, runOk, startContainer, sweepStale, uniqueName,
} from './testbed';

const PROG_OBJECT = join(BPF_DIR, 'build', 'tests', 'smoke_connect4.o');
const PROG_NAME = 'smoke_connect4';
const MAP_NAME = 'smoke_deny_ports';


/** Map key bytes for a port: network byte order, as the program reads `user_port`. */
const portKey = (port: number) => ['hex', ((port >> 8) & 0xff).toString(16).padStart(2, '0'), (port & 0xff).toString(16).padStart(2, '0')];

describe('cgroup/connect4 smoke program in a real container', { timeout: 180_000 }, () => {
  let gateway = '';
  const denied = new HostListener();
  const allowed = new HostListener();
  let deniedPort = 0;
  let allowedPort = 0;
  let containerName: string | undefined;
  let containerId = '';
  let cgroupDir = '';
  let pinDir: string | undefined;
  let progPin = '';
  let mapPin = '';
  let attached = false;
  let listening = false;

  /** connect() from inside the container with bash's /dev/tcp; host and port are positional arguments. */
  const connectFromContainer = (port: number) =>
    run('docker', ['exec', containerId, 'bash', '-c', 'exec 3<>"/dev/tcp/$1/$2" && echo connected', 'bash', gateway, String(port)], 30_000);

  async function assertConnects(listener: HostListener, port: number, when: string) {
    const before = listener.accepted;
    const r = await connectFromContainer(port);
    assert.equal(r.code, 0, `${when}: connect to ${gateway}:${port} should succeed; stderr: ${r.stderr.trim()}`);
    assert.equal(r.stdout.trim(), 'connected');
    for (let i = 0; i < 50 && listener.accepted === before; i++) await sleep(20);
    assert.equal(listener.accepted, before + 1, `${when}: the listener on ${port} accepted the connection`);
  }

  async function assertDeniedWithEperm(listener: HostListener, port: number, when: string) {
    const before = listener.accepted;
    const r = await connectFromContainer(port);
    assert.notEqual(r.code, 0, `${when}: connect to ${gateway}:${port} should fail; stdout: ${r.stdout.trim()}`);
    assert.doesNotMatch(r.stdout, /connected/);
    // bash reports connect(2)'s errno: EPERM is what a connect4 hook returning 0 produces
    // (a closed port would be "Connection refused", a drop a timeout).
    assert.match(r.stderr, /connect: Operation not permitted/, `${when}: expected EPERM, got: ${r.stderr.trim()}`);
    await sleep(200);
    assert.equal(listener.accepted, before, `${when}: nothing reached the listener on ${port}`);
  }

  async function attachedProgNames(): Promise<string[]> {
    // bpftool prints nothing (not `[]`) when nothing is attached; bpftool 7.1 names the attach
    // type `cgroup_inet4_connect`, older ones `connect4`.
    const out = (await runOk(bpftool(), ['-j', 'cgroup', 'show', cgroupDir])).trim();
    const list = JSON.parse(out || '[]') as { attach_type?: string; name?: string }[];
    return list.filter((p) => p.attach_type === 'cgroup_inet4_connect' || p.attach_type === 'connect4').map((p) => p.name ?? '');
  }

  before(async () => {
    await requireTestbed();
    await sweepStale();
    await runOk('make', ['-C', BPF_DIR], 120_000);

    containerName = uniqueName('connect4');
    containerId = await startContainer(containerName);
    cgroupDir = cgroup2DirOfPid(await containerPid(containerId));

    gateway = await containerGateway(containerId);
    listening = true;
    deniedPort = await denied.listen(gateway);
    allowedPort = await allowed.listen(gateway);

    pinDir = join(BPFFS_DIR, uniqueName('connect4'));
    mkdirSync(join(pinDir, 'maps'), { recursive: true });
    progPin = join(pinDir, PROG_NAME);
    mapPin = join(pinDir, 'maps', MAP_NAME);
    await runOk(bpftool(), ['prog', 'load', PROG_OBJECT, progPin, 'type', 'cgroup/connect4', 'pinmaps', join(pinDir, 'maps')]);
    await runOk(bpftool(), ['map', 'update', 'pinned', mapPin, 'key', ...portKey(deniedPort), 'value', 'hex', '01']);
  });

  after(async () => {
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (attached) await attempt('detach', () => runOk(bpftool(), ['cgroup', 'detach', cgroupDir, 'connect4', 'pinned', progPin]));
    if (containerName) await attempt('remove container', () => removeContainer(containerName!));
    if (pinDir) await attempt('unpin', () => rmSync(pinDir!, { recursive: true, force: true }));
    if (listening) await attempt('close listeners', () => Promise.all([denied.close(), allowed.close()]));
    assert.deepEqual(errors, [], 'cleanup');
  });

  test('before attaching, both ports connect', async () => {
    await assertConnects(denied, deniedPort, 'not attached');
    await assertConnects(allowed, allowedPort, 'not attached');
  });

  test('attached to the container cgroup: the denied port fails with EPERM, the allowed port connects', async () => {
    await runOk(bpftool(), ['cgroup', 'attach', cgroupDir, 'connect4', 'pinned', progPin]);
    attached = true;
    assert.deepEqual(await attachedProgNames(), [PROG_NAME], `${PROG_NAME} attached at ${cgroupDir}`);
    await assertDeniedWithEperm(denied, deniedPort, 'attached');
    await assertConnects(allowed, allowedPort, 'attached');
  });

  test('removing the port from the pinned map allows it at once', async () => {
    assert.ok(attached, 'program attached by the previous test');
    await runOk(bpftool(), ['map', 'delete', 'pinned', mapPin, 'key', ...portKey(deniedPort)]);
    await assertConnects(denied, deniedPort, 'key removed');
    await runOk(bpftool(), ['map', 'update', 'pinned', mapPin, 'key', ...portKey(deniedPort), 'value', 'hex', '01']);
    await assertDeniedWithEperm(denied, deniedPort, 'key restored');
  });

  test('after detaching, the denied port connects again', async () => {
    await runOk(bpftool(), ['cgroup', 'detach', cgroupDir, 'connect4', 'pinned', progPin]);
    attached = false;
    assert.deepEqual(await attachedProgNames(), [], 'nothing attached');
    await assertConnects(denied, deniedPort, 'detached');
  });
});
