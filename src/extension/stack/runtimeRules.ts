/**
 * The rule store's runtime rules (`<data dir>/firewall/rules.json`), read the way the CLI reads
 * them (checkState), for views that must decide with the whole policy: a request allowed by a
 * runtime rule is no longer "blocked". Re-read when the file changes; a missing or unreadable store
 * gives no rules (the request stays shown as blocked, which is what the firewall does too).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NormalizedRule } from '../../core/firewall/rule';
import { editorCore } from '../lazy';

export const RULE_STORE_FILE = join('firewall', 'rules.json');

export class RuntimeRules {
  private cached: { file: string; mtimeMs: number; rules: readonly NormalizedRule[] } | undefined;

  constructor(private readonly dataDir: () => string) {}

  get file(): string {
    return join(this.dataDir(), RULE_STORE_FILE);
  }

  rules(): readonly NormalizedRule[] {
    const file = this.file;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      return [];
    }
    if (this.cached && this.cached.file === file && this.cached.mtimeMs === mtimeMs) return this.cached.rules;
    let rules: readonly NormalizedRule[] = [];
    try {
      const checked = editorCore().checkState(JSON.parse(readFileSync(file, 'utf8')));
      rules = checked.failed ? [] : checked.rules;
    } catch {
      rules = [];
    }
    this.cached = { file, mtimeMs, rules };
    return rules;
  }
}
