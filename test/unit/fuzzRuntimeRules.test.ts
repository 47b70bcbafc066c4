/**
 * Property-based fuzzing of the runtime rules: random sequences of `firewall add / remove /
 * refresh` as the pure operations (core/firewall/runtimeRules) and, fewer, as the real CLI bundle.
 * Properties: nothing throws; a failed operation leaves the state as it was; every state checks;
 * the CLI exits 0, 1 or 2 and never with a stack trace; and the store never widens: the policy in
 * force allows only what some successful operation (or the project file) asked for, judged by an
 * oracle written here from the spec, not from Policy's code. Bounded: fixed run counts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildSync } from 'esbuild';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadProject } from '../../src/core/config/load';
import {
  type AddRequest,
  addRule,
  checkState,
  EMPTY_STATE,
  effectivePolicy,
  type Outcome,
  refreshFromProject,
  type RemoveRequest,
  removeRule,
  type RuntimeState,
} from '../../src/core/firewall/runtimeRules';
import type { NormalizedRule } from '../../src/core/firewall/rule';
import type { EgressRequest } from '../../src/core/policy/policy';

// ---- what the operations are made of ---------------------------------------------------------

/** Names under a zone no built-in rule covers, so whatever is allowed there was asked for. */
const ZONE = 'fuzz.test';
const NAMES = [`a.${ZONE}`, `api.a.${ZONE}`, `b.${ZONE}`, ZONE];
const IPS = ['10.0.0.1', '10.0.0.2'];
const BAD_DESTINATIONS = ['bad name', 'a..b', `*.${ZONE}`, '300.1.1.1', '10.0.0.0/8', '::1', 'é.test', `API.A.${ZONE.toUpperCase()}`, 'api.anthropic.com'];
const PATHS = ['/', '/v1', '/v1/', '/v1/x', '/a', '/exact', '/b'];
const METHODS = ['GET', 'POST', 'HEAD'];
const PORTS = [22, 80, 443, 5432, 8050];
const TRANSPORTS: EgressRequest['transport'][] = ['https', 'http', 'wss', 'ws', 'tcp', 'udp'];

const dstArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NAMES, ...IPS) },
  { weight: 2, arbitrary: fc.constantFrom(...NAMES).map((n) => `.${n}`) },
  { weight: 1, arbitrary: fc.constantFrom(...BAD_DESTINATIONS) },
);
const protoArb = fc.option(fc.constantFrom('https', 'http', 'ws', 'wss', 'ssh', 'tcp', 'udp', 'tls', 'git', 'bad proto', ''), { nil: undefined });
const portArb = fc.option(fc.constantFrom('443', '80', '22', '5432', '8000-8100', '0', '70000', 'abc', '100-50'), { nil: undefined });
const pathArb = fc.constantFrom('/', '/v1', '/v1/x', '/a', '~/exact', '~/v1/?', 'nolead', '~(', '');
const methodsArb = fc.option(fc.subarray(['GET', 'POST', 'HEAD', 'get', 'B@D'], { minLength: 1 }), { nil: undefined });

type Op =
  | { readonly verb: 'add'; readonly request: AddRequest }
  | { readonly verb: 'remove'; readonly request: RemoveRequest }
  | { readonly verb: 'refresh' };

const strip = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const addArb: fc.Arbitrary<Op> = fc
  .record({
    dst: dstArb,
    proto: protoArb,
    port: portArb,
    pathRule: fc.option(fc.record({ path: pathArb, action: fc.constantFrom('allow', 'deny', 'Allow', 'maybe'), methods: methodsArb }).map(strip), { nil: undefined }),
  })
  .map((request) => ({ verb: 'add' as const, request: strip(request) }));
const removeArb: fc.Arbitrary<Op> = fc
  .record({ dst: dstArb, proto: protoArb, port: portArb, path: fc.option(pathArb, { nil: undefined }) })
  .map((request) => ({ verb: 'remove' as const, request: strip(request) }));
const opArb: fc.Arbitrary<Op> = fc.oneof({ weight: 5, arbitrary: addArb }, { weight: 3, arbitrary: removeArb }, { weight: 1, arbitrary: fc.constant({ verb: 'refresh' as const }) });

