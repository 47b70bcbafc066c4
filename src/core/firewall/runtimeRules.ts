/**
 * The runtime rule state: the rules `clawker firewall add` adds and `clawker firewall refresh` syncs
 * from `.clawker.yaml`, kept in the rule store. Pure operations on it; the store does the I/O.
 *
 * A stored rule has the shape of a `.clawker.yaml` rule, so the state is checked by the very code that
 * checks the project file (`loadProject`: schema, then `validateFirewall`); there is no second
 * validator. Every operation checks the whole resulting state and returns it, or returns errors and
 * leaves the state as it was: a bad rule fails the whole operation.
 */
import { action as actionSchema } from '../config/firewallSchema';
import { loadProject } from '../config/load';
import { Policy } from '../policy/policy';
import { checkDestination, formatDestination } from './destination';
import type { Checked } from './finding';
import { checkMethod } from './pathMatch';
import { checkPort, formatPortRange } from './port';
import { checkProtocol, HTTP_FAMILY } from './protocol';
import { type Action, type NormalizedRule, ruleKey } from './rule';
import { SYSTEM_RULES } from './systemRules';

export interface StoredPathRule {
  readonly path: string;
  readonly action: Action;
  /** Upper case; absent means every method. */
  readonly methods?: readonly string[];
}

/** A rule as `.clawker.yaml` writes it (`security.firewall.rules[]`), in its normalised form. */
export interface StoredRule {
  readonly dst: string;
  readonly proto: string;
  readonly port: string;
  readonly action: Action;
  readonly path_rules?: readonly StoredPathRule[];
  readonly path_default?: Action;
}

export const STATE_VERSION = 1;

export interface RuntimeState {
  readonly version: typeof STATE_VERSION;
  readonly rules: readonly StoredRule[];
}

export const EMPTY_STATE: RuntimeState = Object.freeze({ version: STATE_VERSION, rules: Object.freeze([]) });

/** A problem of the state, tied to the rule it is about (`rules[index]`) when there is one. */
export interface StateProblem {
  readonly severity: 'error' | 'warning' | 'info';
  readonly message: string;
  readonly index?: number;
}

export interface CheckedState {
  /** True when there is an error: then there is no state to use. */
  readonly failed: boolean;
  readonly state?: RuntimeState;
  /** The runtime layer of the policy; empty when there is an error. */
  readonly rules: readonly NormalizedRule[];
  readonly problems: readonly StateProblem[];
}

export type ChangeKind = 'added' | 'updated' | 'unchanged' | 'removed' | 'kept';

export interface Change {
  readonly kind: ChangeKind;
  readonly message: string;
}

export type Outcome =
  | { readonly ok: true; readonly state: RuntimeState; readonly changed: boolean; readonly changes: readonly Change[]; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/** What an operation may consult besides the state: the project file's rules, already validated. */
export interface OperationContext {
  readonly projectRules?: readonly NormalizedRule[];
}

const fail = (...errors: string[]): Outcome => ({ ok: false, errors });

/** The methods `before` names (undefined: every method) that `after` does not (undefined: every method). */
function methodsLeftOut(before: readonly string[] | undefined, after: readonly string[] | undefined): string[] {
  if (after === undefined) return [];
  if (before === undefined) return [`every method but ${after.join(', ')}`];
  return before.filter((m) => !after.includes(m));
}

/** `api.example.com https:443`; also for a malformed rule read from a damaged file. */
export function describeStoredRule(rule: unknown): string {
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) return JSON.stringify(rule) ?? String(rule);
  const { dst, proto, port } = rule as Record<string, unknown>;
  return `${String(dst)} ${String(proto ?? 'https')}${port === undefined ? '' : `:${String(port)}`}`;
}

const describeRule = (rule: Pick<NormalizedRule, 'dst' | 'proto' | 'port'>): string =>
  `${formatDestination(rule.dst)} ${rule.proto}:${formatPortRange(rule.port)}`;

// One rule a line, as a JSON flow mapping (valid YAML), so that a problem's line names its rule.
const FIRST_RULE_LINE = 4;
function stateAsProjectYaml(rules: readonly unknown[]): string {
  if (rules.length === 0) return ''; // an empty project file: no rules, no problems
  return ['security:', '  firewall:', '    rules:', ...rules.map((r) => `      - ${JSON.stringify(r)}`), ''].join('\n');
}

