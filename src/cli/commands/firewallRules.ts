/**
 * `clawker firewall add | remove | list | refresh | reload`: the runtime rules in the rule store.
 * Each verb runs one pure operation of `core/firewall/runtimeRules` through the store; the verbs
 * only parse flags and print. Exit codes: 0 done, 1 a rule error (nothing changed), 2 usage or I/O.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadProject } from '../../core/config/load';
import { formatDestination } from '../../core/firewall/destination';
import { formatPortRange } from '../../core/firewall/port';
import { type NormalizedRule, ruleKey } from '../../core/firewall/rule';
import {
  addRule,
  type AddRequest,
  type ChangeKind,
  effectivePolicy,
  type Outcome,
  type OperationContext,
  refreshFromProject,
  removeRule,
  toStoredRule,
} from '../../core/firewall/runtimeRules';
import { formatProblem, type Problem } from '../../core/problems';
import { ControlPlaneNotRunning } from '../../platform/controlPlaneClient';
import { cliControlPlane } from '../controlPlaneAccess';
import { defaultDataDir, RuleStore, RuleStoreError } from '../../platform/ruleStore';
import { reloadFromHost } from '../../platform/stackInputs';
import { findProjectFile, PROJECT_FILE_CANDIDATES, readForCommand } from '../projectFile';

interface StoreOptions {
  store?: string;
  config?: string;
}

const STORE_HELP = 'clawker data directory holding firewall/rules.json (default: $CLAWKER_DATA_DIR, else ${XDG_DATA_HOME:-~/.local/share}/clawker)';
const CONFIG_HELP = `project file (default: ${PROJECT_FILE_CANDIDATES.join(', then ')})`;

const err = (line: string): void => void process.stderr.write(`${line}\n`);
const out = (line: string): void => void process.stdout.write(`${line}\n`);

const storeOf = (options: StoreOptions): RuleStore => new RuleStore(options.store ? resolve(options.store) : defaultDataDir());

/** Usage errors exit 2, as every other usage error of clawker does; commander's default is 1. */
function exitTwoOnUsageError(command: Command): Command {
  return command.exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));
}

/** Store and I/O failures exit 2 with their message; anything else is a bug and propagates. */
async function guarded(action: () => Promise<void> | void): Promise<void> {
  try {
    await action();
  } catch (e) {
    if (!(e instanceof RuleStoreError)) throw e;
    err(`clawker: ${e.message}`);
    process.exitCode = 2;
  }
}

interface ProjectRules {
  readonly file?: string;
  readonly rules: readonly NormalizedRule[];
  /** The file exists but has errors: its rules are unknown. */
  readonly failed: boolean;
}

/** The project file's rules, for context: a file with errors is reported and its rules left out. */
function projectRulesFor(configArg: string | undefined, printProblems: boolean): ProjectRules | undefined {
  const file = configArg ?? findProjectFile();
  if (!file) return { rules: [], failed: false };
  const text = readForCommand(file);
  if (text === undefined) return undefined;
  const loaded = loadProject(text);
  if (loaded.failed) {
    if (printProblems) printFileProblems(file, loaded.lines, loaded.problems.filter((p) => p.severity === 'error'));
    err(`clawker: warning: ${file} has errors (clawker validate ${file}), so its rules are left out here.`);
  }
  return { file, rules: loaded.rules, failed: loaded.failed };
}

function printFileProblems(file: string, lines: Parameters<typeof formatProblem>[1], problems: readonly Problem[]): void {
  for (const p of problems) err(formatProblem(file, lines, p));
}

/** Prints what an operation did; on failure, why, and that nothing changed (exit 1). */
function report(outcome: Outcome, shown: readonly ChangeKind[] = ['added', 'updated', 'removed', 'unchanged']): void {
  if (!outcome.ok) {
    for (const e of outcome.errors) err(`clawker: ${e}`);
    err('clawker: nothing was changed.');
    process.exitCode = 1;
    return;
  }
  for (const c of outcome.changes) if (shown.includes(c.kind)) out(c.message);
  for (const w of outcome.warnings) err(`clawker: warning: ${w}`);
}

