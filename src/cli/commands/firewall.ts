import type { Command } from 'commander';
import { loadProject } from '../../core/config/load';
import { Policy } from '../../core/policy/policy';
import { parseRequestUrl } from '../../core/policy/requestUrl';
import { formatProblem } from '../../core/problems';
import { findProjectFile, readForCommand } from '../projectFile';

/** The policy of a project file, or undefined (exit 2, problems printed) when it does not load. */
function projectPolicy(configArg: string | undefined): Policy | undefined {
  const file = configArg ?? findProjectFile();
  if (!file) {
    process.stderr.write('clawker: no .clawker.yaml here: deciding with the built-in rules only.\n');
    return new Policy();
  }
  const text = readForCommand(file);
  if (text === undefined) return undefined;
  const loaded = loadProject(text);
  if (loaded.failed) {
    for (const p of loaded.problems.filter((p) => p.severity === 'error')) process.stderr.write(`${formatProblem(file, loaded.lines, p)}\n`);
    process.stderr.write(`clawker: ${file} has errors, so no policy can be built from it; fix them (clawker validate ${file}).\n`);
    process.exitCode = 2;
    return undefined;
  }
  return new Policy({ project: loaded.rules });
}

export function registerFirewallCommands(program: Command): void {
  const firewall = program.command('firewall').description('The egress firewall: explain decisions (more verbs arrive with the firewall stack).');
  firewall
    .command('check')
    .description('Say whether the firewall allows a request, and which rule (or default) decides. Exit 0 allow, 1 deny, 2 usage.')
    .argument('<url>', 'https://host/path, http://…, wss://…, ssh://host, tcp://host:port or udp://host:port')
    .option('-m, --method <method>', 'HTTP method', 'GET')
    .option('-p, --port <port>', 'destination port (overrides the URL)', (v) => Number(v))
    .option('-c, --config <file>', 'project file (default: .clawker.yaml, then .clawker/clawker.yaml)')
    .action((url: string, options: { method: string; port?: number; config?: string }) => {
      const parsed = parseRequestUrl(url, { method: options.method, ...(options.port !== undefined ? { port: options.port } : {}) });
      if (!parsed.ok) {
        if (parsed.denied) process.stdout.write(`deny: ${parsed.message}\n`);
        else process.stderr.write(`clawker: ${parsed.message}\n`);
        process.exitCode = parsed.denied ? 1 : 2;
        return;
      }
      const policy = projectPolicy(options.config);
      if (!policy) return;
      const decision = policy.decide(parsed.request);
      process.stdout.write(`${decision.verdict}: ${decision.reason}\n`);
      process.exitCode = decision.verdict === 'allow' ? 0 : 1;
    });
}
