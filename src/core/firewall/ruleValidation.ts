/**
 * Semantic validation of `security.firewall` beyond its schema: destinations, protocols, ports,
 * paths, methods and duplicates. Produces the normalised project rules, or errors that fail the
 * whole load (an invalid rule is never dropped or loosened silently).
 */
import type { Document } from 'yaml';
import { z } from 'zod';
import { type FirewallRule, firewallRuleSchema } from '../config/firewallSchema';
import { type Fix, type LineIndex, type Problem } from '../problems';
import { rangeAt, removeSeqItemEdit, replaceScalarEdit, type YamlPath } from '../yaml/document';
import { checkDestination, type Destination, formatDestination } from './destination';
import type { Checked, Finding } from './finding';
import { checkMethod, checkPath } from './pathMatch';
import { checkPort } from './port';
import { checkProtocol, HTTP_FAMILY } from './protocol';
import { type NormalizedPathRule, type NormalizedRule, ruleKey } from './rule';
import { SYSTEM_RULES } from './systemRules';

export interface SourceContext {
  /** May be a getter: it is read only to place a problem or build a fix. */
  readonly doc: Document.Parsed;
  readonly text: string;
  readonly lines: LineIndex;
}

export interface RuleValidationResult {
  /** Project rules in merge order, duplicates removed; empty when there is any error. */
  readonly rules: readonly NormalizedRule[];
  readonly problems: readonly Problem[];
}

const FIREWALL: YamlPath = ['security', 'firewall'];

class ProblemSink {
  readonly problems: Problem[] = [];
  errors = 0;

  constructor(readonly src: SourceContext) {}

  /** Places a field checker's findings at the value of `path`, turning `replaceWith` into an edit. */
  findings<T>(checked: Checked<T>, path: YamlPath): T | undefined {
    for (const f of checked.findings) this.add(f, path);
    return checked.value;
  }

  add(f: Finding, path: YamlPath, part: 'key' | 'value' = 'value', fixes: Fix[] = []): void {
    if (f.replaceWith) {
      const edit = replaceScalarEdit(this.src.doc, this.src.text, path, f.replaceWith.value);
      if (edit) fixes = [{ title: f.replaceWith.title, edits: [edit] }, ...fixes];
    }
    if (f.severity === 'error') this.errors++;
    this.problems.push({
      severity: f.severity,
      code: f.code,
      message: f.message,
      range: rangeAt(this.src.doc, path, part),
      ...(fixes.length ? { fixes } : {}),
    });
  }

  removeItemFix(path: YamlPath, title: string): Fix[] {
    const edit = removeSeqItemEdit(this.src.doc, this.src.text, path);
    return edit ? [{ title, edits: [edit] }] : [];
  }
}

function checkPathRules(rule: FirewallRule, rulePath: YamlPath, sink: ProblemSink): NormalizedPathRule[] | undefined {
  const out: NormalizedPathRule[] = [];
  let ok = true;
  const seen = new Map<string, number>();
  (rule.path_rules ?? []).forEach((pr, j) => {
    const prPath = [...rulePath, 'path_rules', j];
    const match = sink.findings(checkPath(pr.path), [...prPath, 'path']);
    const methods: string[] = [];
    (pr.methods ?? []).forEach((m, k) => {
      const method = sink.findings(checkMethod(m), [...prPath, 'methods', k]);
      // Stryker disable next-line BooleanLiteral: a method without a value always comes with an error finding, and checkRule discards a rule whose checks raised an error, so `ok` only changes path rules that are thrown away (kept as a second guard)
      if (method === undefined) ok = false;
      else if (!methods.includes(method)) methods.push(method);
    });
    if (match === undefined) {
      // Stryker disable next-line BooleanLiteral: a path without a value always comes with an error finding, and checkRule discards a rule whose checks raised an error, so `ok` only changes path rules that are thrown away (kept as a second guard)
      ok = false;
      return;
    }
    const identity = `${pr.path}\u0000${[...methods].sort().join(',')}`;
    const first = seen.get(identity);
    if (first !== undefined) {
      sink.add(
        { severity: 'warning', code: 'duplicate-path-rule', message: `path rule '${pr.path}' repeats path_rules[${first}] with the same methods; the first one listed wins, so this one never takes effect.` },
        [...prPath, 'path'],
        'value',
        sink.removeItemFix(prPath, 'Remove the duplicate path rule'),
      );
      return;
    }
    seen.set(identity, j);
    out.push({ path: pr.path, match, action: pr.action, methods });
  });
  return ok ? out : undefined;
}

