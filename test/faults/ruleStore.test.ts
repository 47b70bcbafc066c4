/**
 * Faults of the rule store (<data dir>/firewall/rules.json), through the CLI bundle as a user runs it:
 *
 *  - a truncated, emptied or garbled store is refused by every verb (exit 2) with a message that names
 *    the file and the one command that recovers it, is never treated as empty, and is left byte for byte;
 *    running that command recovers;
 *  - the disk fills while the store is written: whatever byte the write stops at, the previous store
 *    survives intact and readable, no temporary file is left, and freeing space is all it takes;
 *  - a writer killed while it held the lock does not wedge the store.
 *
 * Needs root (it mounts a 64 KiB tmpfs) and the CLI bundle (node scripts/build.mjs).
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addRule } from '../../src/core/firewall/runtimeRules';
import { RuleStore } from '../../src/platform/ruleStore';
import { clawker, type ClawkerResult, ROOT, run, runOk } from '../e2e/testbed';

const scratch = mkdtempSync(join(tmpdir(), 'clawker-faults-store-'));
/** A directory with no project file: the verbs see the built-in and runtime rules only. */
const cwd = join(scratch, 'cwd');

function cliIn(dataDir: string) {
  return (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: { ...process.env, CLAWKER_DATA_DIR: dataDir }, cwd });
}

/** Every file of the store's directory with its bytes: what "left as it is" compares. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), 'latin1')]));
}

/** A fresh data dir whose store holds `domains` (one `add` each, so rules.json.bak holds all but the last). */
async function storeWith(name: string, domains: readonly string[]): Promise<{ dataDir: string; store: RuleStore }> {
  const dataDir = join(scratch, name);
  mkdirSync(dataDir);
  const store = new RuleStore(dataDir);
  for (const dst of domains) assert.equal((await store.update((s) => addRule(s, { dst }, { projectRules: [] }))).ok, true);
  return { dataDir, store };
}

const runtimeDomains = (listJson: string): string[] =>
  (JSON.parse(listJson) as { rules: { origin: string; dst: string }[] }).rules.filter((r) => r.origin === 'runtime').map((r) => r.dst);

before(async () => {
  mkdirSync(cwd);
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
});

after(() => rmSync(scratch, { recursive: true, force: true }));

describe('a damaged rule store is refused, never read as empty, and recovered by the command the message names', () => {
  const damages: { what: string; damage: (text: string) => string; why: (text: string) => string }[] = [
    { what: 'truncated mid-file', damage: (t) => t.slice(0, Math.floor(t.length / 2)), why: jsonError },
    { what: 'truncated to one byte', damage: (t) => t.slice(0, 1), why: jsonError },
    { what: 'emptied (size 0)', damage: () => '', why: () => 'it is empty' },
    { what: 'overwritten with NUL bytes (a crash on some file systems)', damage: (t) => '\0'.repeat(t.length), why: jsonError },
  ];

  for (const { what, damage, why } of damages) {
    test(`${what}: list, add, remove and check exit 2 naming the file and cp of the .bak; nothing is written; the cp restores`, async () => {
      const { dataDir, store } = await storeWith(`damaged-${damages.findIndex((d) => d.what === what)}`, ['kept.test', 'also-kept.test', 'last.test']);
      const cli = cliIn(dataDir);
      const good = readFileSync(store.file, 'utf8');
      const damaged = damage(good);
      writeFileSync(store.file, damaged, 'latin1');
      const before = snapshot(store.dir);

      const expected =
        `clawker: the rule store ${store.file} is damaged: ${why(damaged)}. It was left as it is, and nothing was changed.\n` +
        'Fix it by hand, or restore the copy saved before the last change (it lacks only that change):\n' +
        `  cp ${store.backupFile} ${store.file}\n` +
        'then check it with: clawker firewall list\n';
      for (const args of [['firewall', 'list'], ['firewall', 'add', 'new.test'], ['firewall', 'remove', 'kept.test']]) {
        const r = await cli(...args);
        assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr, expected, args.join(' '));
        assert.equal(r.stdout, '', `${args.join(' ')} printed no rules`);
        assert.deepEqual(snapshot(store.dir), before, `${args.join(' ')} left the store as it was`);
      }
      const check = await cli('firewall', 'check', 'https://kept.test/');
      assert.equal(check.code, 2, 'a decision is refused rather than made without the stored rules');
      assert.equal(check.stderr, `clawker: no .clawker.yaml here: deciding with the built-in and runtime rules only.\n${expected}`);

      // Recovery: exactly the command the message names.
      const cp = /^ {2}cp (\S+) (\S+)$/m.exec(expected)!;
      await runOk('cp', [cp[1]!, cp[2]!]);
      const list = await cli('firewall', 'list', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(runtimeDomains(list.stdout), ['kept.test', 'also-kept.test'], 'the backup lacks only the last change');
      assert.equal((await cli('firewall', 'add', 'after-restore.test')).code, 0, 'and the store takes changes again');
    });
  }

  test('damaged with no good backup: the message says so and names the mv that starts an empty store; nothing is guessed', async () => {
    const { dataDir, store } = await storeWith('no-backup', ['only.test']);
    assert.equal(existsSync(store.backupFile), false, 'a store written once has no backup');
    writeFileSync(store.file, '{"version": 1, "rules": [');
    const before = snapshot(store.dir);
    const cli = cliIn(dataDir);
    const r = await cli('firewall', 'add', 'x.test');
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `clawker: the rule store ${store.file} is damaged: ${jsonError('{"version": 1, "rules": [')}. It was left as it is, and nothing was changed.\n` +
        `There is no good backup. Fix it by hand, or move it aside to start with an empty store (its rules are then no longer applied):\n` +
        `  mv ${store.file} ${store.file}.broken\n`,
    );
    assert.deepEqual(snapshot(store.dir), before);
    const mv = /^ {2}mv (\S+) (\S+)$/m.exec(r.stderr)!;
    await runOk('mv', [mv[1]!, mv[2]!]);
    const list = await cli('firewall', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(runtimeDomains(list.stdout), [], 'an empty store, by the user\'s choice');
    assert.equal(readFileSync(`${store.file}.broken`, 'utf8'), '{"version": 1, "rules": [', 'the damaged file is kept for the user');
  });

  test('a writer killed while holding the lock does not wedge the store: the next change takes the lock over', async () => {
    const { dataDir, store } = await storeWith('stale-lock', ['a.test']);
    const dead = await run('sh', ['-c', 'echo $$']); // a pid that has exited
    writeFileSync(store.lockFile, `${dead.stdout.trim()} ${hostname()}\n`);
    const r = await cliIn(dataDir)('firewall', 'add', 'b.test');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(store.lockFile), false, 'released');
    assert.deepEqual(runtimeDomains((await cliIn(dataDir)('firewall', 'list', '--json')).stdout), ['a.test', 'b.test']);
  });
});

