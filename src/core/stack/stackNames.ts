/**
 * The names of one firewall stack's Docker objects and cgroup. One stack serves every agent on a
 * host and is called `clawker`; the prefix exists so tests (and a second install) get their own
 * network, containers, cgroup and pin directory without touching the user's.
 */
export interface StackNames {
  readonly prefix: string;
  readonly network: string;
  readonly envoy: string;
  readonly coredns: string;
  readonly controlplane: string;
  /** The cgroup every agent container is created under (Docker's --cgroup-parent), without the
   * systemd `.slice` suffix. The datapath is attached here, so an agent is enforced from its first
   * instruction; see cgroupPaths.ts. */
  readonly agentsCgroup: string;
  /** The stack's Docker volumes: nothing of the host's file system is mounted into the stack. */
  readonly volumes: StackVolumes;
}

/**
 * What the stack keeps on the engine's side, each in a named volume filled through the Docker API
 * (src/platform/docker/stackVolumes.ts): the control plane's own state (its copy of the rule store
 * and CA, persisted state, event log, datapath inputs) and the two rendered configurations, each
 * mounted read-only into the one service that reads it — Envoy never sees the CA key.
 */
export interface StackVolumes {
  readonly state: string;
  readonly envoyConfig: string;
  readonly corednsConfig: string;
}

export const DEFAULT_STACK_PREFIX = 'clawker';
const PREFIX = /^[a-z][a-z0-9-]{0,40}$/;

export function stackNames(prefix: string = DEFAULT_STACK_PREFIX): StackNames {
  if (!PREFIX.test(prefix)) throw new Error(`stack prefix ${JSON.stringify(prefix)}: use lower-case letters, digits and '-', starting with a letter`);
  return {
    prefix,
    network: `${prefix}-net`,
    envoy: `${prefix}-envoy`,
    coredns: `${prefix}-coredns`,
    controlplane: `${prefix}-controlplane`,
    agentsCgroup: `${prefix}-agents`,
    volumes: { state: `${prefix}-controlplane-state`, envoyConfig: `${prefix}-envoy-config`, corednsConfig: `${prefix}-coredns-config` },
  };
}
