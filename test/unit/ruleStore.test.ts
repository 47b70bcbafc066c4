/**
 * The rule store on disk: atomic writes that survive a crash, the lock between processes, and a
 * damaged file that is reported (with the way back) instead of being read as an empty store.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, mock, test } from 'node:test';
import { addRule, EMPTY_STATE, type Outcome } from '../../src/core/firewall/runtimeRules';
import { LockTimeoutError, withFileLock, writeFileAtomic } from '../../src/platform/files';
import { defaultDataDir, RuleStore, RuleStoreError } from '../../src/platform/ruleStore';

const ROOT = join(__dirname, '..', '..');
const made: string[] = [];
const tempDir = (): string => {
  const dir = fs.mkdtempSync(join(tmpdir(), 'clawker-store-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

const mode = (path: string): number => fs.statSync(path).mode & 0o777;
const add = (dst: string) => (state: typeof EMPTY_STATE): Outcome => addRule(state, { dst });

/** Runs TypeScript in a child process (with the repository's modules by absolute path). */
function child(code: string): ChildProcess {
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  exits.set(proc, new Promise((resolve) => proc.on('exit', (code) => resolve(code))));
  return proc;
}

const firstLine = (proc: ChildProcess): Promise<string> =>
  new Promise((resolve, reject) => {
    let buffered = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      if (buffered.includes('\n')) resolve(buffered.split('\n')[0]!);
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before writing a line`)));
  });

// Remembered per process: its 'exit' event may fire before anyone awaits it.
const exits = new WeakMap<ChildProcess, Promise<number | null>>();
const exited = (proc: ChildProcess): Promise<number | null> => exits.get(proc)!;

describe('where the store lives', () => {
  test('$CLAWKER_DATA_DIR, else $XDG_DATA_HOME/clawker, else ~/.local/share/clawker', () => {
    assert.equal(defaultDataDir({ CLAWKER_DATA_DIR: '/data/c', XDG_DATA_HOME: '/xdg' }, '/home/u'), '/data/c');
    assert.equal(defaultDataDir({ XDG_DATA_HOME: '/xdg' }, '/home/u'), '/xdg/clawker');
    assert.equal(defaultDataDir({}, '/home/u'), '/home/u/.local/share/clawker');
    assert.equal(defaultDataDir({ XDG_DATA_HOME: 'relative' }, '/home/u'), '/home/u/.local/share/clawker', 'a relative XDG_DATA_HOME is ignored');
    assert.equal(new RuleStore('/data/c').file, '/data/c/firewall/rules.json');
  });
});

describe('load and update', () => {
  test('a missing file is an empty store, and reading it creates nothing', () => {
    const dir = tempDir();
    const store = new RuleStore(join(dir, 'data'));
    const loaded = store.load();
    assert.equal(loaded.exists, false);
    assert.deepEqual(loaded.state, EMPTY_STATE);
    assert.equal(fs.existsSync(join(dir, 'data')), false);
  });

  test('update writes the new state: file 0600, directory 0700, lock released', async () => {
    const store = new RuleStore(join(tempDir(), 'data'));
    const old = process.umask(0o000); // the modes must not depend on the caller's umask
    try {
      await store.update(add('a.example.com'));
    } finally {
      process.umask(old);
    }
    assert.equal(mode(store.file), 0o600);
    assert.equal(mode(store.dir), 0o700);
    assert.equal(fs.existsSync(store.lockFile), false);
    assert.deepEqual(JSON.parse(fs.readFileSync(store.file, 'utf8')), { version: 1, rules: [{ dst: 'a.example.com', proto: 'https', port: '443', action: 'allow' }] });
    assert.deepEqual(store.load().rules.map((r) => r.origin), ['runtime']);
  });

  test('the state before each change is kept as the backup (0600)', async () => {
    const store = new RuleStore(join(tempDir(), 'data'));
    await store.update(add('a.example.com'));
    assert.equal(fs.existsSync(store.backupFile), false, 'nothing to back up before the first change');
    const first = fs.readFileSync(store.file, 'utf8');
    await store.update(add('b.example.com'));
    assert.equal(fs.readFileSync(store.backupFile, 'utf8'), first);
    assert.equal(mode(store.backupFile), 0o600);
  });

  test('a failed or empty operation writes nothing', async () => {
    const store = new RuleStore(join(tempDir(), 'data'));
    await store.update(add('a.example.com'));
    const before = fs.readFileSync(store.file, 'utf8');
    const mtime = fs.statSync(store.file).mtimeMs;
    const failed = await store.update((s) => addRule(s, { dst: 'b.example.com', pathRule: { path: 'v1', action: 'allow' } }));
    assert.equal(failed.ok, false);
    const unchanged = await store.update(add('a.example.com'));
    assert.equal(unchanged.ok && unchanged.changed, false);
    assert.equal(fs.readFileSync(store.file, 'utf8'), before);
    assert.equal(fs.statSync(store.file).mtimeMs, mtime);
    assert.equal(fs.existsSync(store.backupFile), false);
  });

  test('the lock is released when the operation throws', async () => {
    const store = new RuleStore(join(tempDir(), 'data'));
    await assert.rejects(
      store.update(() => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(fs.existsSync(store.lockFile), false);
  });
});

describe('a damaged store is an error, never an empty store', () => {
  async function damaged(content: string, withBackup: boolean): Promise<{ store: RuleStore; message: string }> {
    const store = new RuleStore(join(tempDir(), 'data'));
    await store.update(add('a.example.com'));
    if (withBackup) await store.update(add('b.example.com'));
    fs.writeFileSync(store.file, content);
    const error = (() => {
      try {
        store.load();
      } catch (e) {
        return e;
      }
      assert.fail('load accepted a damaged store');
    })();
    assert.ok(error instanceof RuleStoreError);
    await assert.rejects(store.update(add('c.example.com')), RuleStoreError);
    assert.equal(fs.readFileSync(store.file, 'utf8'), content, 'the damaged file is left as it is');
    return { store, message: error.message };
  }

  test('a truncated file names the file and how to restore the backup', async () => {
    const { store, message } = await damaged('{\n  "version": 1,\n  "rules": [\n    {\n      "dst": "a.exa', true);
    assert.match(message, new RegExp(`the rule store ${store.file} is damaged: it is not valid JSON`));
    assert.match(message, /nothing was changed/);
    assert.ok(message.includes(`cp ${store.backupFile} ${store.file}`), message);
  });

  test('an empty file, with no backup: how to start over', async () => {
    const { store, message } = await damaged('', false);
    assert.match(message, /is damaged: it is empty/);
    assert.ok(message.includes(`mv ${store.file} ${store.file}.broken`), message);
  });

  test('a rule that does not pass the checks is named by its index', async () => {
    const { message } = await damaged(JSON.stringify({ version: 1, rules: [{ dst: 'a.example.com' }, { dst: 'b.example.com', port: '0' }] }), true);
    assert.match(message, /holds rules that cannot be applied/);
    assert.match(message, /rules\[1\] \(b\.example\.com https:0\): port '0' is not a port number/);
  });

  test('a state written by a newer clawker is not overwritten', async () => {
    const { message } = await damaged(JSON.stringify({ version: 2, rules: [] }), false);
    assert.match(message, /version 2, not 1: it was written by a newer clawker/);
  });
});

describe('atomic writes', () => {
  test('a crash between write and rename leaves the old content, and no temporary file', async () => {
    const store = new RuleStore(join(tempDir(), 'data'));
    await store.update(add('a.example.com'));
    const before = fs.readFileSync(store.file, 'utf8');
    const rename = mock.method(fs, 'renameSync', () => {
      throw Object.assign(new Error('EIO: simulated crash before rename'), { code: 'EIO' });
    });
    try {
      await assert.rejects(store.update(add('b.example.com')), /simulated crash/);
    } finally {
      rename.mock.restore();
    }
    assert.ok(rename.mock.callCount() >= 1);
    assert.equal(fs.readFileSync(store.file, 'utf8'), before);
    assert.deepEqual(fs.readdirSync(store.dir).filter((f) => f.endsWith('.tmp')), []);
    assert.equal(fs.existsSync(store.lockFile), false);
    await store.update(add('b.example.com'));
    assert.equal(store.load().state.rules.length, 2, 'the next change works');
  });

  test('a process killed at any moment leaves either the old or the new content', async () => {
    const dir = tempDir();
    const file = join(dir, 'state.json');
    const content = (n: number) => JSON.stringify({ n, pad: 'x'.repeat(1 << 20) });
    writeFileAtomic(file, content(0));
    const filesModule = join(ROOT, 'src', 'platform', 'files.ts');
    for (let round = 0; round < 6; round++) {
      const writer = child(
        `const { writeFileAtomic } = require(${JSON.stringify(filesModule)});
         const pad = 'x'.repeat(1 << 20);
         console.log('ready');
         for (let n = 1; ; n++) writeFileAtomic(${JSON.stringify(file)}, JSON.stringify({ n, pad }));`,
      );
      await firstLine(writer);
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      writer.kill('SIGKILL');
      await exited(writer);
      const read = JSON.parse(fs.readFileSync(file, 'utf8')) as { n: number; pad: string };
      assert.equal(read.pad.length, 1 << 20, `round ${round}: a whole file`);
    }
  });

  test('writeFileAtomic sets the requested mode', () => {
    const file = join(tempDir(), 'f');
    writeFileAtomic(file, 'a', { mode: 0o640 });
    assert.equal(mode(file), 0o640);
    writeFileAtomic(file, 'b');
    assert.equal(mode(file), 0o600);
    assert.equal(fs.readFileSync(file, 'utf8'), 'b');
  });
});

describe('the lock between processes', () => {
  const filesModule = JSON.stringify(join(ROOT, 'src', 'platform', 'files.ts'));
  const holdLock = (lockPath: string, ms: number) =>
    child(
      `const { withFileLock } = require(${filesModule});
       withFileLock(${JSON.stringify(lockPath)}, () => { console.log('locked ' + process.pid); return new Promise((r) => setTimeout(r, ${ms})); });`,
    );

  test('a second process waits for the holder, and gives up after its timeout naming the holder pid', async () => {
    const lockPath = join(tempDir(), 'rules.json.lock');
    const holder = holdLock(lockPath, 1500);
    const line = await firstLine(holder);
    const pid = Number(line.split(' ')[1]);
    assert.equal(pid, holder.pid);

    const timedOut = await withFileLock(lockPath, () => 'got it', { timeoutMs: 200 }).catch((e: unknown) => e);
    assert.ok(timedOut instanceof LockTimeoutError, String(timedOut));
    assert.equal(timedOut.holder?.pid, pid);
    assert.match(timedOut.message, new RegExp(`is held by process ${pid}; gave up after 0\\.\\ds.*rm ${lockPath.replace(/[.]/g, '\\.')}`));

    const started = Date.now();
    assert.equal(await withFileLock(lockPath, () => 'got it', { timeoutMs: 10_000 }), 'got it');
    assert.ok(Date.now() - started >= 200, 'waited for the holder to finish');
    assert.equal(await exited(holder), 0);
    assert.equal(fs.existsSync(lockPath), false);
  });

  test('a lock left by a process that died is taken over', async () => {
    const lockPath = join(tempDir(), 'rules.json.lock');
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    fs.writeFileSync(lockPath, `${dead} ${hostname()}\n`);
    assert.equal(await withFileLock(lockPath, () => fs.readFileSync(lockPath, 'utf8'), { timeoutMs: 2000 }), `${process.pid} ${hostname()}\n`);
    assert.equal(fs.existsSync(lockPath), false);
    assert.equal(fs.existsSync(`${lockPath}.break`), false);
  });

  test('a holder killed with SIGKILL does not block the next one', async () => {
    const lockPath = join(tempDir(), 'rules.json.lock');
    const holder = holdLock(lockPath, 60_000);
    await firstLine(holder);
    holder.kill('SIGKILL');
    await exited(holder);
    assert.ok(fs.existsSync(lockPath), 'the killed holder left its lock');
    assert.equal(await withFileLock(lockPath, () => 'taken over', { timeoutMs: 2000 }), 'taken over');
  });

  test('a lock of another host is never taken over (its pid means nothing here)', async () => {
    const lockPath = join(tempDir(), 'rules.json.lock');
    fs.writeFileSync(lockPath, '1 some-other-host\n');
    const e = await withFileLock(lockPath, () => 'no', { timeoutMs: 100 }).catch((err: unknown) => err);
    assert.ok(e instanceof LockTimeoutError);
    assert.match(e.message, /held by process 1 on some-other-host/);
  });

  test('concurrent updates from several processes lose none of them', async () => {
    const data = join(tempDir(), 'data');
    const storeModule = JSON.stringify(join(ROOT, 'src', 'platform', 'ruleStore.ts'));
    const rulesModule = JSON.stringify(join(ROOT, 'src', 'core', 'firewall', 'runtimeRules.ts'));
    const writers = Array.from({ length: 6 }, (_, i) =>
      child(
        `const { RuleStore } = require(${storeModule});
         const { addRule } = require(${rulesModule});
         const store = new RuleStore(${JSON.stringify(data)});
         (async () => { for (let j = 0; j < 3; j++) await store.update((s) => addRule(s, { dst: 'd${i}-' + j + '.example.com' })); })()
           .catch((e) => { console.error(e); process.exit(1); });`,
      ),
    );
    assert.deepEqual(await Promise.all(writers.map(exited)), writers.map(() => 0));
    const dsts = new RuleStore(data).load().state.rules.map((r) => r.dst);
    assert.equal(dsts.length, 18, dsts.join(' '));
  });
});
