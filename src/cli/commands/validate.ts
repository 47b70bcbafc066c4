import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { loadConfig } from '../../core/config/load';
import { configKindOf } from '../../core/config/schemas';
import { formatProblem } from '../../core/problems';

/** Where clawker looks for the project file, in order. */
export const PROJECT_FILE_CANDIDATES = ['.clawker.yaml', '.clawker/clawker.yaml'] as const;

function findProjectFile(): string | undefined {
  return PROJECT_FILE_CANDIDATES.find((f) => existsSync(f));
}

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
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        process.stderr.write(`clawker: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
        process.exitCode = 2;
        return;
      }
      const result = loadConfig(configKindOf(file), text);
      for (const problem of result.problems) process.stdout.write(`${formatProblem(file, result.lines, problem)}\n`);
      const count = (s: string) => result.problems.filter((p) => p.severity === s).length;
      const summary = result.problems.length === 0 ? 'no problems' : [plural(count('error'), 'error'), plural(count('warning'), 'warning'), plural(count('info'), 'note')].join(', ');
      process.stderr.write(`${file}: ${summary}\n`);
      process.exitCode = result.failed ? 1 : 0;
    });
}
