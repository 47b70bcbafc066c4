/**
 * Minimal, formatting-preserving edits to a `.clawker.yaml`: what the "allow this blocked domain"
 * quick fixes and learn mode apply. The edits are text insertions placed by the parsed document's
 * node ranges (src/core/yaml/yamlInsertion.ts), so comments and layout stay as the user wrote
 * them. Whether something is already allowed, and whether the edit allows it, is decided by the
 * real policy; an edit that would not load cleanly or would not allow the request is refused.
 */
import { isIPv4 } from 'node:net';
import { type Document, isMap, isSeq, parseDocument } from 'yaml';
import { checkDestination, formatDestination } from '../firewall/destination';
import { checkPort, formatPortRange } from '../firewall/port';
import { checkProtocol, DEFAULT_PORTS } from '../firewall/protocol';
import { type NormalizedRule, ruleKey } from '../firewall/rule';
import { type Decision, type EgressRequest, Policy } from '../policy/policy';
import { normalizeRequestPath } from '../policy/requestPath';
import { LineIndex, type Problem } from '../problems';
import { appendToSequence, formatScalar, type Fragment, type QuoteStyle, quoteStyleOf, scalar, YamlEditError, type YamlPath } from '../yaml/yamlInsertion';
import { loadProject } from './load';

/** A replacement of `length` characters at `offset` (UTF-16 code units, as VS Code counts). */
export interface TextEdit {
  readonly offset: number;
  readonly length: number;
  readonly text: string;
}

/** What to allow. */
export type AllowRequest =
  /** `add_domains: [domain]` (https on 443). */
  | { readonly kind: 'domain'; readonly domain: string }
  /** `add_domains: [.parent]`: the parent and every name below it. */
  | { readonly kind: 'wildcard'; readonly parent: string }
  /** A `rules` entry (or a path rule on the domain's existing entry) allowing only this path, and this method when given. */
  | { readonly kind: 'path'; readonly domain: string; readonly path: string; readonly method?: string; readonly proto?: 'https' | 'http'; readonly port?: number };

export interface ProjectEdit {
  /** Edits to apply to the original text, in order, non-overlapping. Empty when `already`. */
  readonly edits: readonly TextEdit[];
  /** The whole file after the edits. */
  readonly text: string;
  /** The file already allows it (nothing to do). */
  readonly already: boolean;
  /** One line for people: "add github.com to security.firewall.add_domains". */
  readonly description: string;
}

const FIREWALL = ['security', 'firewall'] as const;

/** Applies edits given against `text`, in order and non-overlapping (as allowInProject returns them). */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  let out = '';
  let at = 0;
  for (const e of edits) {
    if (e.offset < at || e.length < 0 || e.offset + e.length > text.length) {
      throw new RangeError(`text edit at ${e.offset} (+${e.length}) overlaps an earlier edit or lies outside the text`);
    }
    out += text.slice(at, e.offset) + e.text;
    at = e.offset + e.length;
  }
  return out + text.slice(at);
}

// ---- public suffixes ------------------------------------------------------------------------------

/**
 * Names under which every child belongs to someone else, so a wildcard on them would allow
 * strangers' sites: common second-level country suffixes and shared hosting domains. A short
 * built-in excerpt of the Public Suffix List (publicsuffix.org), not all of it: a name missing here
 * that is a public suffix gets a wildcard offered one label too high.
 */
const MULTI_LABEL_SUFFIXES: ReadonlySet<string> = new Set(
  [
    'co.uk org.uk me.uk ltd.uk plc.uk net.uk ac.uk gov.uk nhs.uk sch.uk',
    'com.au net.au org.au edu.au gov.au id.au co.nz net.nz org.nz govt.nz ac.nz',
    'co.jp ne.jp or.jp ac.jp go.jp co.kr or.kr ne.kr go.kr com.cn net.cn org.cn gov.cn edu.cn',
    'com.hk com.sg com.tw com.my co.in net.in org.in gov.in ac.in co.id or.id com.vn com.ph com.pk co.th in.th',
    'com.br net.br org.br gov.br com.mx com.ar com.co com.pe com.uy com.tr com.ua co.il org.il ac.il com.pl',
    'co.za org.za com.ng co.ke com.eg com.sa',
    'github.io githubusercontent.com gitlab.io herokuapp.com appspot.com cloudfront.net elasticbeanstalk.com',
    'azurewebsites.net cloudapp.net blob.core.windows.net web.app firebaseapp.com netlify.app vercel.app',
    'pages.dev workers.dev fly.dev onrender.com ngrok.io ngrok-free.app blogspot.com readthedocs.io trycloudflare.com',
  ].flatMap((line) => line.split(' ')),
);
/** Domains every name below which counts as a public suffix (conservative: the list has many of them). */
const SUFFIX_FAMILIES: readonly string[] = ['amazonaws.com'];