/**
 * Checks a state read from anywhere (a file, an operation) in full, with the project file's checks.
 * Messages name fields relative to the state (`rules[2].port`), as the store file writes them.
 */
export function checkState(value: unknown): CheckedState {
  const broken = (message: string): CheckedState => ({ failed: true, rules: [], problems: [{ severity: 'error', message }] });
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return broken('the rule state must be an object {"version": 1, "rules": [...]}.');
  const { version, rules } = value as { version?: unknown; rules?: unknown };
  if (version !== STATE_VERSION) {
    const why = typeof version === 'number' && version > STATE_VERSION ? 'it was written by a newer clawker' : 'it is not a rule state this clawker wrote';
    return broken(`the rule state has version ${JSON.stringify(version) ?? 'none'}, not ${STATE_VERSION}: ${why}.`);
  }
  if (!Array.isArray(rules)) return broken("the rule state's 'rules' must be a list.");

  const loaded = loadProject(stateAsProjectYaml(rules));
  const problems = loaded.problems.map((p): StateProblem => {
    const index = loaded.lines.lineCol(p.range.start).line - FIRST_RULE_LINE;
    const message = p.message
      .replace(/security\.firewall\./g, '')
      .replace(/the rule at line (\d+)/g, (_, line: string) => `rules[${Number(line) - FIRST_RULE_LINE}]`);
    return index >= 0 && index < rules.length ? { severity: p.severity, message, index } : { severity: p.severity, message };
  });
  if (loaded.failed) return { failed: true, rules: [], problems };
  return {
    state: { version: STATE_VERSION, rules: rules as StoredRule[] },
    rules: loaded.rules.map((r) => ({ ...r, origin: 'runtime' as const })),
    problems,
    failed: false,
  };
}

/** A normalised rule written back in the stored (`.clawker.yaml`) shape. */
export function toStoredRule(rule: NormalizedRule): StoredRule {
  const base = { dst: formatDestination(rule.dst), proto: rule.proto, port: formatPortRange(rule.port), action: rule.action };
  if (rule.pathRules.length === 0) return base;
  return {
    ...base,
    path_rules: rule.pathRules.map((pr) => ({ path: pr.path, action: pr.action, ...(pr.methods.length > 0 ? { methods: [...pr.methods] } : {}) })),
    path_default: rule.pathDefault,
  };
}

interface Target {
  readonly key: string;
  readonly label: string;
  readonly dst: string;
  readonly proto: string;
  readonly port: string;
}

/** Normalises a destination, protocol and port given on their own, with the project file's checkers. */
function checkTarget(dstRaw: string, protoRaw: string | undefined, portRaw: string | undefined): { target?: Target; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const take = <T>(checked: Checked<T>): T | undefined => {
    for (const f of checked.findings) (f.severity === 'error' ? errors : warnings).push(`${dstRaw}: ${f.message}`);
    return checked.value;
  };
  const dst = take(checkDestination(dstRaw));
  // Stryker disable next-line StringLiteral: checkProtocol reads '' as https with no finding, so the default '' and 'https' are the same
  const proto = take(checkProtocol(protoRaw ?? 'https'));
  const port = proto === undefined ? undefined : take(checkPort(portRaw, proto));
  if (errors.length > 0 || !dst || proto === undefined || !port) return { errors, warnings };
  const rule = { dst, proto, port };
  return { target: { key: ruleKey(rule), label: describeRule(rule), dst: formatDestination(dst), proto, port: formatPortRange(port) }, errors, warnings };
}

/** The key of a stored rule; undefined only for a rule that would not pass `checkState`. */
function keyOfStored(rule: StoredRule): string | undefined {
  const dst = checkDestination(String(rule.dst)).value;
  // Stryker disable next-line StringLiteral: checkProtocol reads '' as https, so the default '' and 'https' are the same
  const proto = checkProtocol(String(rule.proto ?? 'https')).value;
  const port = proto === undefined ? undefined : checkPort(rule.port, proto).value;
  return dst && proto !== undefined && port ? ruleKey({ dst, proto, port }) : undefined;
}

