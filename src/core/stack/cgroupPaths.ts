/**
 * Where Docker puts a container's cgroup v2 directory, for both of Docker's cgroup drivers. Pure:
 * the control plane joins these to the cgroup v2 mount it finds.
 *
 * Agents are created with `--cgroup-parent <agents cgroup>`: cgroupfs places them at
 * `/<parent>/<id>`, systemd at `/<parent>.slice/docker-<id>.scope`. The datapath is attached to the
 * parent and the parent is enrolled locked down, so an agent container is enforced (offline) from
 * the moment its cgroup exists, before its command runs, until the control plane enrolls it.
 */
export type CgroupDriver = 'cgroupfs' | 'systemd';

export function cgroupDriverOf(value: string | undefined): CgroupDriver {
  return value === 'systemd' ? 'systemd' : 'cgroupfs';
}

/** The --cgroup-parent value for agents. */
export function agentsCgroupParent(driver: CgroupDriver, agentsCgroup: string): string {
  return driver === 'systemd' ? `${agentsCgroup}.slice` : `/${agentsCgroup}`;
}

/** The agents' parent directory, relative to the cgroup v2 root. */
export function agentsCgroupDir(driver: CgroupDriver, agentsCgroup: string): string {
  return driver === 'systemd' ? systemdSlicePath(`${agentsCgroup}.slice`) : agentsCgroup;
}

/**
 * A container's cgroup v2 directory relative to the root, from its id and HostConfig.CgroupParent
 * (empty: Docker's default parent).
 */
export function containerCgroupDir(driver: CgroupDriver, containerId: string, cgroupParent: string | undefined): string {
  if (!/^[0-9a-f]{64}$/.test(containerId)) throw new Error(`not a full container id: ${containerId}`);
  if (driver === 'systemd') {
    const slice = cgroupParent && cgroupParent !== '' ? cgroupParent : 'system.slice';
    return `${systemdSlicePath(slice)}/docker-${containerId}.scope`;
  }
  const parent = (cgroupParent && cgroupParent !== '' ? cgroupParent : '/docker').replace(/^\/+|\/+$/g, '');
  return parent === '' ? containerId : `${parent}/${containerId}`;
}

/** systemd nests slices by name: a-b.slice lives in a.slice/a-b.slice. */
function systemdSlicePath(slice: string): string {
  const name = slice.replace(/\.slice$/, '');
  const parts = name.split('-');
  const path: string[] = [];
  for (let i = 1; i <= parts.length; i++) path.push(`${parts.slice(0, i).join('-')}.slice`);
  return path.join('/');
}
