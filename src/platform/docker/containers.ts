/**
 * Small Docker lookups that treat "not there" as an answer, not an error, and the framing Docker
 * puts on a container's log stream.
 */
import type Docker from 'dockerode';

export const isNotFound = (e: unknown): boolean => (e as { statusCode?: number }).statusCode === 404;

export async function inspectContainer(docker: Docker, name: string): Promise<Docker.ContainerInspectInfo | undefined> {
  try {
    return await docker.getContainer(name).inspect();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export async function inspectImage(docker: Docker, reference: string): Promise<Docker.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(reference).inspect();
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

export async function imageExists(docker: Docker, image: string): Promise<boolean> {
  return (await inspectImage(docker, image)) !== undefined;
}

/**
 * Splits a log stream of a container without a TTY: each write is framed by an 8-byte header
 * (stream, 0, 0, 0, size big-endian). Returns the text of the complete frames and the bytes of an
 * incomplete last one, to prepend to the next chunk.
 */
export function demuxLogFrames(buffer: Buffer): { text: string; rest: Buffer } {
  let text = '';
  let i = 0;
  while (i + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(i + 4);
    if (i + 8 + size > buffer.length) break;
    text += buffer.subarray(i + 8, i + 8 + size).toString('utf8');
    i += 8 + size;
  }
  return { text, rest: buffer.subarray(i) };
}