function checkRule(rule: FirewallRule, written: Record<string, unknown>, rulePath: YamlPath, sink: ProblemSink): NormalizedRule | undefined {
  const errorsBefore = sink.errors;
  const dst = sink.findings(cidrFindings(checkDestination(rule.dst), rule.action === 'deny'), [...rulePath, 'dst']);
  const proto = sink.findings(checkProtocol(rule.proto), [...rulePath, 'proto']);
  const port = proto === undefined ? undefined : sink.findings(checkPort(rule.port, proto), [...rulePath, rule.port === undefined ? 'dst' : 'port']);
  const hasPathRules = written.path_rules !== undefined;
  const hasPathDefault = written.path_default !== undefined;

  let pathRules: NormalizedPathRule[] = [];
  if (proto !== undefined && !HTTP_FAMILY.has(proto)) {
    for (const key of ['path_rules', 'path_default'] as const) {
      if (key === 'path_rules' ? hasPathRules : hasPathDefault) {
        sink.add(
          { severity: 'warning', code: 'l7-fields-ignored', message: `'${key}' is ignored on '${proto}' rules: there is no HTTP request to match paths or methods against. Remove it, or use https/http/ws/wss.` },
          [...rulePath, key],
          'key',
        );
      }
    }
  } else {
    pathRules = checkPathRules(rule, rulePath, sink) ?? [];
    if (rule.action === 'deny' && hasPathRules) {
      sink.add(
        { severity: 'warning', code: 'deny-with-path-rules', message: "this rule denies the destination entirely, so its 'path_rules' never apply. To block only some paths, use 'action: allow' with deny path rules." },
        [...rulePath, 'path_rules'],
        'key',
      );
    } else if (hasPathDefault && (rule.path_rules ?? []).length === 0) {
      sink.add(
        {
          severity: 'warning',
          code: 'path-default-without-rules',
          message: `'path_default' has no effect without 'path_rules': every path of ${rule.dst} is allowed. Add path rules (e.g. '- path: /' with 'methods') to restrict it.`,
        },
        [...rulePath, 'path_default'],
        'key',
      );
    }
  }
  if (sink.errors > errorsBefore || dst === undefined || proto === undefined || port === undefined) return undefined;
  return { dst, proto, port, action: rule.action, pathRules, pathDefault: rule.path_default, origin: 'project' };
}

// Unknown keys are reported by the strict schema; here they are dropped so the rest is still checked.
const lenientRuleSchema = z.object(firewallRuleSchema.shape);

/** Whether two rules with the same key would enforce the same thing. */
function sameEffect(a: NormalizedRule, b: NormalizedRule): boolean {
  if (a.action !== b.action || a.pathRules.length !== b.pathRules.length) return false;
  if (a.pathRules.length > 0 && a.pathDefault !== b.pathDefault) return false;
  return a.pathRules.every((pr, i) => {
    const other = b.pathRules[i]!;
    return pr.path === other.path && pr.action === other.action && pr.methods.join() === other.methods.join();
  });
}

const listAt = (value: unknown, key: string): unknown[] => {
  const list = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return Array.isArray(list) ? list : [];
};

/**
 * A CIDR destination cannot be enforced yet. Ignoring an allow rule only blocks more, so it is a
 * warning; ignoring a deny rule would let through what the user denied, so that stays an error.
 */
function cidrFindings(checked: Checked<Destination>, deny: boolean): Checked<Destination> {
  const cidr = checked.findings.find((f) => f.code === 'dst-cidr');
  if (!cidr) return checked;
  return {
    findings: [
      deny
        ? { ...cidr, message: `${cidr.message} A deny rule that is not enforced would let that traffic through, so this file cannot be applied: list the addresses one by one.` }
        : { ...cidr, severity: 'warning', message: `${cidr.message} This allow rule is ignored, so that traffic stays blocked; list the addresses one by one to allow them.` },
    ],
  };
}

/**
 * Validates the firewall section and merges project rules after the system rules, deduplicated.
 * Takes the raw section so that every rule whose shape is valid is checked even when another rule
 * failed the schema: the user sees all problems at once. The schema reports the shapes themselves.
 */
export function validateFirewall(firewall: unknown, src: SourceContext): RuleValidationResult {
  const sink = new ProblemSink(src);
  const candidates: { rule: NormalizedRule; path: YamlPath }[] = [];

  listAt(firewall, 'add_domains').forEach((domain, i) => {
    if (typeof domain !== 'string') return;
    const path = [...FIREWALL, 'add_domains', i];
    const dst = sink.findings(cidrFindings(checkDestination(domain), false), path);
    if (dst) {
      candidates.push({
        rule: { dst, proto: 'https', port: { lo: 443, hi: 443 }, action: 'allow', pathRules: [], pathDefault: 'deny', origin: 'project' },
        path,
      });
    }
  });
  listAt(firewall, 'rules').forEach((raw, i) => {
    const parsed = lenientRuleSchema.safeParse(raw);
    if (!parsed.success) return;
    const path = [...FIREWALL, 'rules', i];
    const rule = checkRule(parsed.data, raw as Record<string, unknown>, path, sink);
    if (rule) candidates.push({ rule, path });
  });

  const seen = new Map<string, { path: YamlPath } | { system: NormalizedRule }>();
  for (const r of SYSTEM_RULES) seen.set(ruleKey(r), { system: r });
  const rules: NormalizedRule[] = [];
  for (const { rule, path } of candidates) {
    const key = ruleKey(rule);
    const first = seen.get(key);
    if (first === undefined) {
      seen.set(key, { path });
      rules.push(rule);
      continue;
    }
    const at = path[path.length - 2] === 'rules' ? [...path, 'dst'] : path;
    const fixes = sink.removeItemFix(path, 'Remove the duplicate rule');
    if ('system' in first && sameEffect(first.system, rule)) {
      sink.add({ severity: 'info', code: 'duplicate-rule', message: `${formatDestination(rule.dst)} is already allowed by a built-in rule; this entry can be removed.` }, at, 'value', fixes);
      continue;
    }
    const where =
      'system' in first
        ? `the built-in rule for ${formatDestination(rule.dst)}, which cannot be replaced`
        : `the rule at line ${src.lines.lineCol(rangeAt(src.doc, first.path).start).line}`;
    sink.add(
      { severity: 'warning', code: 'duplicate-rule', message: `'${key}' duplicates ${where}; rules are deduplicated by destination:protocol:port, so this later one is ignored.` },
      at,
      'value',
      fixes,
    );
  }
  return { rules: sink.errors > 0 ? [] : rules, problems: sink.problems };
}