const indexOfKey = (state: RuntimeState, key: string): number => state.rules.findIndex((r) => keyOfStored(r) === key);
const systemRuleWithKey = (key: string): NormalizedRule | undefined => SYSTEM_RULES.find((r) => ruleKey(r) === key);
const projectRuleWithKey = (context: OperationContext, key: string): NormalizedRule | undefined =>
  context.projectRules?.find((r) => ruleKey(r) === key);

const sameMethods = (a: readonly string[] | undefined, b: readonly string[] | undefined): boolean =>
  [...(a ?? [])].sort().join(',') === [...(b ?? [])].sort().join(',');

const samePathRule = (a: StoredPathRule, b: StoredPathRule): boolean => a.path === b.path && a.action === b.action && sameMethods(a.methods, b.methods);

/** Whether a merge changed the stored rule: it keeps the stored dst, proto and port, so only the rest is compared. */
function sameMerge(a: StoredRule, b: StoredRule): boolean {
  const ap = a.path_rules ?? [];
  const bp = b.path_rules ?? [];
  return (
    a.action === b.action &&
    a.path_default === b.path_default &&
    ap.length === bp.length &&
    ap.every((pr, i) => samePathRule(pr, bp[i]!))
  );
}

const describePathRule = (pr: StoredPathRule): string => `'${pr.path}' ${pr.action}${pr.methods?.length ? ` [${pr.methods.join(', ')}]` : ''}`;

const replaceAt = <T>(list: readonly T[], index: number, item: T): T[] => list.map((x, i) => (i === index ? item : x));

/** Rebuilds a rule with new path rules; a rule left without any drops its `path_default` too. */
function withPathRules(rule: StoredRule, pathRules: readonly StoredPathRule[], pathDefault = rule.path_default): StoredRule {
  const { path_rules: _rules, path_default: _default, ...rest } = rule;
  if (pathRules.length === 0) return rest;
  return { ...rest, path_rules: pathRules, ...(pathDefault !== undefined ? { path_default: pathDefault } : {}) };
}

/**
 * Checks the new state in full and finishes the operation: on any error nothing changes. Warnings
 * are reported for the rules the operation touched only, so an old warning is not repeated forever.
 */
function finish(rules: readonly StoredRule[], touched: readonly number[], changes: Change[], warnings: string[]): Outcome {
  const checked = checkState({ version: STATE_VERSION, rules });
  const about = (p: StateProblem): string => (p.index === undefined ? p.message : `${describeStoredRule(rules[p.index]!)}: ${p.message}`);
  if (checked.failed || !checked.state) {
    const errors = checked.problems.filter((p) => p.severity === 'error');
    // Errors in the touched rules first: those are what the user just asked for.
    // Stryker disable next-line UnaryOperator: every error of a state has an index (see checkState), so the `?? -1` fallback is never taken
    errors.sort((a, b) => Number(!touched.includes(a.index ?? -1)) - Number(!touched.includes(b.index ?? -1)));
    return fail(...errors.map(about));
  }
  for (const p of checked.problems) {
    if (p.severity === 'info' || !touched.some((i) => i === p.index)) continue;
    // The request's own checks may have said it already (an unusual method): say it once.
    const warning = about(p);
    if (!warnings.includes(warning)) warnings.push(warning);
  }
  const changed = changes.some((c) => c.kind !== 'unchanged' && c.kind !== 'kept');
  return { ok: true, state: checked.state, changed, changes, warnings };
}

export interface PathRuleRequest {
  readonly path: string;
  readonly action: string;
  /** Empty or absent: every method. */
  readonly methods?: readonly string[];
}

export interface AddRequest {
  readonly dst: string;
  /** Default `https`. */
  readonly proto?: string;
  /** Default: the protocol's port. */
  readonly port?: string;
  /** Attach (or update) a path rule instead of adding a plain allow rule. */
  readonly pathRule?: PathRuleRequest;
}

