/**
 * Which agent a request comes from: a running container labelled as one of this stack's agents,
 * found by the name its token proves (lookupName: every engine), or, for the bare tokens of
 * containers created before tokens named them, by its firewall-network source address (lookup:
 * a local engine only). Looked up in Docker, cached briefly, refreshed on a miss (at most a few
 * times a second, concurrent refreshes shared). A Docker error is an error, never a match (fail closed).
 */
import type Docker from 'dockerode';
import { isIPv4 } from 'node:net';
import { LABEL_COMPONENT, LABEL_MANAGED, LABEL_STACK } from '../core/stack/labels';

export interface AgentIdentity {
  readonly id: string;
  /** The container's name without Docker's leading '/': what its token is derived from. */
  readonly name: string;
}

export interface AgentLookup {
  lookup(address: string): Promise<AgentIdentity | undefined>;
  lookupName(name: string): Promise<AgentIdentity | undefined>;
}

/** `::ffff:172.18.0.2` → `172.18.0.2`; IPv6 lower-cased. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  return address.toLowerCase();
}

export interface AgentDirectoryOptions {
  /** The stack's firewall network (stackNames(prefix).network). */
  readonly network: string;
  readonly stackPrefix: string;
  /** How long a listing answers lookups; default 2 s. */
  readonly ttlMs?: number;
  /** The least time between two listings; default 250 ms. */
  readonly minRefreshMs?: number;
  readonly now?: () => number;
}

export class AgentDirectory implements AgentLookup {
  private byAddress = new Map<string, AgentIdentity>();
  private byName = new Map<string, AgentIdentity>();
  private listedAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private readonly ttlMs: number;
  private readonly minRefreshMs: number;
  private readonly now: () => number;

  constructor(
    private readonly docker: Pick<Docker, 'listContainers'>,
    private readonly options: AgentDirectoryOptions,
  ) {
    this.ttlMs = options.ttlMs ?? 2_000;
    this.minRefreshMs = options.minRefreshMs ?? 250;
    this.now = options.now ?? Date.now;
  }

  lookup(address: string): Promise<AgentIdentity | undefined> {
    const key = normalizeAddress(address);
    return key === '' ? Promise.resolve(undefined) : this.find(key, () => this.byAddress);
  }

  lookupName(name: string): Promise<AgentIdentity | undefined> {
    return this.find(name, () => this.byName);
  }

  /** How many of the stack's agents run now (a fresh listing; it also refreshes the lookups). */
  async runningCount(): Promise<number> {
    await this.refresh();
    return this.byName.size;
  }

  /** `key` in the index of the current listing: listed again when stale, or on a miss past minRefreshMs. */
  private async find(key: string, index: () => ReadonlyMap<string, AgentIdentity>): Promise<AgentIdentity | undefined> {
    const age = this.now() - this.listedAt;
    if (age > this.ttlMs || (!index().has(key) && age >= this.minRefreshMs)) await this.refresh();
    return index().get(key);
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.list().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async list(): Promise<void> {
    const { network, stackPrefix } = this.options;
    const containers = await this.docker.listContainers({
      filters: { label: [`${LABEL_MANAGED}=true`, `${LABEL_COMPONENT}=agent`, `${LABEL_STACK}=${stackPrefix}`], status: ['running'] },
    });
    const next = new Map<string, AgentIdentity>();
    const names = new Map<string, AgentIdentity>();
    const ambiguous = new Set<string>();
    for (const c of containers) {
      // Docker filtered already; check again, the labels are the whole authorisation.
      const labels = c.Labels ?? {};
      if (labels[LABEL_MANAGED] !== 'true' || labels[LABEL_COMPONENT] !== 'agent' || labels[LABEL_STACK] !== stackPrefix) continue;
      if (c.State !== 'running') continue;
      const name = c.Names?.[0]?.replace(/^\//, '');
      if (!name) continue;
      names.set(name, { id: c.Id, name }); // Docker's container names are unique
      const net = c.NetworkSettings?.Networks?.[network] as { IPAddress?: string; GlobalIPv6Address?: string } | undefined;
      for (const addr of [net?.IPAddress, net?.GlobalIPv6Address]) {
        // Stryker disable next-line ConditionalExpression: an absent address would be filed under '', and lookup() answers '' before looking
        if (!addr) continue;
        const key = normalizeAddress(addr);
        if (next.has(key)) ambiguous.add(key);
        next.set(key, { id: c.Id, name });
      }
    }
    for (const key of ambiguous) next.delete(key); // two agents claiming one address: neither is trusted
    this.byAddress = next;
    this.byName = names;
    this.listedAt = this.now();
  }
}
