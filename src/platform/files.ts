/**
 * Files that must survive a crash: atomic replacement (a reader or a crash sees the old content or
 * the new, never a mix or a truncated file) and an exclusive lock between processes.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

export interface WriteOptions {
  /** Permissions of the file; default 0600. */
  readonly mode?: number;
}

const uniqueSuffix = (): string => `${process.pid}.${randomBytes(4).toString('hex')}`;

/** Flushes a directory, so that a rename or a new name in it survives a power cut. */
function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `data` to a new temporary file beside `path` (same file system), flushed, with exactly `mode`. */
function writeTemporary(path: string, data: string | Uint8Array, mode: number): string {
  const temp = join(dirname(path), `.${basename(path)}.${uniqueSuffix()}.tmp`);
  const fd = fs.openSync(temp, 'wx', mode); // created with its mode: a key is never briefly readable
  try {
    fs.fchmodSync(fd, mode); // the umask may have narrowed `mode`; never widened, but be exact
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  return temp;
}

/**
 * Replaces `path` with `data`: writes a temporary file in the same directory (a rename is atomic
 * only within one file system), flushes it, renames it over `path`, then flushes the directory.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteOptions = {}): void {
  const temp = writeTemporary(path, data, options.mode ?? 0o600);
  try {
    fs.renameSync(temp, path);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
  fsyncDirectory(dirname(path));
}

/**
 * Creates `path` holding `data` only if it does not exist (returns false if it does), in one step: the
 * content is linked into place complete, so the file is never seen empty or half written.
 */
export function writeFileIfAbsent(path: string, data: string | Uint8Array, options: WriteOptions = {}): boolean {
  const temp = writeTemporary(path, data, options.mode ?? 0o600);
  try {
    fs.linkSync(temp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  fsyncDirectory(dirname(path));
  return true;
}

/** Who holds a lock: the lock file holds `PID HOST`. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holder: LockHolder | undefined,
    waitedMs: number,
  ) {
    const who = holder ? `process ${holder.pid}${holder.host !== hostname() ? ` on ${holder.host}` : ''}` : 'another process';
    super(
      `${lockPath} is held by ${who}; gave up after ${(waitedMs / 1000).toFixed(1)}s. ` +
        `Wait for it to finish and try again; if no clawker process with that pid is running, remove the lock: rm ${lockPath}`,
    );
    this.name = 'LockTimeoutError';
  }
}

export interface LockOptions {
  /** How long to wait for another holder; default 10 s. */
  readonly timeoutMs?: number;
  /** Time between attempts; default 25 ms. */
  readonly pollMs?: number;
}

function readHolder(lockPath: string): LockHolder | undefined {
  let text: string;
  try {
    text = fs.readFileSync(lockPath, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const m = /^(\d+) (\S+)/.exec(text);
  return m ? { pid: Number(m[1]), host: m[2]! } : undefined;
}

/** A holder is stale only when it is certainly gone: a process of this host that no longer exists. */
function isStale(holder: LockHolder): boolean {
  if (holder.host !== hostname() || holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: alive, owned by someone else
  }
}

/** Creates `lockPath` holding our pid and host, or returns false if it exists. */
const tryCreate = (lockPath: string): boolean => writeFileIfAbsent(lockPath, `${process.pid} ${hostname()}\n`);

/** Removes `lockPath` only if we hold it, so a lock taken over from us is never deleted. */
function releaseIfOurs(lockPath: string): void {
  const holder = readHolder(lockPath);
  if (holder?.pid === process.pid && holder.host === hostname()) fs.rmSync(lockPath, { force: true });
}

/**
 * Removes a lock whose holder died. Two waiters may both see the same dead holder; the takeover runs
 * under a second lock (`.break`) and re-reads the holder under it, so one waiter cannot delete the
 * lock the other has just taken.
 */
function breakStaleLock(lockPath: string, dead: LockHolder): boolean {
  const breaker = `${lockPath}.break`;
  if (!tryCreate(breaker)) {
    const other = readHolder(breaker);
    if (!other || !isStale(other)) return false; // another waiter is taking over: wait for it
    fs.rmSync(breaker, { force: true }); // its holder died mid-takeover
    return true;
  }
  try {
    const now = readHolder(lockPath);
    if (now && now.pid === dead.pid && now.host === dead.host) fs.rmSync(lockPath, { force: true });
    return true;
  } finally {
    releaseIfOurs(breaker);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` while holding the exclusive lock `lockPath` (created with the holder's pid). Waits for
 * another holder up to `timeoutMs`, then fails naming it; a lock left by a process that died is
 * taken over. The lock is released however `fn` ends.
 */
export async function withFileLock<T>(lockPath: string, fn: () => T | Promise<T>, options: LockOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 25;
  const started = Date.now();
  for (;;) {
    if (tryCreate(lockPath)) break;
    const holder = readHolder(lockPath);
    if (holder && isStale(holder) && breakStaleLock(lockPath, holder)) continue;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(lockPath, holder, waited);
    await sleep(pollMs + Math.random() * pollMs); // jitter, so waiters do not retry in step
  }
  try {
    return await fn();
  } finally {
    releaseIfOurs(lockPath);
  }
}