function checkPathRuleRequest(request: PathRuleRequest, target: Target): { pathRule?: StoredPathRule; errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (!HTTP_FAMILY.has(target.proto)) {
    errors.push(`${target.label}: path rules and methods apply to https, http, ws and wss only: '${target.proto}' carries no HTTP request to match them against.`);
  }
  const action = actionSchema.safeParse(request.action);
  if (!action.success) errors.push(`${target.label}: the path rule's action '${request.action}' must be allow or deny.`);
  const methods: string[] = [];
  for (const raw of request.methods ?? []) {
    const checked = checkMethod(raw);
    for (const f of checked.findings) (f.severity === 'error' ? errors : warnings).push(`${target.label}: ${f.message}`);
    if (checked.value !== undefined && !methods.includes(checked.value)) methods.push(checked.value);
  }
  if (errors.length > 0 || !action.success) return { errors, warnings };
  return { pathRule: { path: request.path, action: action.data, ...(methods.length > 0 ? { methods } : {}) }, errors, warnings };
}

/**
 * `add DOMAIN`: a plain https allow rule unless one with that key exists. `add DOMAIN --path P
 * --action A [--methods M]`: attaches a path rule to the entry (creating it, or starting from the
 * project file's rule with that key). Path rules accumulate; the same path string overwrites that
 * entry's action and methods; a different one appends.
 */
export function addRule(state: RuntimeState, request: AddRequest, context: OperationContext = {}): Outcome {
  const checked = checkTarget(request.dst, request.proto, request.port);
  if (!checked.target) return fail(...checked.errors);
  const target = checked.target;
  const warnings = [...checked.warnings];

  let pathRule: StoredPathRule | undefined;
  if (request.pathRule) {
    const pr = checkPathRuleRequest(request.pathRule, target);
    if (!pr.pathRule) return fail(...pr.errors);
    pathRule = pr.pathRule;
    warnings.push(...pr.warnings);
  }

  const system = systemRuleWithKey(target.key);
  if (system) {
    if (pathRule) return fail(`${target.label} is a built-in rule, which cannot be changed: Claude Code needs it as it is.`);
    return finish(state.rules, [], [{ kind: 'unchanged', message: `${target.label} is already allowed by a built-in rule; nothing changed.` }], warnings);
  }

  const index = indexOfKey(state, target.key);
  const project = projectRuleWithKey(context, target.key);
  const existing = index >= 0 ? state.rules[index] : project ? toStoredRule(project) : undefined;
  const where = index >= 0 ? 'the rule store' : 'the project file';

  if (existing?.action === 'deny') {
    return fail(
      `${target.label} is a deny rule in ${where}; it is not turned into an allow rule behind your back. Remove that deny rule first, then add the allow rule or path rule.`,
    );
  }

  if (!pathRule) {
    if (existing) return finish(state.rules, [], [{ kind: 'unchanged', message: `${target.label} is already allowed by ${where}; nothing changed.` }], warnings);
    const rule: StoredRule = { dst: target.dst, proto: target.proto, port: target.port, action: 'allow' };
    return finish(
      [...state.rules, rule],
      // Stryker disable next-line ArrayDeclaration: a plain allow rule that passed checkTarget has no error and no warning in the state check, so which rules count as touched cannot change the outcome
      [state.rules.length],
      [{ kind: 'added', message: `Added ${target.label} allow` }],
      warnings,
    );
  }

  const base: StoredRule = existing ?? { dst: target.dst, proto: target.proto, port: target.port, action: 'allow' };
  const pathRules = base.path_rules ?? [];
  const samePath = pathRules.flatMap((pr, i) => (pr.path === pathRule.path ? [i] : []));
  let updated: StoredRule;
  let change: Change;
  if (samePath.length === 0) {
    updated = withPathRules(base, [...pathRules, pathRule]);
    change = { kind: index >= 0 ? 'updated' : 'added', message: `Added path rule ${describePathRule(pathRule)} to ${target.label}` };
  } else {
    const at = samePath.length === 1 ? samePath[0]! : samePath.find((i) => pathRule.methods && sameMethods(pathRules[i]!.methods, pathRule.methods));
    if (at === undefined) {
      return fail(
        `${target.label} has ${samePath.length} path rules for '${pathRule.path}' (${samePath.map((i) => describePathRule(pathRules[i]!)).join('; ')}), ` +
          'so it is not clear which one to change. Remove them (remove with --path) and add the one you want, or give the --methods of the one to change.',
      );
    }
    const before = pathRules[at]!;
    if (samePathRule(before, pathRule)) {
      return finish(state.rules, [], [{ kind: 'unchanged', message: `${target.label} already has path rule ${describePathRule(pathRule)}; nothing changed.` }], warnings);
    }
    // A deny overwritten by a rule that leaves some of its methods out would send those methods on to
    // the shorter path rules and path_default: requests nobody asked to allow (allow / POST over
    // deny / would open GET /). Refused, as removing a deny's last path rule under deny-by-default is.
    const uncovered = before.action === 'deny' ? methodsLeftOut(before.methods, pathRule.methods) : [];
    if (uncovered.length) {
      return fail(
        `${target.label}: path rule ${describePathRule(before)} would be overwritten by ${describePathRule(pathRule)}, which leaves out ${uncovered.join(', ')}: ` +
          `those requests to '${pathRule.path}' would no longer be denied by it. Give --methods covering what it denies, or remove it first (remove with --path) if that is what you want.`,
      );
    }
    updated = withPathRules(base, replaceAt(pathRules, at, pathRule));
    change = { kind: index >= 0 ? 'updated' : 'added', message: `Updated path rule on ${target.label}: ${describePathRule(before)} → ${describePathRule(pathRule)}` };
  }
  if (pathRules.length === 0) {
    const pathDefault = updated.path_default ?? 'deny';
    warnings.push(
      pathDefault === 'deny'
        ? `${target.label} now has path rules and path_default deny: only requests that a path rule allows get through.`
        : `${target.label} now has path rules; other paths are allowed (path_default allow).`,
    );
  }
  if (index < 0 && project) warnings.push(`${target.label} was copied from the project file into the rule store, which now decides for it.`);
  const rules = index >= 0 ? replaceAt(state.rules, index, updated) : [...state.rules, updated];
  return finish(rules, [index >= 0 ? index : state.rules.length], [change], warnings);
}

