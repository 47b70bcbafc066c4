import { existsSync, readFileSync } from 'node:fs';

/** Where clawker looks for the project file, in order. */
export const PROJECT_FILE_CANDIDATES = ['.clawker.yaml', '.clawker/clawker.yaml'] as const;

export function findProjectFile(): string | undefined {
  return PROJECT_FILE_CANDIDATES.find((f) => existsSync(f));
}

/** Reads a file for a command; on failure says which file and why, and sets exit code 2. */
export function readForCommand(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`clawker: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}\n`);
    process.exitCode = 2;
    return undefined;
  }
}
