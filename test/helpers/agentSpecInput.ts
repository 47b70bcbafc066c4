/** The input of agentContainerSpec for a project `web`, agent `dev`, firewall on: tests override what they vary. */
import { type AgentSpecInput, DEFAULT_PROJECT_SETTINGS } from '../../src/core/agents/agentContainerSpec';
import { stackNames } from '../../src/core/stack/stackNames';

export const stack = stackNames();
export const firewallOn = { enabled: true as const, corednsIp: '192.168.215.201', cgroupParent: '/clawker-agents' };

export function agentSpecInput(over: Partial<AgentSpecInput> = {}): AgentSpecInput {
  return {
    stack,
    project: 'web',
    agent: 'dev',
    image: 'clawker-agent:latest',
    workspace: '/home/me/src/web',
    settings: DEFAULT_PROJECT_SETTINGS,
    firewall: firewallOn,
    hostProxyUrl: 'http://host.docker.internal:18374',
    homeDir: '/home/me',
    ...over,
  };
}