export interface RemoveRequest {
  readonly dst: string;
  readonly proto?: string;
  readonly port?: string;
  /** Drop only the path rules whose `path` is exactly this string. */
  readonly path?: string;
}

/** `remove DOMAIN`: the whole entry. `remove DOMAIN --path P`: the path rules whose path is exactly P. */
export function removeRule(state: RuntimeState, request: RemoveRequest, context: OperationContext = {}): Outcome {
  const checked = checkTarget(request.dst, request.proto, request.port);
  if (!checked.target) return fail(...checked.errors);
  const target = checked.target;
  const warnings = [...checked.warnings];

  if (systemRuleWithKey(target.key)) return fail(`${target.label} is a built-in rule, which cannot be removed: Claude Code needs it.`);
  const index = indexOfKey(state, target.key);
  const project = projectRuleWithKey(context, target.key);
  if (index < 0) {
    if (project) return fail(`${target.label} comes from the project file, not from the rule store: remove it from the project file.`);
    const sameDst = state.rules.filter((r) => String(r.dst) === target.dst).map(describeStoredRule);
    const others = sameDst.length > 0 ? ` The store has: ${sameDst.join(', ')} (give --proto and --port to pick one).` : '';
    return fail(`there is no rule ${target.label} in the rule store.${others}`);
  }
  const rule = state.rules[index]!;

  if (request.path === undefined) {
    if (project) warnings.push(`${target.label} is also in the project file, so its rule there applies again.`);
    return finish(
      state.rules.filter((_, i) => i !== index),
      [],
      [{ kind: 'removed', message: `Removed ${describeStoredRule(rule)}` }],
      warnings,
    );
  }

  const pathRules = rule.path_rules ?? [];
  const kept = pathRules.filter((pr) => pr.path !== request.path);
  if (kept.length === pathRules.length) {
    const existing = pathRules.length > 0 ? `its path rules are ${[...new Set(pathRules.map((pr) => `'${pr.path}'`))].join(', ')}` : 'it has no path rules';
    return fail(`${target.label} has no path rule '${request.path}' (paths are matched exactly as stored): ${existing}.`);
  }
  const removed = pathRules.filter((pr) => pr.path === request.path);
  // Without path rules an entry allows every path: dropping the last one of a deny-by-default entry
  // would open paths nobody asked for. Refused; what the user may mean is said instead.
  if (kept.length === 0 && (rule.path_default ?? 'deny') === 'deny') {
    return fail(
      `'${request.path}' is the last path rule of ${target.label}: without path rules it would allow every path. ` +
        `Remove the whole rule (clawker firewall remove ${target.dst}${target.label.includes('https:443') ? '' : ' --proto … --port …'}) to block it, or add another path rule first.`,
    );
  }
  return finish(
    replaceAt(state.rules, index, withPathRules(rule, kept)),
    [index],
    removed.map((pr) => ({ kind: 'removed' as const, message: `Removed path rule ${describePathRule(pr)} from ${target.label}` })),
    warnings,
  );
}