/** A small project file of rules in the same space (no bad ones: a failed file has no rules). */
const projectArb = fc.array(
  fc.record(
    {
      dst: fc.oneof(fc.constantFrom(...NAMES, ...IPS), fc.constantFrom(...NAMES).map((n) => `.${n}`)),
      proto: fc.constantFrom('https', 'http', 'ssh'),
      action: fc.constantFrom('allow', 'deny'),
      path_rules: fc.array(fc.record({ path: fc.constantFrom('/', '/v1', '/a'), action: fc.constantFrom('allow', 'deny') }), { minLength: 1, maxLength: 2 }),
      path_default: fc.constantFrom('allow', 'deny'),
    },
    { requiredKeys: ['dst', 'proto'] },
  ),
  { maxLength: 3 },
);
type ProjectRule = { dst: string; proto: string; action?: string; path_rules?: { path: string; action: string }[]; path_default?: string };
const projectYaml = (rules: readonly ProjectRule[]): string => stringify({ security: { firewall: { rules } } });

// ---- the oracle: what was asked for ------------------------------------------------------------

/** One thing asked for: allow `dst`/`proto`/`port`, on every path or on one path rule's paths. */
interface Ask {
  readonly dst: string;
  readonly proto: string;
  readonly port?: string;
  readonly path?: { readonly path: string; readonly methods?: readonly string[] };
  /** Only what a project rule's path_default allow opens: paths no deny path rule of it names. */
  readonly exceptPaths?: readonly string[];
}

const DEFAULT_PORTS: Record<string, number> = { https: 443, wss: 443, http: 80, ws: 80, ssh: 22 };
const WEB = ['https', 'http', 'ws', 'wss'];
const normProto = (p: string | undefined): string => {
  const v = (p ?? 'https').trim().toLowerCase();
  return v === 'tls' || v === '' ? 'https' : v;
};

function hostMatches(dst: string, host: string): boolean {
  const d = dst.toLowerCase();
  if (!d.startsWith('.')) return d === host;
  return host === d.slice(1) || host.endsWith(d);
}

function carries(proto: string, transport: EgressRequest['transport']): boolean {
  if (transport === 'https') return proto === 'https' || proto === 'wss';
  if (transport === 'http') return proto === 'http' || proto === 'ws';
  if (transport === 'wss' || transport === 'ws' || transport === 'udp') return proto === transport;
  return !WEB.includes(proto) && proto !== 'udp';
}

function portMatches(ask: Ask, port: number): boolean {
  if (ask.port === undefined) return DEFAULT_PORTS[ask.proto] === port;
  const [lo, hi = lo] = ask.port.split('-').map(Number);
  return port >= lo! && port <= hi!;
}

function pathMatches(pattern: string, path: string): boolean {
  if (pattern === '~/exact') return path === '/exact';
  if (pattern === '~/v1/?') return path === '/v1' || path === '/v1/';
  return path.startsWith(pattern);
}

function askAllows(ask: Ask, r: EgressRequest): boolean {
  if (!hostMatches(ask.dst, r.host) || !carries(ask.proto, r.transport) || !portMatches(ask, r.port)) return false;
  if (!WEB.includes(ask.proto)) return true;
  if (ask.exceptPaths?.some((p) => pathMatches(p, r.path!))) return false;
  if (!ask.path) return true;
  const methods = ask.path.methods?.map((m) => m.toUpperCase());
  return pathMatches(ask.path.path, r.path!) && (methods === undefined || methods.includes(r.method!));
}

/** What a project rule asks for: each allow path rule, its path_default allow, or all paths. */
function projectAsks(rules: readonly ProjectRule[]): Ask[] {
  return rules.flatMap((rule): Ask[] => {
    if ((rule.action ?? 'allow') !== 'allow') return [];
    const base = { dst: rule.dst, proto: normProto(rule.proto) };
    const pathRules = rule.path_rules ?? [];
    if (!WEB.includes(base.proto) || pathRules.length === 0) return [base];
    const allowed = pathRules.filter((pr) => pr.action === 'allow').map((pr): Ask => ({ ...base, path: { path: pr.path } }));
    const rest: Ask[] = rule.path_default === 'allow' ? [{ ...base, exceptPaths: pathRules.filter((pr) => pr.action === 'deny').map((pr) => pr.path) }] : [];
    return [...allowed, ...rest];
  });
}

/**
 * What a successful operation asked to allow: a deny path rule asks for nothing, nor does a remove,
 * except `remove --path` of a deny path rule under path_default allow, which asks for its path.
 */
