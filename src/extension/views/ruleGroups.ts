/** The Rules view's shape of `clawker firewall list --json`. Pure. */

export interface ListedPathRule {
  readonly path: string;
  readonly action: string;
  readonly methods?: readonly string[];
}

export interface ListedRule {
  readonly origin: 'system' | 'project' | 'runtime';
  readonly dst: string;
  readonly proto: string;
  readonly port: string | number;
  readonly action: string;
  readonly path_rules?: readonly ListedPathRule[];
  readonly path_default?: string;
  /** A store rule whose key `.clawker.yaml` has too: put there by `firewall refresh` (the store's copy is in force). */
  readonly alsoInProjectFile?: boolean;
}

/** The origin people see: a rule `.clawker.yaml` declares is a project rule, even once refresh has synced it into the store. */
export const shownOrigin = (r: ListedRule): ListedRule['origin'] => (r.origin === 'runtime' && r.alsoInProjectFile ? 'project' : r.origin);

/** Destinations in policy order, each with its rules (usually one). */
export function groupByDestination(rules: readonly ListedRule[]): { dst: string; rules: ListedRule[] }[] {
  const groups = new Map<string, ListedRule[]>();
  for (const r of rules) groups.set(r.dst, [...(groups.get(r.dst) ?? []), r]);
  return [...groups].map(([dst, list]) => ({ dst, rules: list }));
}

export const ruleDescription = (r: ListedRule): string => `${r.proto}:${r.port} · ${r.action} · ${shownOrigin(r)}`;

/**
 * The view's top level: the user's rules (project, then runtime, each group in policy order) first,
 * and the built-in rules, which rarely matter when reading one's own, apart.
 */
export function splitBuiltIn(rules: readonly ListedRule[]): { own: { dst: string; rules: ListedRule[] }[]; builtIn: { dst: string; rules: ListedRule[] }[] } {
  const rank = (r: ListedRule): number => (shownOrigin(r) === 'project' ? 0 : 1);
  const own = rules.filter((r) => r.origin !== 'system');
  const ordered = [...own].sort((a, b) => rank(a) - rank(b)); // stable: policy order within each origin
  return { own: groupByDestination(ordered), builtIn: groupByDestination(rules.filter((r) => r.origin === 'system')) };
}