/** A top-level domain, a listed suffix, or a family's root: never allowed as a wildcard. */
function isPublicSuffix(name: string): boolean {
  return !name.includes('.') || MULTI_LABEL_SUFFIXES.has(name) || SUFFIX_FAMILIES.includes(name);
}

/** The wildcard a quick fix may offer for a name (`api.foo.com` → `.foo.com`), or undefined (TLDs, public suffixes). */
export function wildcardParentOf(domain: string): string | undefined {
  const dst = checkDestination(domain.trim().replace(/^\./, '')).value;
  if (dst?.kind !== 'domain') return undefined;
  const name = dst.name;
  if (isPublicSuffix(name)) return undefined;
  const parent = name.slice(name.indexOf('.') + 1);
  const parentShared = isPublicSuffix(parent) || SUFFIX_FAMILIES.some((f) => parent.endsWith(`.${f}`));
  return `.${parentShared ? name : parent}`;
}

// ---- what the file already allows ------------------------------------------------------------------

const ruleWords = (rule: NormalizedRule): string => `${formatDestination(rule.dst)} ${rule.proto}:${formatPortRange(rule.port)}`;

/** `api.x.com` (lower-case ASCII) or an IPv4 address; throws on a wildcard or something else. */
function hostName(raw: string): string {
  const dst = checkDestination(raw.trim()).value;
  if (!dst || (dst.kind === 'domain' && dst.wildcard)) throw new Error(`'${raw}' is not a host name or IPv4 address`);
  return formatDestination(dst);
}

/** The policy request a path or domain request stands for. */
function egressRequest(request: Exclude<AllowRequest, { kind: 'wildcard' }>, host: string, path: string): EgressRequest {
  if (request.kind === 'domain') return { transport: 'https', host, port: 443, path: '/', method: 'GET' };
  const transport = request.proto ?? 'https';
  return { transport, host, port: request.port ?? DEFAULT_PORTS[transport]!, path, ...(request.method ? { method: request.method } : {}) };
}

/** The wildcard rule that already allows every https path under `.parent`, if any. */
function coveringWildcard(policy: Policy, parent: string): NormalizedRule | undefined {
  return policy.rules.find(
    (r) =>
      r.dst.kind === 'domain' &&
      r.dst.wildcard &&
      (parent === r.dst.name || parent.endsWith(`.${r.dst.name}`)) &&
      r.proto === 'https' &&
      r.port.lo <= 443 &&
      r.port.hi >= 443 &&
      r.action === 'allow' &&
      r.pathRules.length === 0,
  );
}

/** Whether the policy allows it: a domain on every path, a path as asked. Undefined when not. */
function allowedBy(policy: Policy, request: AllowRequest, host: string, path: string): Decision | NormalizedRule | undefined {
  if (request.kind === 'wildcard') return coveringWildcard(policy, host);
  const decision = policy.decide(egressRequest(request, host, path));
  if (decision.verdict !== 'allow') return undefined;
  if (request.kind === 'domain' && (decision.rule?.pathRules.length ?? 0) > 0) return undefined;
  return decision;
}

// ---- where the new text goes ------------------------------------------------------------------------

interface Plan {
  readonly path: YamlPath;
  readonly item: Fragment;
  readonly description: string;
}

/** The quoting of the file's own entries, so new ones look like their neighbours. */
function styleNear(doc: Document.Parsed, ...candidates: YamlPath[]): QuoteStyle {
  for (const path of candidates) {
    const style = quoteStyleOf(doc.getIn(path, true));
    if (style) return style;
  }
  return 'plain';
}

const lastIndex = (doc: Document.Parsed, path: YamlPath): number => {
  const seq = doc.getIn(path, true);
  return isSeq(seq) ? seq.items.length - 1 : -1;
};

/** The index in `rules` of the first entry with this rule key (the one that wins), or -1. */
function rulesEntryIndex(doc: Document.Parsed, key: string): number {
  const seq = doc.getIn([...FIREWALL, 'rules'], true);
  if (!isSeq(seq)) return -1;
  return seq.items.findIndex((item) => {
    if (!isMap(item)) return false;
    const raw = item.toJS(doc) as Record<string, unknown>;
    if (typeof raw.dst !== 'string') return false;
    const dst = checkDestination(raw.dst).value;
    const proto = checkProtocol(typeof raw.proto === 'string' ? raw.proto : 'https').value;
    const port = proto === undefined ? undefined : checkPort(raw.port as string | number | undefined, proto).value;
    return dst !== undefined && proto !== undefined && port !== undefined && ruleKey({ dst, proto, port }) === key;
  });
}

