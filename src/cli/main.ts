#!/usr/bin/env node
/**
 * The `clawker` command line: the same core as the editor, for terminals, scripts and tests.
 * Each verb lives in its own module under `commands/` and registers itself here.
 */
import { Command } from 'commander';
import { registerAgentCommands } from './commands/agents';
import { registerFirewallCommands } from './commands/firewall';
import { registerHostProxyCommands } from './commands/hostProxy';
import { registerValidateCommand } from './commands/validate';

export function buildProgram(): Command {
  const program = new Command('clawker')
    .description('Run AI coding agents in isolated containers behind a deny-by-default egress firewall.')
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerValidateCommand(program);
  registerFirewallCommands(program);
  registerAgentCommands(program);
  registerHostProxyCommands(program);
  return program;
}

declare const __CLAWKER_VERSION__: string | undefined;
const VERSION = typeof __CLAWKER_VERSION__ === 'string' ? __CLAWKER_VERSION__ : '0.0.0-dev';

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      process.stderr.write(`clawker: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(2);
    });
}