/**
 * Merges a project rule into the stored rule with its key: the project file wins the action, the
 * path default and each path it lists (matched by exact path string, as the CLI does); path rules
 * only the store has stay (refresh never prunes).
 */
function mergeProjectRule(stored: StoredRule, project: StoredRule): StoredRule {
  const incoming = project.path_rules ?? [];
  let merged = [...(stored.path_rules ?? [])];
  for (const path of new Set(incoming.map((pr) => pr.path))) {
    const group = incoming.filter((pr) => pr.path === path);
    const at = merged.findIndex((pr) => pr.path === path);
    if (at < 0) merged.push(...group);
    else merged = [...merged.slice(0, at), ...group, ...merged.slice(at).filter((pr) => pr.path !== path)];
  }
  // The file's path_default comes with its path rules (toStoredRule drops it without them).
  return withPathRules({ ...stored, action: project.action }, merged, project.path_default ?? stored.path_default);
}

/**
 * `refresh`: adds the project file's rules that the store lacks and updates those it has. Never
 * removes anything: rules (and path rules) deleted from the file stay until removed explicitly.
 * `projectRules` are the file's rules after its own validation (`loadProject`).
 */
export function refreshFromProject(state: RuntimeState, projectRules: readonly NormalizedRule[]): Outcome {
  let rules = [...state.rules];
  const touched: number[] = [];
  const changes: Change[] = [];
  const projectKeys = new Set<string>();
  for (const projectRule of projectRules) {
    const key = ruleKey(projectRule);
    projectKeys.add(key);
    if (systemRuleWithKey(key)) continue; // validateFirewall already drops these; never store one
    const incoming = toStoredRule(projectRule);
    const label = describeRule(projectRule);
    const index = rules.findIndex((r) => keyOfStored(r) === key);
    if (index < 0) {
      touched.push(rules.length);
      rules.push(incoming);
      changes.push({ kind: 'added', message: `Added ${label}` });
      continue;
    }
    const merged = mergeProjectRule(rules[index]!, incoming);
    const projectPaths = new Set((incoming.path_rules ?? []).map((pr) => pr.path));
    for (const pr of rules[index]!.path_rules ?? []) {
      if (!projectPaths.has(pr.path)) changes.push({ kind: 'kept', message: `${label} keeps path rule ${describePathRule(pr)}, which is not in the project file` });
    }
    if (sameMerge(merged, rules[index]!)) {
      changes.push({ kind: 'unchanged', message: `${label} is up to date` });
      continue;
    }
    touched.push(index);
    rules = replaceAt(rules, index, merged);
    changes.push({ kind: 'updated', message: `Updated ${label}` });
  }
  for (const rule of rules) {
    const key = keyOfStored(rule);
    if (key !== undefined && !projectKeys.has(key)) changes.push({ kind: 'kept', message: `${describeStoredRule(rule)} is not in the project file and stays` });
  }
  return finish(rules, touched, changes, []);
}

/**
 * The rules in force. The store holds the live state (refresh copies the project file into it), so
 * for a key the store has, its rule replaces the project file's; otherwise system, project, runtime.
 */
export function effectivePolicy(projectRules: readonly NormalizedRule[], runtimeRules: readonly NormalizedRule[]): Policy {
  const stored = new Set(runtimeRules.map(ruleKey));
  return new Policy({ project: projectRules.filter((r) => !stored.has(ruleKey(r))), runtime: runtimeRules });
}