function pathRuleFragment(path: string, method: string | undefined, style: QuoteStyle): Fragment {
  return {
    kind: 'map',
    entries: [
      ['path', scalar(formatScalar(path, style))],
      ['action', scalar('allow')],
      ...(method ? [['methods', { kind: 'seq', flow: true, items: [scalar(formatScalar(method))] }] as const] : []),
    ],
  };
}

function planDomain(doc: Document.Parsed, host: string): Plan {
  const list = [...FIREWALL, 'add_domains'];
  const style = styleNear(doc, [...list, lastIndex(doc, list)], [...FIREWALL, 'rules', 0, 'dst']);
  return { path: list, item: scalar(formatScalar(host, style)), description: `add ${host} to security.firewall.add_domains` };
}

function planWildcard(doc: Document.Parsed, name: string): Plan {
  const list = [...FIREWALL, 'add_domains'];
  const style = styleNear(doc, [...list, lastIndex(doc, list)], [...FIREWALL, 'rules', 0, 'dst']);
  return {
    path: list,
    item: scalar(formatScalar(`.${name}`, style)),
    description: `add .${name} to security.firewall.add_domains (${name} and every name below it)`,
  };
}

function planPath(doc: Document.Parsed, policy: Policy, request: Extract<AllowRequest, { kind: 'path' }>, req: EgressRequest): Plan {
  const what = `${request.method ? `${request.method} ` : ''}${req.path} on ${req.host}`;
  const proto = req.transport;
  const defaultPort = DEFAULT_PORTS[proto];
  const key = ruleKey({ dst: checkDestination(req.host).value!, proto, port: { lo: req.port, hi: req.port } });
  const governing = policy.ruleFor(req);
  if (governing && governing.pathRules.length > 0) {
    if (ruleKey(governing) !== key) {
      throw new Error(
        `${req.host} is governed by the rule for ${ruleWords(governing)}, which has path rules: a separate rule for ${req.host} would replace them for it. Add the path to that rule instead.`,
      );
    }
    const index = rulesEntryIndex(doc, key);
    const pathRules = [...FIREWALL, 'rules', index, 'path_rules'];
    if (index < 0 || !isSeq(doc.getIn(pathRules, true))) {
      throw new Error(`the path rules of ${ruleWords(governing)} do not come from a 'path_rules' list of its own (a merge key?); add the path there by hand`);
    }
    const style = styleNear(doc, [...pathRules, lastIndex(doc, pathRules), 'path'], [...FIREWALL, 'rules', index, 'dst']);
    return { path: pathRules, item: pathRuleFragment(req.path!, request.method, style), description: `allow ${what} (a path rule on its rules entry)` };
  }
  const style = styleNear(doc, [...FIREWALL, 'rules', 0, 'dst'], [...FIREWALL, 'add_domains', 0]);
  const entry: Fragment = {
    kind: 'map',
    entries: [
      ['dst', scalar(formatScalar(req.host, style))],
      ['proto', scalar(proto)],
      ...(req.port !== defaultPort ? [['port', scalar(`"${req.port}"`)] as const] : []),
      ['action', scalar('allow')],
      ['path_rules', { kind: 'seq', items: [pathRuleFragment(req.path!, request.method, style)] }],
      ['path_default', scalar('deny')],
    ],
  };
  return { path: [...FIREWALL, 'rules'], item: entry, description: `add a rules entry allowing only ${what}` };
}

// ---- allowInProject ---------------------------------------------------------------------------------

function firstError(text: string, problems: readonly Problem[]): string {
  const p = problems.find((x) => x.severity === 'error') ?? problems[0];
  if (!p) return 'unknown error';
  return `line ${new LineIndex(text).lineCol(p.range.start).line}: ${p.message}`;
}

