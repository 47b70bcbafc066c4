/**
 * Docker engine on the test bed: a container from the locally imported base image runs a command,
 * its output comes back, and runc placed it in its own cgroup v2 (where the eBPF hooks attach).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  BASE_IMAGE, E2E_PID_LABEL, cgroup2DirOfPid, cgroup2MountPoint, containerPid, removeContainer,
  requireTestbed, runOk, startContainer, uniqueName,
} from './testbed';

describe('Docker with the local base image', { timeout: 120_000 }, () => {
  const created: string[] = [];

  before(() => requireTestbed(['docker daemon', 'cgroup v2 mount', 'base image']));

  after(async () => {
    for (const name of created) await removeContainer(name);
  });

  test('a container runs a command and its output comes back', async () => {
    const name = uniqueName('run');
    created.push(name);
    // The script is a constant; the value travels as a positional argument.
    const out = await runOk('docker', [
      'run', '--rm', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', 'none',
      BASE_IMAGE, 'bash', '-c', 'printf "%s debian=%s\\n" "$1" "$(cat /etc/debian_version)"', 'bash', 'hello-from-e2e',
    ]);
    assert.match(out, /^hello-from-e2e debian=12\.\d+\n$/);
  });

  test('the container is in its own cgroup v2 (/docker/<id> under the v2 mount)', async () => {
    const name = uniqueName('cgroup');
    created.push(name);
    const id = await startContainer(name, ['--network', 'none']);
    const pid = await containerPid(id);
    const dir = cgroup2DirOfPid(pid);
    assert.equal(dir, `${cgroup2MountPoint()}/docker/${id}`, 'dockerd with the cgroupfs driver puts containers at docker/<id>');
    assert.ok(existsSync(dir), `${dir} exists`);
    const procs = readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    assert.ok(procs.includes(pid), `container pid ${pid} is in ${dir}/cgroup.procs (${procs.join(',')})`);
  });
});
