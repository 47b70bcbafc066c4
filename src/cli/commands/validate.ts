import type { Command } from 'commander';
import { loadConfig } from '../../core/config/load';
import { configKindOf } from '../../core/config/schemas';
import { formatProblem } from '../../core/problems';
import { findProjectFile, PROJECT_FILE_CANDIDATES, readForCommand } from '../projectFile';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('Check a .clawker.yaml (or settings.yaml) and print each problem as FILE:LINE:COL: severity: message.')
    .argument('[file]', `the file to check (default: ${PROJECT_FILE_CANDIDATES.join(', then ')})`)
    .action((fileArg: string | undefined) => {
      const file = fileArg ?? findProjectFile();
      if (!file) {
        process.stderr.write(`clawker: no ${PROJECT_FILE_CANDIDATES.join(' or ')} in ${process.cwd()}; pass the file to check.\n`);
        process.exitCode = 2;
        return;
      }
      const text = readForCommand(file);
      if (text === undefined) return;
      const result = loadConfig(configKindOf(file), text);
      for (const problem of result.problems) process.stdout.write(`${formatProblem(file, result.lines, problem)}\n`);
      const count = (s: string) => result.problems.filter((p) => p.severity === s).length;
      const summary = result.problems.length === 0 ? 'no problems' : [plural(count('error'), 'error'), plural(count('warning'), 'warning'), plural(count('info'), 'note')].join(', ');
      process.stderr.write(`${file}: ${summary}\n`);
      process.exitCode = result.failed ? 1 : 0;
    });
}