/**
 * A changed store is applied to the running stack at once (every agent, no restart); with no stack
 * running it is kept for the next `firewall up`.
 */
async function applyToStack(outcome: Outcome, store: RuleStore, dataDir: string): Promise<void> {
  if (!outcome.ok || !outcome.changed) return;
  // The running firewall reads the data directory's store; another --store is only saved.
  if (resolve(dataDir) !== resolve(defaultDataDir())) return void err(`clawker: saved in ${store.file} (not the store the running firewall reads).`);
  try {
    const r = await reloadFromHost(cliControlPlane(), dataDir);
    err(`clawker: applied to the running firewall in ${r.millis} ms (${r.rules} rules, ${r.routes} routes${r.corednsReloaded ? ', CoreDNS reloaded' : ''}).`);
  } catch (e) {
    if (e instanceof ControlPlaneNotRunning) err(`clawker: saved in ${store.file}; the firewall is not running, so the change applies when it starts (clawker firewall up).`);
    else {
      err(`clawker: saved in ${store.file}, but applying it failed: ${e instanceof Error ? e.message : String(e)}. Retry with: clawker firewall reload`);
      process.exitCode = 2;
    }
  }
}

const dataDirOf = (options: StoreOptions): string => (options.store ? resolve(options.store) : defaultDataDir());

const splitList = (value: string, previous: string[] = []): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
];

interface AddOptions extends StoreOptions {
  proto?: string;
  port?: string;
  path?: string;
  action?: string;
  methods?: string[];
}

function registerAdd(firewall: Command): void {
  const add = firewall
    .command('add')
    .description('Allow a domain (an https rule on port 443 unless --proto/--port say otherwise), or attach a path rule to its entry with --path and --action.')
    .argument('<domain>', 'domain (.example.com for it and all subdomains) or IPv4 address')
    .option('--proto <proto>', 'https (default), http, ws, wss, ssh, tcp, udp or another name for TCP pass-through')
    .option('--port <port>', 'a port (443) or a range (9000-9100); default: the protocol\'s port')
    .option('--path <path>', "a URL path prefix (/v1), or ~ and an anchored RE2 regex ('~/repos/(a|b)/?', quoted); needs --action")
    .option('--action <action>', 'allow or deny: what the path rule does (needs --path)')
    .option('--methods <list>', 'HTTP methods the path rule applies to, e.g. GET,HEAD (default all; needs --path and --action)', splitList)
    .option('--store <dir>', STORE_HELP)
    .option('-c, --config <file>', CONFIG_HELP)
    .addHelpText('after', "\nPath rules accumulate; the same --path again overwrites its action and methods.\nExample: clawker firewall add api.github.com --path / --action allow --methods GET,HEAD");
  exitTwoOnUsageError(add).action((domain: string, options: AddOptions) =>
    guarded(async () => {
      if (options.methods !== undefined && (options.path === undefined || options.action === undefined)) {
        add.error('error: --methods narrows a path rule: give --path and --action too.', { exitCode: 2 });
      }
      if (options.path !== undefined && options.action === undefined) add.error('error: --path needs --action allow or --action deny.', { exitCode: 2 });
      if (options.action !== undefined && options.path === undefined) {
        add.error('error: --action is the action of a path rule: give --path too (a plain add always allows).', { exitCode: 2 });
      }
      const project = projectRulesFor(options.config, false);
      if (!project) return;
      const request: AddRequest = {
        dst: domain,
        ...(options.proto !== undefined ? { proto: options.proto } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.path !== undefined && options.action !== undefined
          ? { pathRule: { path: options.path, action: options.action, ...(options.methods ? { methods: options.methods } : {}) } }
          : {}),
      };
      const context: OperationContext = { projectRules: project.rules };
      const store = storeOf(options);
      const outcome = await store.update((state) => addRule(state, request, context));
      report(outcome);
      await applyToStack(outcome, store, dataDirOf(options));
    }),
  );
}

