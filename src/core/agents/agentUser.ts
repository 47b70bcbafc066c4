/**
 * Which ids the agent user gets (issue 14, item 5). On a local Linux engine the project is a bind
 * mount of the user's own folder with its real owners: the agent takes the host user's UID and GID,
 * so it can write the project and what it writes is the user's. Root on the host, and every engine
 * in a VM or elsewhere (their file sharing maps owners), keep the contract's 1001.
 */
import type { EngineKind } from '../engine/engineSupport';
import { AGENT_GID, AGENT_UID } from './agentContract';

export interface AgentUser {
  readonly uid: number;
  readonly gid: number;
}

export const DEFAULT_AGENT_USER: AgentUser = { uid: AGENT_UID, gid: AGENT_GID };

export function agentUserFor(engine: EngineKind | undefined, host: { uid: number; gid: number } | undefined): AgentUser {
  if (engine !== 'linux-local' || !host) return DEFAULT_AGENT_USER;
  if (host.uid === 0) return DEFAULT_AGENT_USER; // never root inside; the contract's user
  // A group id of 0 (root's group) would hand the agent every root-group file: keep the contract's group.
  return { uid: host.uid, gid: host.gid === 0 ? AGENT_GID : host.gid };
}

export const isDefaultAgentUser = (u: AgentUser): boolean => u.uid === AGENT_UID && u.gid === AGENT_GID;
