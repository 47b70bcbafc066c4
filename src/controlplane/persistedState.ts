/**
 * What the control plane must remember across its own restarts: which agents were disabled, and the
 * bypass windows still open (the kernel closes a window by itself at its deadline; the control plane
 * needs the record to clean up, audit the end, and show it). Written atomically; a damaged file is
 * reported and treated as empty — which can only close egress, never open it: disabled agents come
 * back enforced and bypass windows keep their kernel deadline.
 *
 * Entries are keyed by container name (unique on the engine, unlike the agent name two projects may
 * share) and carry the container id they were made for. Deny by default decides what a container
 * inherits:
 *   - `disable` holds for that container across its restarts (same id). A container removed and
 *     created again under the same name is a new container: it starts enforced, the entry is dropped.
 *   - a bypass holds for one container's cgroup only (same id and same cgroup id). It never outlives
 *     the container's run: a restart gets a new cgroup, and a new container never inherits a window.
 *
 * Version 1 files keyed both by the agent name alone; they are migrated fail-closed against the agents
 * running when the control plane starts (migrateLegacy): what cannot be attributed to exactly one
 * container is dropped, and a dropped bypass is closed in the kernel.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../platform/files';
import type { AgentIdentity } from './agentIdentity';

const disabledEntry = z.object({ containerId: z.string().min(1) });
const bypassEntry = z.object({ containerId: z.string().min(1), cgroupId: z.number(), until: z.string() });

const stateSchema = z.object({
  version: z.literal(2),
  /** By container name. */
  disabled: z.record(z.string(), disabledEntry),
  /** By container name. */
  bypass: z.record(z.string(), bypassEntry),
});

/** Version 1: keyed by agent name (the `dev.clawker.agent` label, or the container name without one). */
const legacySchema = z.object({
  version: z.literal(1),
  disabled: z.array(z.string()),
  bypass: z.record(z.string(), z.object({ cgroupId: z.number(), until: z.string() })),
});

export type PersistedState = z.infer<typeof stateSchema>;
export type BypassEntry = z.infer<typeof bypassEntry>;
export type LegacyState = z.infer<typeof legacySchema>;

export const emptyState = (): PersistedState => ({ version: 2, disabled: {}, bypass: {} });

export interface ParsedState {
  readonly state: PersistedState;
  /** A version 1 file, still to be attributed to running containers (migrateLegacy). */
  readonly legacy?: LegacyState;
  /** Why the file was not usable (then `state` is empty). */
  readonly damaged?: string;
}

export function parseState(text: string): ParsedState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { state: emptyState(), damaged: e instanceof Error ? e.message : String(e) };
  }
  const current = stateSchema.safeParse(json);
  if (current.success) return { state: current.data };
  const legacy = legacySchema.safeParse(json);
  if (legacy.success) return { state: emptyState(), legacy: legacy.data };
  return { state: emptyState(), damaged: current.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`)[0] ?? 'unexpected content' };
}

export function readState(file: string, warn: (message: string) => void): ParsedState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { state: emptyState() };
  }
  const parsed = parseState(text);
  if (parsed.damaged) warn(`${file} is damaged (${parsed.damaged}); starting with no disabled agents and no bypass records`);
  return parsed;
}

export function writeState(file: string, state: PersistedState): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** A running agent as the migration and the entry checks see it. */
export interface RunningAgent extends AgentIdentity {
  /** Undefined when its cgroup could not be read (then no bypass can be attributed to it). */
  readonly cgroupId: number | undefined;
}

/** Whether `disable` holds for this container: only an entry made for this very container does. */
export const isDisabled = (state: PersistedState, agent: AgentIdentity): boolean => state.disabled[agent.name]?.containerId === agent.id;

/** The open bypass window of this container's current cgroup, if any. */
export function openBypass(state: PersistedState, agent: AgentIdentity & { readonly cgroupId: number }, now: number): BypassEntry | undefined {
  const window = state.bypass[agent.name];
  if (!window || window.containerId !== agent.id || window.cgroupId !== agent.cgroupId) return undefined;
  return Date.parse(window.until) > now ? window : undefined;
}

export interface Migration {
  readonly state: PersistedState;
  /** Cgroup ids whose kernel bypass must be closed: windows that could not be attributed. */
  readonly closeBypass: readonly number[];
  /** One line per entry kept or dropped, for the audit trail. */
  readonly notes: readonly string[];
}

/**
 * Version 1 → 2 against the agents running now. A disabled agent name is kept only when exactly one
 * running agent has it; a bypass window only when its cgroup id (the kernel's own key) belongs to a
 * running agent of that name and its deadline has not passed. Everything else is dropped: the
 * container comes back enforced, never wider than before.
 */
export function migrateLegacy(legacy: LegacyState, running: readonly RunningAgent[], now: number): Migration {
  const state = emptyState();
  const closeBypass: number[] = [];
  const notes: string[] = [];
  for (const agent of new Set(legacy.disabled)) {
    const holders = running.filter((r) => r.agent === agent);
    if (holders.length === 1) {
      state.disabled[holders[0]!.name] = { containerId: holders[0]!.id };
      notes.push(`firewall disable for ${agent} kept for its container ${holders[0]!.name}`);
    } else {
      notes.push(
        `firewall disable for ${agent} dropped (${holders.length ? `${holders.length} running containers have that agent name: ${holders.map((h) => h.name).sort().join(', ')}` : 'no running container has that agent name'}): it is enforced`,
      );
    }
  }
  for (const [agent, window] of Object.entries(legacy.bypass)) {
    const holder = running.find((r) => r.agent === agent && r.cgroupId === window.cgroupId);
    const open = Date.parse(window.until) > now;
    if (holder && open) {
      state.bypass[holder.name] = { containerId: holder.id, cgroupId: window.cgroupId, until: window.until };
      notes.push(`bypass for ${agent} until ${window.until} kept for its container ${holder.name}`);
    } else {
      closeBypass.push(window.cgroupId);
      notes.push(`bypass for ${agent} (cgroup ${window.cgroupId}) dropped and closed: ${open ? 'no running container of that agent name has its cgroup' : 'its deadline has passed'}`);
    }
  }
  return { state, closeBypass, notes };
}

/**
 * Entries of containers that no longer exist under their name with their id (removed, or replaced by
 * a new container of the same name). `existing` is every agent container of the stack, running or not.
 */
export function staleEntries(state: PersistedState, existing: readonly Pick<AgentIdentity, 'name' | 'id'>[]): { disabled: string[]; bypass: string[] } {
  const idOf = new Map(existing.map((c) => [c.name, c.id]));
  const stale = (entries: Record<string, { containerId: string }>): string[] => Object.entries(entries).filter(([name, e]) => idOf.get(name) !== e.containerId).map(([name]) => name);
  return { disabled: stale(state.disabled), bypass: stale(state.bypass) };
}