interface RemoveOptions extends StoreOptions {
  proto?: string;
  port?: string;
  path?: string;
}

function registerRemove(firewall: Command): void {
  const remove = firewall
    .command('remove')
    .description('Remove a rule from the rule store, or with --path only its path rules whose path is exactly that string.')
    .argument('<domain>', 'the destination as listed by clawker firewall list')
    .option('--proto <proto>', 'protocol of the rule (default https)')
    .option('--port <port>', "port of the rule (default: the protocol's port)")
    .option('--path <path>', 'remove only the path rule with exactly this path, as stored (a sub-prefix or a typo does not match)')
    .option('--store <dir>', STORE_HELP)
    .option('-c, --config <file>', CONFIG_HELP);
  exitTwoOnUsageError(remove).action((domain: string, options: RemoveOptions) =>
    guarded(async () => {
      const project = projectRulesFor(options.config, false);
      if (!project) return;
      const request = {
        dst: domain,
        ...(options.proto !== undefined ? { proto: options.proto } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
        ...(options.path !== undefined ? { path: options.path } : {}),
      };
      const store = storeOf(options);
      const outcome = await store.update((state) => removeRule(state, request, { projectRules: project.rules }));
      report(outcome);
      await applyToStack(outcome, store, dataDirOf(options));
    }),
  );
}

interface ListedRule {
  readonly origin: NormalizedRule['origin'];
  readonly rule: NormalizedRule;
  /** A store rule whose key the project file has too (the store's version is the one in force). */
  readonly alsoInProjectFile: boolean;
}

function printTable(listed: readonly ListedRule[], projectFile: string | undefined): void {
  const rows = listed.map(({ origin, rule }) => [origin, formatDestination(rule.dst), `${rule.proto}:${formatPortRange(rule.port)}`, rule.action]);
  const widths = [0, 1, 2].map((i) => Math.max(['ORIGIN', 'DESTINATION', 'PORT'][i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd();
  out(line(['ORIGIN', 'DESTINATION', 'PORT', 'ACTION']));
  listed.forEach(({ rule, alsoInProjectFile }, i) => {
    out(`${line(rows[i]!)}${alsoInProjectFile ? `  (also in ${projectFile})` : ''}`);
    if (rule.pathRules.length === 0) return;
    const indent = ' '.repeat(widths[0]! + 2);
    const pathWidth = Math.max(...rule.pathRules.map((pr) => pr.path.length));
    for (const pr of rule.pathRules) out(`${indent}path ${pr.path.padEnd(pathWidth)}  ${pr.action}${pr.methods.length ? `  ${pr.methods.join(', ')}` : ''}`);
    out(`${indent}other paths ${rule.pathDefault}`);
  });
}

function registerList(firewall: Command): void {
  const list = firewall
    .command('list')
    .description('List the rules in force: built-in (system), project (.clawker.yaml) and runtime (the rule store), each with its origin.')
    .option('--json', 'print JSON: {store, projectFile, rules: [{origin, dst, proto, port, action, path_rules?, path_default?}]}')
    .option('--store <dir>', STORE_HELP)
    .option('-c, --config <file>', CONFIG_HELP);
  exitTwoOnUsageError(list).action((options: StoreOptions & { json?: boolean }) =>
    guarded(() => {
      const store = storeOf(options);
      const loaded = store.load();
      for (const p of loaded.problems) if (p.severity === 'warning') err(`clawker: warning: ${store.file}: ${p.index === undefined ? '' : `rules[${p.index}]: `}${p.message}`);
      const project = projectRulesFor(options.config, true);
      if (!project) return;
      const projectKeys = new Set(project.rules.map(ruleKey));
      const listed: ListedRule[] = effectivePolicy(project.rules, loaded.rules).rules.map((rule) => ({
        origin: rule.origin,
        rule,
        alsoInProjectFile: rule.origin === 'runtime' && projectKeys.has(ruleKey(rule)),
      }));
      if (options.json) {
        const rules = listed.map(({ origin, rule, alsoInProjectFile }) => ({ origin, ...toStoredRule(rule), ...(alsoInProjectFile ? { alsoInProjectFile } : {}) }));
        out(JSON.stringify({ store: store.file, projectFile: project.file ?? null, rules }, null, 2));
      } else {
        printTable(listed, project.file);
        const count = (origin: string) => listed.filter((l) => l.origin === origin).length;
        err(`${listed.length} rules: ${count('system')} system, ${count('project')} project, ${count('runtime')} runtime (store: ${store.file})`);
      }
      if (project.failed) process.exitCode = 1;
    }),
  );
}

function registerRefresh(firewall: Command): void {
  const refresh = firewall
    .command('refresh')
    .description("Sync the project file's add_domains and rules into the rule store: adds and updates, never removes.")
    .option('-c, --config <file>', CONFIG_HELP)
    .option('--store <dir>', STORE_HELP);
  exitTwoOnUsageError(refresh).action((options: StoreOptions) =>
    guarded(async () => {
      const file = options.config ?? findProjectFile();
      if (!file) {
        err(`clawker: no ${PROJECT_FILE_CANDIDATES.join(' or ')} in ${process.cwd()}; pass --config FILE.`);
        process.exitCode = 2;
        return;
      }
      const text = readForCommand(file);
      if (text === undefined) return;
      const loaded = loadProject(text);
      printFileProblems(file, loaded.lines, loaded.problems.filter((p) => p.severity !== 'info'));
      if (loaded.failed) {
        err(`clawker: ${file} has errors, so nothing was synced and the rule store was not changed; fix them (clawker validate ${file}).`);
        process.exitCode = 1;
        return;
      }
      const store = storeOf(options);
      const outcome = await store.update((state) => refreshFromProject(state, loaded.rules));
      report(outcome, ['added', 'updated', 'kept']);
      if (!outcome.ok) return;
      const count = (kind: ChangeKind) => outcome.changes.filter((c) => c.kind === kind).length;
      const kept = count('kept') > 0 ? ' What the store has beyond the file stays: refresh never removes (use clawker firewall remove).' : '';
      err(`clawker: synced ${file}: ${count('added')} added, ${count('updated')} updated, ${count('unchanged')} up to date.${kept}`);
      await applyToStack(outcome, store, dataDirOf(options));
    }),
  );
}

function registerReload(firewall: Command): void {
  const reload = firewall
    .command('reload')
    .description('Regenerate the running Envoy and CoreDNS configuration from the rule store (does not re-read .clawker.yaml).')
    .option('--store <dir>', STORE_HELP);
  exitTwoOnUsageError(reload).action(async (options: StoreOptions) => {
    try {
      const r = await reloadFromHost(cliControlPlane(), dataDirOf(options));
      out(`reloaded: ${r.rules} rules, ${r.routes} routes${r.corednsReloaded ? ', CoreDNS reloaded' : ''} in ${r.millis} ms`);
    } catch (e) {
      if (e instanceof ControlPlaneNotRunning) {
        err(`clawker: the firewall is not running, so there is nothing to reload; nothing was done. The rule store (${storeOf(options).file}) applies when it starts (clawker firewall up).`);
      } else err(`clawker: reload failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 2;
    }
  });
}

/** Registers the rule-store verbs on `clawker firewall`. */
export function registerFirewallRuleCommands(firewall: Command): void {
  registerAdd(firewall);
  registerRemove(firewall);
  registerList(firewall);
  registerRefresh(firewall);
  registerReload(firewall);
}