function opAsks(op: Op, project: readonly ProjectRule[], before: RuntimeState = EMPTY_STATE, after: RuntimeState = EMPTY_STATE): Ask[] {
  if (op.verb === 'refresh') return projectAsks(project);
  if (op.verb === 'remove') {
    if (op.request.path === undefined) return [];
    return before.rules.flatMap((rule, i): Ask[] => {
      const dropped = (rule.path_rules ?? []).length - (after.rules[i]?.path_rules ?? []).length;
      if (dropped === 0 || rule.path_default !== 'allow') return [];
      return (rule.path_rules ?? [])
        .filter((pr) => pr.path === op.request.path && pr.action === 'deny')
        .map((pr) => ({ dst: rule.dst, proto: rule.proto, port: rule.port, path: { path: pr.path, ...(pr.methods ? { methods: pr.methods } : {}) } }));
    });
  }
  const { dst, proto, port, pathRule } = op.request;
  const base = { dst, proto: normProto(proto), ...(port !== undefined ? { port } : {}) };
  if (!pathRule) return [base];
  if (pathRule.action.toLowerCase() !== 'allow') return [];
  return [{ ...base, path: { path: pathRule.path, ...(pathRule.methods ? { methods: pathRule.methods } : {}) } }];
}

const requestArb: fc.Arbitrary<EgressRequest> = fc.record({
  transport: fc.constantFrom(...TRANSPORTS),
  host: fc.oneof(fc.constantFrom(...NAMES, ...IPS), fc.constantFrom(...NAMES).map((n) => `deep.${n}`)),
  port: fc.constantFrom(...PORTS),
  path: fc.constantFrom(...PATHS),
  method: fc.constantFrom(...METHODS),
});

/** Requests aimed at what the operations named, so allowed requests are common. */
function aimedRequests(ops: readonly Op[], paths: readonly string[]): EgressRequest[] {
  const transportOf: Record<string, EgressRequest['transport']> = { https: 'https', http: 'http', ws: 'ws', wss: 'wss', udp: 'udp' };
  return ops.flatMap((op, i) => {
    if (op.verb !== 'add') return [];
    const { dst, proto, port } = op.request;
    const p = normProto(proto);
    const host = dst.toLowerCase().replace(/^\./, i % 2 ? 'deep.' : '');
    if (!host.endsWith(ZONE) && !IPS.includes(host)) return []; // built-in names are allowed by the system rules
    const portNumber = port === undefined ? (DEFAULT_PORTS[p] ?? 443) : Number(port.split('-')[0]);
    if (!Number.isInteger(portNumber)) return []; // a port that failed to parse; no request carries one
    return paths.map((path, k) => ({ transport: transportOf[p] ?? 'tcp', host, port: portNumber, path, method: METHODS[(i + k) % METHODS.length]! }));
  });
}

function allowedBeyondAsked(policyRules: readonly NormalizedRule[], projectRules: readonly NormalizedRule[], asks: readonly Ask[], requests: readonly EgressRequest[]): { request: EgressRequest; reason: string }[] {
  const policy = effectivePolicy(projectRules, policyRules);
  return requests.flatMap((request) => {
    const d = policy.decide(request);
    return d.verdict === 'allow' && !asks.some((a) => askAllows(a, request)) ? [{ request, reason: d.reason }] : [];
  });
}

// ---- running a sequence through the pure operations -----------------------------------------

function apply(state: RuntimeState, op: Op, projectRules: readonly NormalizedRule[]): Outcome {
  const context = { projectRules };
  if (op.verb === 'add') return addRule(state, op.request, context);
  if (op.verb === 'remove') return removeRule(state, op.request, context);
  return refreshFromProject(state, projectRules);
}

/**
 * Found by this file: `remove --path` that removed an entry's last path rule left a plain rule,
 * which allows every path (an entry made by `add --path /v1 --action allow` then allowed `/b`).
 * runtimeRules now refuses that for a deny-by-default entry; with `path_default: allow` the entry
 * allowed every other path already, so emptying it is what was asked. Kept as a counter: the
 * strict property below must judge such sequences too.
 */
const emptiesAnEntry = (op: Op, before: RuntimeState, after: RuntimeState): boolean =>
  op.verb === 'remove' && op.request.path !== undefined && after.rules.length === before.rules.length && after.rules.some((r, i) => (before.rules[i]!.path_rules?.length ?? 0) > 0 && !r.path_rules);

interface SequenceResult {
  readonly state: RuntimeState;
  readonly asks: Ask[];
  readonly emptied: boolean;
}

