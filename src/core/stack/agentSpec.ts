/**
 * How an agent container is created now lives with the rest of the agent lifecycle, in
 * src/core/agents/agentContainerSpec.ts (name, labels, environment, mounts, firewall network,
 * CoreDNS, the agents' cgroup parent, capabilities). Re-exported here for the stack's callers.
 */
export {
  type AgentContainerSpec,
  type AgentCreateOptions,
  type AgentFirewall,
  type AgentProjectSettings,
  type AgentSpecInput,
  agentContainerSpec,
  AgentSpecError,
  DEFAULT_PROJECT_SETTINGS,
  LABEL_FIREWALL,
  LABEL_WORKSPACE,
} from '../agents/agentContainerSpec';
export { agentContainerName } from '../agents/agentNames';
