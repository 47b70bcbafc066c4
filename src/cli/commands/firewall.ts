import type { Command } from 'commander';
import { loadProject } from '../../core/config/load';
import { effectivePolicy } from '../../core/firewall/runtimeRules';
import type { Policy } from '../../core/policy/policy';
import { defaultDataDir, RuleStore } from '../../platform/ruleStore';
import { resolve } from 'node:path';
import { parseRequestUrl } from '../../core/policy/requestUrl';
import { formatProblem } from '../../core/problems';
import { findProjectFile, readForCommand } from '../projectFile';
import { registerFirewallRenderCommand } from './firewallRender';
import { registerFirewallRuleCommands } from './firewallRules';
import { registerFirewallStackCommands } from './firewallStack';

/**
 * The policy in force: built-in rules, the project file's, and the runtime rules of the store
 * (`firewall add`). Undefined (exit 2, problems printed) when the project file or the store cannot be read.
 */
function effectivePolicyFor(configArg: string | undefined, storeArg: string | undefined): Policy | undefined {
  let projectRules: Policy['rules'] = [];
  const file = configArg ?? findProjectFile();
  if (file) {
    const text = readForCommand(file);
    if (text === undefined) return undefined;
    const loaded = loadProject(text);
    if (loaded.failed) {
      for (const p of loaded.problems.filter((p) => p.severity === 'error')) process.stderr.write(`${formatProblem(file, loaded.lines, p)}\n`);
      process.stderr.write(`clawker: ${file} has errors, so no policy can be built from it; fix them (clawker validate ${file}).\n`);
      process.exitCode = 2;
      return undefined;
    }
    projectRules = loaded.rules;
  } else process.stderr.write('clawker: no .clawker.yaml here: deciding with the built-in and runtime rules only.\n');
  try {
    const store = new RuleStore(storeArg ? resolve(storeArg) : defaultDataDir()).load();
    return effectivePolicy(projectRules, store.rules);
  } catch (e) {
    process.stderr.write(`clawker: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
    return undefined;
  }
}

export function registerFirewallCommands(program: Command): void {
  const firewall = program.command('firewall').description('The egress firewall: rules, decisions and the configuration they render to.');
  firewall
    .command('check')
    .description('Say whether the firewall allows a request, and which rule (or default) decides. Exit 0 allow, 1 deny, 2 usage.')
    .argument('<url>', 'https://host/path, http://…, wss://…, ssh://host, tcp://host:port or udp://host:port')
    .option('-m, --method <method>', 'HTTP method', 'GET')
    .option('-p, --port <port>', 'destination port (overrides the URL)', (v) => Number(v))
    .option('-c, --config <file>', 'project file (default: .clawker.yaml, then .clawker/clawker.yaml)')
    .option('--store <dir>', 'data directory of the runtime rules (default: $CLAWKER_DATA_DIR, else ~/.local/share/clawker)')
    .action((url: string, options: { method: string; port?: number; config?: string; store?: string }) => {
      const parsed = parseRequestUrl(url, { method: options.method, ...(options.port !== undefined ? { port: options.port } : {}) });
      if (!parsed.ok) {
        if (parsed.denied) process.stdout.write(`deny: ${parsed.message}\n`);
        else process.stderr.write(`clawker: ${parsed.message}\n`);
        process.exitCode = parsed.denied ? 1 : 2;
        return;
      }
      const policy = effectivePolicyFor(options.config, options.store);
      if (!policy) return;
      const decision = policy.decide(parsed.request);
      process.stdout.write(`${decision.verdict}: ${decision.reason}\n`);
      process.exitCode = decision.verdict === 'allow' ? 0 : 1;
    });
  registerFirewallRuleCommands(firewall);
  registerFirewallRenderCommand(firewall);
  registerFirewallStackCommands(firewall);
}
