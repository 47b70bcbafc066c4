/**
 * The egress event log: one JSON line per event in `<dataDir>/events/egress.jsonl`, rotated to
 * `egress.jsonl.1` before it would pass its size limit (one old file kept). Writes are synchronous
 * appends on an open descriptor (O_APPEND, one write per line): events stay in order, `readTail`
 * sees everything appended before it, and there is no queue to grow. A write that fails is
 * reported through `onError` and counted; it never throws into the caller.
 */
import { Buffer } from 'node:buffer';
import * as fs from 'node:fs';
import { dirname, join } from 'node:path';
import { type EgressEvent, egressEventSchema } from '../../core/events/egressEvent';

export const EVENT_LOG_MAX_BYTES = 10 * 1024 * 1024;
const TAIL_CHUNK = 64 * 1024;

/** Where the events are kept under a data directory. */
export const egressLogPath = (dataDir: string): string => join(dataDir, 'events', 'egress.jsonl');

export interface EventLogOptions {
  /** Rotate before the file would pass this many bytes; default 10 MiB. */
  readonly maxBytes?: number;
  /** A write failed, or an event was not valid: that event is lost. */
  readonly onError?: (error: Error) => void;
}

export interface EventLogStats {
  readonly written: number;
  /** Events not written: failed writes and invalid events. */
  readonly lost: number;
  readonly rotations: number;
}

export class EventLog {
  private readonly maxBytes: number;
  private readonly onError: (error: Error) => void;
  private fd: number | undefined;
  private size = 0;
  private written = 0;
  private lost = 0;
  private rotations = 0;

  constructor(
    readonly path: string,
    options: EventLogOptions = {},
  ) {
    this.maxBytes = Math.max(1, options.maxBytes ?? EVENT_LOG_MAX_BYTES);
    this.onError = options.onError ?? (() => {});
  }

  static inDataDir(dataDir: string, options: EventLogOptions = {}): EventLog {
    return new EventLog(egressLogPath(dataDir), options);
  }

  get rotatedPath(): string {
    return `${this.path}.1`;
  }

  get stats(): EventLogStats {
    return { written: this.written, lost: this.lost, rotations: this.rotations };
  }

  /** Appends one event; false (and `onError`) when it was not written. */
  append(event: EgressEvent): boolean {
    const checked = egressEventSchema.safeParse(event);
    if (!checked.success) {
      this.fail(new Error(`not an egress event: ${checked.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`));
      return false;
    }
    const line = Buffer.from(`${JSON.stringify(checked.data)}\n`);
    try {
      let fd = this.open();
      if (this.size > 0 && this.size + line.length > this.maxBytes) fd = this.rotate();
      for (let offset = 0; offset < line.length; ) offset += fs.writeSync(fd, line, offset);
      this.size += line.length;
      this.written++;
      return true;
    } catch (e) {
      this.close(); // reopen (and re-measure) on the next append
      this.fail(e instanceof Error ? e : new Error(String(e)));
      return false;
    }
  }

  /** The last `n` events, oldest first, from the current file then the rotated one; malformed lines are skipped. */
  readTail(n: number): EgressEvent[] {
    if (!(n >= 1)) return [];
    const want = Math.floor(n);
    const current = lastEvents(this.path, want);
    if (current.length >= want) return current;
    return [...lastEvents(this.rotatedPath, want - current.length), ...current];
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd !== undefined) return this.fd;
    fs.mkdirSync(dirname(this.path), { recursive: true });
    const fd = fs.openSync(this.path, 'a');
    this.fd = fd;
    this.size = fs.fstatSync(fd).size;
    return fd;
  }

  private rotate(): number {
    this.close();
    try {
      fs.renameSync(this.path, this.rotatedPath); // replaces the previous .1
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // removed by hand: nothing to keep
    }
    this.rotations++;
    return this.open();
  }

  private fail(error: Error): void {
    this.lost++;
    try {
      this.onError(error);
    } catch {
      // a reporter that throws must not break the log
    }
  }
}

function parseLine(line: Buffer): EgressEvent | undefined {
  if (line.length === 0) return undefined;
  try {
    const parsed = egressEventSchema.safeParse(JSON.parse(line.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The last `want` valid events of a file, oldest first, read backwards in chunks (it may be 10 MiB). */
function lastEvents(path: string, want: number): EgressEvent[] {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  try {
    const newestFirst: EgressEvent[] = [];
    let position = fs.fstatSync(fd).size;
    let carry = Buffer.alloc(0); // the end of a line whose start is in an earlier chunk
    while (position > 0 && newestFirst.length < want) {
      const length = Math.min(TAIL_CHUNK, position);
      position -= length;
      const chunk = Buffer.alloc(length);
      fs.readSync(fd, chunk, 0, length, position);
      const data = Buffer.concat([chunk, carry]);
      let end = data.length;
      for (let i = data.length - 1; i >= 0 && newestFirst.length < want; i--) {
        if (data[i] !== 0x0a) continue;
        const event = parseLine(data.subarray(i + 1, end));
        if (event) newestFirst.push(event);
        end = i;
      }
      carry = data.subarray(0, end);
    }
    if (position === 0 && newestFirst.length < want) {
      const event = parseLine(carry); // the file's first line
      if (event) newestFirst.push(event);
    }
    return newestFirst.reverse();
  } finally {
    fs.closeSync(fd);
  }
}
