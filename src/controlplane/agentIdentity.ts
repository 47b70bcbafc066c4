/**
 * Which running agent a caller means. Agent containers are named `<stack>.<project>.<agent>`, so two
 * projects may each run an agent called `dev`; the agent label alone is not an identity. A caller may
 * name an agent by:
 *   - its container name, exactly (`clawker.web.dev`; Docker's leading `/` is ignored),
 *   - its container id, in full or a unique prefix of at least 12 hex digits (as `docker ps` shows it),
 *   - its bare agent name (`dev`), only while exactly one running agent has it.
 * Anything that could mean two agents is refused (409) with the container names to choose from,
 * never resolved to the first one found. Pure: no I/O.
 */

export interface AgentIdentity {
  /** The agent label (`dev.clawker.agent`), or the container name when the label is missing. */
  readonly agent: string;
  /** The container's name, without Docker's leading `/`. Unique on the engine. */
  readonly name: string;
  /** The container's full id (64 hex digits). */
  readonly id: string;
}

/** The shortest id prefix accepted: what `docker ps` prints. */
export const MIN_ID_PREFIX = 12;

export type Resolution<T> =
  | { readonly found: T }
  | { readonly status: 400 | 404 | 409; readonly error: string; readonly next: string; readonly candidates?: readonly string[] };

/**
 * How an agent is shown to people: its bare agent name while no other running agent has it (what
 * single-project users know), else its container name (the form that names it unambiguously).
 */
export function shownName(agent: AgentIdentity, running: readonly AgentIdentity[]): string {
  const shared = running.some((other) => other.id !== agent.id && other.agent === agent.agent);
  return shared ? agent.name : agent.agent;
}

export function resolveAgent<T extends AgentIdentity>(query: string, running: readonly T[]): Resolution<T> {
  const wanted = query.replace(/^\//, '');
  if (wanted === '') return { status: 400, error: 'no agent given', next: 'pass the container name, the container id, or the agent name (clawker firewall status lists them)' };

  // A container name is unique on the engine: an exact match is the answer, whatever else matches.
  const byName = running.find((a) => a.name === wanted);
  if (byName) return { found: byName };

  const isIdPrefix = wanted.length >= MIN_ID_PREFIX && /^[0-9a-f]+$/.test(wanted);
  const matches = running.filter((a) => a.agent === wanted || (isIdPrefix && a.id.startsWith(wanted)));
  if (matches.length === 1) return { found: matches[0]! };

  if (matches.length > 1) {
    const candidates = matches.map((a) => a.name).sort();
    return {
      status: 409,
      error: `${matches.length} running agents match ${wanted}: ${candidates.join(', ')}`,
      next: `pass the container name (e.g. --agent ${candidates[0]}) or its container id`,
      candidates,
    };
  }

  const shown = running.map((a) => shownName(a, running)).sort();
  return {
    status: 404,
    error: `no running agent named ${wanted}${shown.length ? ` (running: ${shown.join(', ')})` : ' (no agent is running)'}`,
    next: 'clawker firewall status lists the running agents',
  };
}
