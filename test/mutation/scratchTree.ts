/**
 * A copy of the working tree for a mutation run (tracked and untracked files as they are now,
 * node_modules linked), so that a mutant is never written into the tree people work in.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');

export function copyWorkingTree(dest: string): void {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }).toString();
  // A file deleted in the working tree is still in the index: skip it.
  const files = [...new Set(listed.split('\0'))].filter((f) => f && !f.startsWith('node_modules/') && existsSync(join(ROOT, f)));
  for (const file of files) {
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dest, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dest, 'node_modules'));
}