function runSequence(ops: readonly Op[], project: readonly ProjectRule[], projectRules: readonly NormalizedRule[]): SequenceResult {
  let state: RuntimeState = EMPTY_STATE;
  const asks = projectAsks(project); // the project file's rules are in force from the start
  let emptied = false;
  for (const op of ops) {
    const before = state;
    const outcome = apply(state, op, projectRules);
    if (!outcome.ok) {
      assert.ok(outcome.errors.length > 0, 'a failed operation says why');
      continue; // the caller keeps `before`: nothing changed
    }
    assert.ok(!checkState(outcome.state).failed, `the state after ${JSON.stringify(op)} checks`);
    emptied ||= emptiesAnEntry(op, before, outcome.state);
    asks.push(...opAsks(op, project, state, outcome.state));
    state = outcome.state;
  }
  return { state, asks, emptied };
}

describe('runtime rule operations (pure)', () => {
  test('random operations never throw, and the store allows nothing no operation asked for', () => {
    let judged = 0;
    let allowed = 0;
    fc.assert(
      fc.property(projectArb, fc.array(opArb, { minLength: 1, maxLength: 8 }), fc.array(requestArb, { minLength: 10, maxLength: 10 }), (project, ops, random) => {
        const loaded = loadProject(projectYaml(project));
        if (loaded.failed) return; // e.g. path rules on ssh: the CLI then uses no project rules
        const { state, asks } = runSequence(ops, project, loaded.rules);
        judged++;
        const runtime = checkState(state).rules;
        const requests = [...random, ...aimedRequests(ops, PATHS)];
        const policy = effectivePolicy(loaded.rules, runtime);
        allowed += requests.filter((r) => policy.decide(r).verdict === 'allow').length;
        const beyond = allowedBeyondAsked(runtime, loaded.rules, asks, requests);
        assert.deepEqual(beyond, [], `${JSON.stringify(ops)}\nproject ${JSON.stringify(project)}\nstate ${JSON.stringify(state)}`);
      }),
      { numRuns: 800 },
    );
    assert.ok(judged > 400, `only ${judged} sequences were judged`);
    assert.ok(allowed > 1000, `only ${allowed} allowed requests were checked`);
  });

  test('a failed operation returns errors and no state; the input state is never mutated', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 6 }), (ops) => {
        let state: RuntimeState = EMPTY_STATE;
        for (const op of ops) {
          const snapshot = JSON.stringify(state);
          const outcome = apply(state, op, []);
          assert.equal(JSON.stringify(state), snapshot, 'the operation did not touch its input');
          if (outcome.ok) state = outcome.state;
          else assert.equal('state' in outcome, false);
        }
      }),
      { numRuns: 600 },
    );
  });

  test(
    'removing the last path rule of an entry does not open every path',
    () => {
      const ops: Op[] = [
        { verb: 'add', request: { dst: `a.${ZONE}`, pathRule: { path: '/v1', action: 'allow' } } },
        { verb: 'add', request: { dst: `a.${ZONE}`, pathRule: { path: '/a', action: 'allow' } } },
        { verb: 'remove', request: { dst: `a.${ZONE}`, path: '/a' } },
        { verb: 'remove', request: { dst: `a.${ZONE}`, path: '/v1' } },
      ];
      const { state, asks } = runSequence(ops, [], []);
      const request: EgressRequest = { transport: 'https', host: `a.${ZONE}`, port: 443, path: '/b', method: 'POST' };
      assert.deepEqual(allowedBeyondAsked(checkState(state).rules, [], asks, [request]), []);
    },
  );
});

// ---- the same through the CLI ----------------------------------------------------------------

const ROOT = join(__dirname, '..', '..');
const made: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-fuzz-cli-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

let CLI = '';
/** Each CLI property stops starting new runs after this long (a run spawns node once per command). */
const CLI_BUDGET_MS = 4000;
before(() => {
  CLI = join(tempDir(), 'cli.js');
  buildSync({ entryPoints: [join(ROOT, 'src', 'cli', 'main.ts')], bundle: true, platform: 'node', target: 'node20', format: 'cjs', outfile: CLI, logLevel: 'error', external: ['*.node'] });
});