/** Refuses requests the project file cannot grant by adding something: built-in and deny rules decide them. */
function checkGrantable(policy: Policy, request: AllowRequest, req: EgressRequest): void {
  if (!isIPv4(req.host)) {
    const dns = policy.resolve(req.host);
    if (dns.verdict === 'nxdomain' && dns.rule) {
      throw new Error(`${req.host} is denied by the ${dns.rule.origin} rule for ${ruleWords(dns.rule)}; change or remove that rule to allow it`);
    }
  }
  const governing = policy.ruleFor(req);
  if (!governing) return;
  if (governing.action === 'deny') throw new Error(`${req.host} is denied by the ${governing.origin} rule for ${ruleWords(governing)}; change or remove that rule to allow it`);
  if (governing.origin === 'system' && governing.pathRules.length > 0) {
    throw new Error(`${req.host} is governed by the built-in rule for ${ruleWords(governing)}, whose path rules a project cannot change`);
  }
  if (request.kind === 'domain' && governing.pathRules.length > 0 && ruleKey(governing) === `${req.host}:https:443`) {
    throw new Error(`${req.host} has a rules entry with path_rules, which allows only some paths; add paths to it, or remove its path_rules to allow every path`);
  }
}

interface Target {
  /** The host, or for a wildcard the name after the dot. */
  readonly host: string;
  /** What the policy is asked for a domain or a path. */
  readonly req?: EgressRequest;
}

/** Validates the request itself, whatever the file says. */
function targetOf(request: AllowRequest): Target {
  if (request.kind === 'wildcard') {
    const dst = checkDestination(`.${request.parent.trim().replace(/^\./, '')}`);
    if (!dst.value || dst.value.kind !== 'domain') throw new Error(dst.findings[0]?.message ?? `'${request.parent}' is not a domain name`);
    const host = dst.value.name;
    if (isPublicSuffix(host)) throw new Error(`.${host} would allow every site under the public suffix ${host}; name a registered domain`);
    return { host };
  }
  const host = hostName(request.domain);
  let path = '/';
  if (request.kind === 'path') {
    const normalized = normalizeRequestPath(request.path);
    if (!normalized.ok) throw new Error(`the proxy refuses this request whatever the rules: ${normalized.reason}`);
    path = normalized.path;
  }
  return { host, req: egressRequest(request, host, path) };
}

function editTowards(doc: Document.Parsed, text: string, policy: Policy, request: AllowRequest, { host, req }: Target): ProjectEdit {
  const path = req?.path ?? '/';
  const already = allowedBy(policy, request, host, path);
  if (already) {
    const by = 'reason' in already ? already.reason : `allowed by the ${already.origin} rule for ${ruleWords(already)}`;
    const what = request.kind === 'wildcard' ? `.${host}` : request.kind === 'path' ? `${request.method ? `${request.method} ` : ''}${path} on ${host}` : host;
    return { edits: [], text, already: true, description: `${what} is already allowed (${by})` };
  }

  if (req) checkGrantable(policy, request, req);
  const plan = request.kind === 'wildcard' ? planWildcard(doc, host) : request.kind === 'domain' ? planDomain(doc, host) : planPath(doc, policy, request, req!);
  let edits: TextEdit[];
  try {
    edits = appendToSequence(doc, text, plan.path, plan.item);
  } catch (e) {
    if (e instanceof YamlEditError) throw new Error(`cannot ${plan.description}: ${e.message} in .clawker.yaml`);
    throw e;
  }
  const result = applyTextEdits(text, edits);

  // Never hand back a file that would not load, or an edit that does not do what it says.
  const after = loadProject(result);
  if (after.failed) throw new Error(`could not ${plan.description}: the file would not load (${firstError(result, after.problems)})`);
  const afterPolicy = new Policy({ project: after.rules });
  if (!allowedBy(afterPolicy, request, host, path)) {
    const reason = req ? afterPolicy.decide(req).reason : 'another rule takes precedence';
    throw new Error(`could not ${plan.description}: it would still be blocked (${reason})`);
  }
  return { edits, text: result, already: false, description: plan.description };
}

export function allowInProject(text: string, request: AllowRequest): ProjectEdit {
  const doc = parseDocument(text, { keepSourceTokens: true, uniqueKeys: true, merge: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new Error(`.clawker.yaml does not parse (${doc.errors[0]!.message.split('\n')[0]}); fix the YAML first`);
  const target = targetOf(request);
  // A file that loads with errors applies none of its rules. The edit may be what fixes it (an
  // empty `add_domains:`), so it is tried, and kept only if the result loads cleanly.
  const loaded = loadProject(text);
  try {
    return editTowards(doc, text, new Policy({ project: loaded.rules }), request, target);
  } catch (e) {
    if (!loaded.failed) throw e;
    throw new Error(`.clawker.yaml has errors, so none of its rules apply; fix them first (${firstError(text, loaded.problems)})`);
  }
}
