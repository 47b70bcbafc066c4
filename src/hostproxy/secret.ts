/** The daemon's side of the secret: where it is and how it is read (refused unless private). */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { HOST_PROXY_SECRET_BYTES, HOST_PROXY_SECRET_FILE, HOST_PROXY_SUBDIR } from './constants';

export const hostProxyDir = (dataDir: string): string => join(dataDir, HOST_PROXY_SUBDIR);

/** Reads an existing secret (the daemon does this); fails if it is missing, the wrong size or readable by others. */
export function readHostProxySecret(dataDir: string): Buffer {
  const path = join(hostProxyDir(dataDir), HOST_PROXY_SECRET_FILE);
  const fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) throw new Error(`${path} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); expected 600`);
    if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`${path} belongs to another user`);
    const secret = fs.readFileSync(fd);
    if (secret.length !== HOST_PROXY_SECRET_BYTES) throw new Error(`${path} has ${secret.length} bytes, expected ${HOST_PROXY_SECRET_BYTES}`);
    return secret;
  } finally {
    fs.closeSync(fd);
  }
}