function argvOf(op: Op): string[] {
  if (op.verb === 'refresh') return ['firewall', 'refresh'];
  const { dst, proto, port } = op.request;
  const common = [dst, ...(proto !== undefined ? ['--proto', proto] : []), ...(port !== undefined ? ['--port', port] : [])];
  if (op.verb === 'remove') return ['firewall', 'remove', ...common, ...(op.request.path !== undefined ? ['--path', op.request.path] : [])];
  const pr = op.request.pathRule;
  return ['firewall', 'add', ...common, ...(pr ? ['--path', pr.path, '--action', pr.action, ...(pr.methods ? ['--methods', pr.methods.join(',')] : [])] : [])];
}

/** Words that make argument parsing work: flags without values, unknown flags, `--`, odd text. */
const WORDS = ['add', 'remove', 'refresh', '--proto', '--port', '--path', '--action', '--methods', '--store', '--json', '--bogus', '--', '-', '', 'a.fuzz.test', '.b.fuzz.test', '10.0.0.1', '/v1', '~(', 'allow', 'GET,,POST', '443', '-1', '1e3', 'x'.repeat(300), 'é', '\t'];
const wordsArb = fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...WORDS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }), { minLength: 0, maxLength: 7 });

function cliWorkspace(project: readonly ProjectRule[]) {
  const cwd = tempDir();
  writeFileSync(join(cwd, '.clawker.yaml'), projectYaml(project));
  const env = { ...process.env, CLAWKER_DATA_DIR: join(cwd, 'data'), XDG_DATA_HOME: join(cwd, 'xdg') };
  const run = (args: readonly string[]) => spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 20_000 });
  const storeFile = join(cwd, 'data', 'firewall', 'rules.json');
  const stored = (): RuntimeState => (existsSync(storeFile) ? (JSON.parse(readFileSync(storeFile, 'utf8')) as RuntimeState) : EMPTY_STATE);
  return { run, stored };
}

function assertCleanExit(args: readonly string[], r: ReturnType<typeof spawnSync>): void {
  const stderr = String(r.stderr);
  assert.ok(r.status === 0 || r.status === 1 || r.status === 2, `clawker ${JSON.stringify(args)} exited ${r.status ?? r.signal}:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at .+:\d+:\d+\)?$/m, `clawker ${JSON.stringify(args)} printed a stack trace:\n${stderr}`);
}

describe('clawker firewall add / remove arguments (the CLI bundle)', () => {
  test('random words after `firewall` exit 0, 1 or 2, never with a stack trace, and leave a valid store', () => {
    fc.assert(
      fc.property(wordsArb, (words) => {
        const w = cliWorkspace([]);
        const args = ['firewall', ...words];
        assertCleanExit(args, w.run(args));
        assert.ok(!checkState(w.stored()).failed, 'the store checks');
      }),
      { numRuns: 15, interruptAfterTimeLimit: CLI_BUDGET_MS, markInterruptAsFailure: false },
    );
  });

  test('random operations: exit codes agree with the pure operations, and the store never widens', () => {
    fc.assert(
      fc.property(projectArb, fc.array(opArb, { minLength: 1, maxLength: 3 }), (project, ops) => {
        const loaded = loadProject(projectYaml(project));
        const projectRules = loaded.failed ? [] : loaded.rules;
        const w = cliWorkspace(project);
        let expected: RuntimeState = EMPTY_STATE;
        const asks = projectAsks(loaded.failed ? [] : project);
        let emptied = false;
        for (const op of ops) {
          const args = argvOf(op);
          const r = w.run(args);
          assertCleanExit(args, r);
          const outcome = apply(expected, op, projectRules);
          // refresh of a project file with errors is refused (1) before any operation runs.
          const want = op.verb === 'refresh' && loaded.failed ? 1 : outcome.ok ? 0 : 1;
          assert.equal(r.status, want, `clawker ${JSON.stringify(args)}: ${r.stderr}`);
          if (outcome.ok && !(op.verb === 'refresh' && loaded.failed)) {
            emptied ||= emptiesAnEntry(op, expected, outcome.state);
            asks.push(...opAsks(op, project, expected, outcome.state));
            expected = outcome.state;
          }
          assert.deepEqual(w.stored().rules, expected.rules, 'the store holds what the pure operations computed');
        }
        if (emptied) return;
        const requests = aimedRequests(ops, PATHS);
        assert.deepEqual(allowedBeyondAsked(checkState(w.stored()).rules, projectRules, asks, requests), []);
      }),
      { numRuns: 8, interruptAfterTimeLimit: CLI_BUDGET_MS, markInterruptAsFailure: false },
    );
  });
});