describe('the disk fills while the store is written (a 64 KiB tmpfs as the data dir)', () => {
  const mnt = join(scratch, 'tmpfs');
  let mounted = false;

  before(async () => {
    mkdirSync(mnt);
    await runOk('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mnt]);
    mounted = true;
  });
  after(async () => {
    if (mounted) await run('umount', [mnt]);
  });

  test('at every amount of free space the add either completes or fails naming ENOSPC with the previous store intact; freeing space recovers', async () => {
    // A store of several pages, so that a write can stop part way through the .bak or the new file.
    const domains = Array.from({ length: 40 }, (_, i) => `service-${String(i).padStart(2, '0')}.a-rather-long-domain-name.test`);
    const store = new RuleStore(mnt);
    for (const dst of domains) assert.equal((await store.update((s) => addRule(s, { dst }, { projectRules: [] }))).ok, true);
    const cli = cliIn(mnt);
    const page = 4096;
    // Fill every free byte, then give space back one page at a time.
    const filler = join(mnt, 'filler');
    const fd = openSync(filler, 'w');
    try {
      const chunk = Buffer.alloc(page, 1);
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
    assert.equal(statfsSync(mnt).bavail, 0, 'the disk is full');

    const failures: number[] = [];
    for (let freed = 0; ; freed++) {
      const before = snapshot(store.dir);
      const listBefore = (await cli('firewall', 'list', '--json')).stdout;
      const r = await cli('firewall', 'add', `new-${freed}.test`);
      if (r.code === 0) {
        assert.deepEqual(runtimeDomains((await cli('firewall', 'list', '--json')).stdout), [...domains, `new-${freed}.test`]);
        break;
      }
      failures.push(freed);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^clawker: cannot write the rule store in ${store.dir}: ENOSPC: no space left on device[^\\n]*\\. Nothing was changed\\.\\n$`), `with ${freed} pages free`);
      assert.deepEqual(snapshot(store.dir), before, `with ${freed} pages free: the store, its backup, no temporary or lock file left`);
      const list = await cli('firewall', 'list', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, listBefore, 'the previous rules, all of them');
      assert.ok(freed < 12, `an add still fails with ${freed} pages free`);
      // Give one page back.
      const size = readFileSync(filler).length;
      await runOk('truncate', ['-s', String(size - page), filler]);
    }
    assert.ok(failures.length >= 3, `the sweep stopped the write at several points (failed with ${failures.join(', ')} pages free)`);
    process.stdout.write(`# disk full: the add failed cleanly with ${failures.join(', ')} pages free, then completed\n`);
  });
});

/** The reason the store gives for text that is not JSON: the parser's own message, as the CLI prints it. */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return `it is not valid JSON (${(e as Error).message})`;
  }
  throw new Error(`${JSON.stringify(text)} parses`);
}
