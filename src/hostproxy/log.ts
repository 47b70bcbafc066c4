/**
 * The daemon's log: timestamped lines on stdout, which the launcher points at
 * <dataDir>/hostproxy/hostproxy.log (appending). When that file grows past the cap, it is copied to
 * hostproxy.log.1 and truncated (the descriptor appends, so writing goes on at its new end).
 *
 * Callers build lines from fixed words and validated, non-secret values only (agent name, source
 * address, operation, protocol, host, outcome); `sanitize` strips anything that could forge a line.
 */
import * as fs from 'node:fs';

export type LogLine = (message: string) => void;

/** One line: control characters become '?', and the length is bounded. */
export function sanitize(message: string, max = 1000): string {
  // eslint-disable-next-line no-control-regex
  const clean = message.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

export const formatLine = (message: string, at: Date = new Date()): string => `${at.toISOString()} [hostproxy] ${sanitize(message)}\n`;

export interface FileLogOptions {
  /** The log file stdout is expected to be (rotation only happens if fd 1 is that file). */
  readonly logPath?: string;
  readonly maxBytes: number;
  readonly fd?: number;
}

export function stdoutLog(options: FileLogOptions): LogLine {
  const fd = options.fd ?? 1;
  let sinceCheck = 0;
  const maybeRotate = (): void => {
    if (!options.logPath) return;
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.size <= options.maxBytes) return;
      const onDisk = fs.statSync(options.logPath);
      if (onDisk.ino !== st.ino || onDisk.dev !== st.dev) return; // stdout is not our log file
      fs.copyFileSync(options.logPath, `${options.logPath}.1`);
      fs.chmodSync(`${options.logPath}.1`, 0o600);
      fs.ftruncateSync(fd, 0);
    } catch {
      /* logging must never take the daemon down */
    }
  };
  return (message) => {
    const line = formatLine(message);
    try {
      fs.writeSync(fd, line);
    } catch {
      return;
    }
    sinceCheck += line.length;
    if (sinceCheck > 16 * 1024) {
      sinceCheck = 0;
      maybeRotate();
    }
  };
}
