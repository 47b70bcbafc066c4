/**
 * The rule store: the runtime rule state on disk, `<data dir>/firewall/rules.json`.
 *
 * JSON, not YAML: the file is written by clawker, not by hand, and a truncated JSON file never
 * parses, whereas a truncated YAML file can parse as a shorter, valid list and silently drop rules.
 * Every change runs under a lock (load, apply a pure operation, check, write atomically), and the
 * previous good copy is kept beside it as `rules.json.bak`. A file that cannot be read is an error,
 * never an empty store: treating it as empty would drop the rules the user added.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { NormalizedRule } from '../core/firewall/rule';
import { checkState, describeStoredRule, EMPTY_STATE, type Outcome, type RuntimeState, type StateProblem } from '../core/firewall/runtimeRules';
import { LockTimeoutError, withFileLock, writeFileAtomic } from './files';

export { defaultDataDir } from './dataDir';

/** The store cannot be read or written; nothing was changed. */
export class RuleStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuleStoreError';
  }
}

export interface LoadedStore {
  readonly state: RuntimeState;
  /** The runtime layer of the policy. */
  readonly rules: readonly NormalizedRule[];
  /** Warnings and notes about the stored rules (errors make `load` throw). */
  readonly problems: readonly StateProblem[];
  /** False when there is no store file yet (an empty store). */
  readonly exists: boolean;
}

export interface RuleStoreOptions {
  /** How long `update` waits for another process's change; default 10 s. */
  readonly lockTimeoutMs?: number;
}

const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

const serialize = (state: RuntimeState): string => `${JSON.stringify(state, null, 2)}\n`;

export class RuleStore {
  /** `<data dir>/firewall`, mode 0700. */
  readonly dir: string;
  /** The state, mode 0600. */
  readonly file: string;
  /** The state before the last change: the copy to restore if `file` is ever damaged. */
  readonly backupFile: string;
  readonly lockFile: string;

  constructor(
    dataDir: string,
    private readonly options: RuleStoreOptions = {},
  ) {
    this.dir = join(dataDir, 'firewall');
    this.file = join(this.dir, 'rules.json');
    this.backupFile = `${this.file}.bak`;
    this.lockFile = `${this.file}.lock`;
  }

  /** Reads the state without locking: writes replace the file atomically, so a read sees a whole one. */
  load(): LoadedStore {
    const text = this.readText(this.file);
    if (text === undefined) return { state: EMPTY_STATE, rules: [], problems: [], exists: false };
    return { ...this.parse(text, this.file), exists: true };
  }

  /**
   * The store file's text as it is, once checked like `load` (a damaged store throws, naming this
   * file): what the control plane is sent. With no file, an empty store's text.
   */
  snapshot(): { readonly text: string; readonly loaded: LoadedStore } {
    const text = this.readText(this.file);
    if (text === undefined) return { text: serialize(EMPTY_STATE), loaded: { state: EMPTY_STATE, rules: [], problems: [], exists: false } };
    return { text, loaded: { ...this.parse(text, this.file), exists: true } };
  }

  /**
   * Applies `operation` to the current state under the lock and writes the result if it changed.
   * An operation that fails (or changes nothing) writes nothing.
   */
  async update(operation: (state: RuntimeState) => Outcome): Promise<Outcome> {
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      fs.chmodSync(this.dir, 0o700); // the rules decide what agents may reach: only the owner may change them
      return await withFileLock(
        this.lockFile,
        () => {
          const text = this.readText(this.file);
          const current = text === undefined ? EMPTY_STATE : this.parse(text, this.file).state;
          const outcome = operation(current);
          if (!outcome.ok || !outcome.changed) return outcome;
          if (text !== undefined) writeFileAtomic(this.backupFile, text, { mode: 0o600 });
          writeFileAtomic(this.file, serialize(outcome.state), { mode: 0o600 });
          return outcome;
        },
        { ...(this.options.lockTimeoutMs !== undefined ? { timeoutMs: this.options.lockTimeoutMs } : {}) },
      );
    } catch (e) {
      if (e instanceof LockTimeoutError) throw new RuleStoreError(`the rule store is busy: ${e.message}`);
      const code = (e as NodeJS.ErrnoException).code;
      if (code === undefined || e instanceof RuleStoreError) throw e;
      // The state file is replaced atomically, so a failed write leaves the previous state in place.
      throw new RuleStoreError(`cannot write the rule store in ${this.dir}: ${(e as Error).message}. Nothing was changed.`);
    }
  }

  private readText(file: string): string | undefined {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return undefined;
      throw new RuleStoreError(`cannot read the rule store ${file}: ${code ?? String(e)}. Nothing was changed.`);
    }
  }

  private parse(text: string, file: string): Omit<LoadedStore, 'exists'> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const why = text.trim() === '' ? 'it is empty' : `it is not valid JSON (${e instanceof Error ? e.message : String(e)})`;
      throw new RuleStoreError(`the rule store ${file} is damaged: ${why}. It was left as it is, and nothing was changed.\n${this.recovery()}`);
    }
    const checked = checkState(value);
    const rules = (value as { rules?: unknown[] } | null)?.rules;
    if (checked.failed || !checked.state) {
      const lines = checked.problems
        .filter((p) => p.severity === 'error')
        .map((p) => `  ${p.index === undefined || !rules ? '' : `rules[${p.index}] (${describeStoredRule(rules[p.index])}): `}${p.message}`);
      throw new RuleStoreError(`the rule store ${file} holds rules that cannot be applied; it was left as it is, and nothing was changed:\n${lines.join('\n')}\n${this.recovery()}`);
    }
    return { state: checked.state, rules: checked.rules, problems: checked.problems };
  }

  /** How to get a working store back, depending on whether the backup is good. */
  private recovery(): string {
    let backupGood = false;
    try {
      const backup = fs.readFileSync(this.backupFile, 'utf8');
      backupGood = !checkState(JSON.parse(backup)).failed;
    } catch {
      backupGood = false;
    }
    const file = shellQuote(this.file);
    if (backupGood) {
      return (
        `Fix it by hand, or restore the copy saved before the last change (it lacks only that change):\n` +
        `  cp ${shellQuote(this.backupFile)} ${file}\nthen check it with: clawker firewall list`
      );
    }
    return `There is no good backup. Fix it by hand, or move it aside to start with an empty store (its rules are then no longer applied):\n  mv ${file} ${file}.broken`;
  }
}
