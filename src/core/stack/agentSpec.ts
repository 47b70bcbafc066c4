/**
 * How an agent container is created so that the firewall holds from its first instruction: on the
 * firewall network, CoreDNS as its only resolver, under the agents' cgroup (where the datapath is
 * attached and the parent is locked down until the control plane enrolls the container), with no
 * capabilities (so no raw or packet sockets: NET_RAW is gone) and no way to gain any. Pure.
 */
import { LABEL_AGENT, LABEL_PROJECT, LABEL_STACK, managedLabels } from './labels';
import type { StackNames } from './stackNames';

export interface AgentSpecOptions {
  readonly agent: string;
  readonly project?: string;
  readonly image: string;
  readonly cmd?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly names: StackNames;
  readonly corednsIp: string;
  /** From agentsCgroupParent(). */
  readonly cgroupParent: string;
  readonly extraLabels?: Readonly<Record<string, string>>;
}

const AGENT_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export function agentContainerName(prefix: string, agent: string): string {
  return `${prefix}-agent-${agent}`;
}

export function agentContainerSpec(o: AgentSpecOptions) {
  if (!AGENT_NAME.test(o.agent)) throw new Error(`agent name ${JSON.stringify(o.agent)}: letters, digits, '_', '.' and '-', up to 63 characters`);
  return {
    name: agentContainerName(o.names.prefix, o.agent),
    Image: o.image,
    ...(o.cmd ? { Cmd: [...o.cmd] } : {}),
    Env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: {
      ...(o.extraLabels ?? {}),
      ...managedLabels('agent', { [LABEL_AGENT]: o.agent, [LABEL_STACK]: o.names.prefix, ...(o.project ? { [LABEL_PROJECT]: o.project } : {}) }),
    },
    HostConfig: {
      NetworkMode: o.names.network,
      Dns: [o.corednsIp],
      CgroupParent: o.cgroupParent,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
    },
  };
}
