/**
 * What Docker's inspect returns for an agent container, as much of it as the control plane reads:
 * for tests that stand in for Docker (test/unit/controlPlaneAgents, securityControlPlane).
 */
import { LABEL_AGENT } from '../../src/core/stack/labels';

export interface FakeAgentContainer {
  readonly name: string;
  readonly id: string;
  readonly agent: string;
  readonly running?: boolean;
  /** Default: under the agents' cgroup. */
  readonly cgroupParent?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Its address on each network, by network name. */
  readonly networks?: Readonly<Record<string, string>>;
}

export function inspectInfoOf(c: FakeAgentContainer) {
  return {
    Id: c.id,
    Name: `/${c.name}`,
    State: { Running: c.running ?? true },
    Config: { Labels: { [LABEL_AGENT]: c.agent, ...c.labels } },
    HostConfig: { CgroupParent: c.cgroupParent ?? '/clawker-agents' },
    NetworkSettings: { Networks: Object.fromEntries(Object.entries(c.networks ?? {}).map(([name, ip]) => [name, { IPAddress: ip }])) },
  };
}

/** Docker's 404, as dockerode reports it. */
export const notFound = (ref: string): Error => Object.assign(new Error(`no such container ${ref}`), { statusCode: 404 });
