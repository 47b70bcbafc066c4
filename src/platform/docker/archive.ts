/**
 * Tar archives in memory, for putting a few small files into a container through the Docker API
 * (putArchive): the agents' session files, the control plane's copy of the rule store and CA.
 */
import type { ArchiveEntry } from '../../core/agents/lifecycle';

/** tar-stream (dockerode's own dependency) has no types here; the part of it used. */
interface TarPack extends NodeJS.ReadableStream {
  entry(header: { name: string; type: 'file' | 'directory'; mode: number; uid: number; gid: number; mtime: Date; size?: number }, content?: string | Buffer): unknown;
  finalize(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tarPack = (): TarPack => (require('tar-stream') as { pack: () => TarPack }).pack();

/** The entries as one tar archive in memory (they are a few kilobytes). */
export async function packArchive(entries: readonly ArchiveEntry[], mtime: Date = new Date()): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.path, type: 'directory', mode: e.mode, uid: e.uid, gid: e.gid, mtime });
    else {
      const content = Buffer.from(e.content ?? '', 'utf8');
      pack.entry({ name: e.path, type: 'file', mode: e.mode, uid: e.uid, gid: e.gid, mtime, size: content.length }, content);
    }
  }
  pack.finalize();
  return done;
}
