/**
 * How the host reaches the control plane's API (issue 14, item 3): HTTP carried by a `docker exec`
 * session into the control-plane container, where `bpfman relay` joins the session's stdin/stdout to
 * the API's Unix socket. No port is published and no socket file crosses from the engine to the
 * host, so it works the same on a local engine, in Docker Desktop's VM and on a remote engine; who
 * may call the API is whoever may use Docker, Docker's own access control. Tests and the daemon's
 * own unit tests use a plain Unix socket.
 */
import type Docker from 'dockerode';
import { connect } from 'node:net';
import { Duplex } from 'node:stream';

/** A fresh byte stream to the API, one per HTTP connection. */
export interface ControlPlaneTransport {
  open(): Promise<Duplex>;
  /** Names the way in, for "not running" messages. */
  readonly description: string;
}

/** Nothing answers: the container is missing or stopped, or its API is not listening yet. */
export class ControlPlaneUnreachable extends Error {
  constructor(readonly description: string, readonly reason: string) {
    super(`no answer from ${description} (${reason})`);
    this.name = 'ControlPlaneUnreachable';
  }
}

/** The relay inside the control-plane image (images/controlplane: bpfman relay). */
export const RELAY_COMMAND = ['/opt/clawker/bpfman', 'relay', '--socket'] as const;
/** bpfman relay's exit code when nothing listens on the socket. */
const RELAY_NOT_LISTENING = 3;

export class ExecRelayTransport implements ControlPlaneTransport {
  readonly description: string;
  constructor(
    private readonly docker: Pick<Docker, 'getContainer'>,
    private readonly container: string,
    /** The API's socket as the control plane sees it. */
    private readonly socketPath: string,
  ) {
    this.description = `the control plane (container ${container})`;
  }

  async open(): Promise<Duplex> {
    let exec: Docker.Exec;
    try {
      exec = await this.docker.getContainer(this.container).exec({ Cmd: [...RELAY_COMMAND, this.socketPath], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode;
      // 404: no such container; 409: it is not running (or restarting).
      if (status === 404 || status === 409) throw new ControlPlaneUnreachable(this.description, status === 404 ? 'no such container' : 'not running');
      throw e;
    }
    const raw = (await exec.start({ hijack: true, stdin: true })) as unknown as Duplex;
    return new ExecStream(raw, async () => (await exec.inspect()).ExitCode ?? undefined, this.description);
  }
}

/** A Unix socket the caller can reach directly (unit tests; a daemon's own checks). */
export class UnixSocketTransport implements ControlPlaneTransport {
  readonly description: string;
  constructor(private readonly socketPath: string) {
    this.description = `the control plane (socket ${socketPath})`;
  }
  open(): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      socket.once('connect', () => resolve(socket));
      socket.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? new ControlPlaneUnreachable(this.description, e.code) : e),
      );
    });
  }
}

/**
 * The exec session as a plain byte stream: writes go to the relay's stdin as they are; what comes
 * back is Docker's multiplexed framing (8-byte headers: stream type, size), of which stdout is the
 * API's bytes and stderr the relay's diagnostics.
 */
class ExecStream extends Duplex {
  private pending: Buffer = Buffer.alloc(0);
  private stderr = '';
  private gotData = false;
  private ending = false;
  // A socket's idle timeout, which http.request's `timeout` relies on: without it a silent peer hangs the caller.
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly raw: Duplex,
    private readonly exitCode: () => Promise<number | undefined>,
    private readonly description: string,
  ) {
    super();
    raw.on('data', (chunk: Buffer) => this.frames(chunk));
    raw.on('end', () => void this.ended());
    raw.on('error', (e) => this.destroy(e));
    raw.on('close', () => {
      if (!this.readableEnded) void this.ended();
    });
  }

  private frames(chunk: Buffer): void {
    this.armIdle();
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      const type = this.pending[0];
      const payload = this.pending.subarray(8, 8 + size);
      this.pending = this.pending.subarray(8 + size);
      if (type === 1) {
        this.gotData = true;
        if (!this.push(payload)) this.raw.pause(); // resumed by _read
      } else if (type === 2 && this.stderr.length < 4096) this.stderr += payload.toString('utf8');
    }
  }

  /** The exec session's end ('end' or 'close', whichever comes first), handled once. */
  private async ended(): Promise<void> {
    if (this.ending) return;
    this.ending = true;
    clearTimeout(this.idleTimer);
    // The relay found nothing listening: the API is not up (yet), not a broken connection.
    if (!this.gotData) {
      const code = await this.exitCode().catch(() => undefined);
      if (code === RELAY_NOT_LISTENING) return void this.destroy(new ControlPlaneUnreachable(this.description, 'its API is not listening'));
      if (this.stderr.trim()) return void this.destroy(new Error(`${this.description}: ${this.stderr.trim()}`));
    }
    this.push(null);
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.armIdle();
    this.raw.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.raw.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.raw.destroy();
    callback(error);
  }

  // What http.ClientRequest asks of a socket: net.Socket's idle timeout ('timeout' after ms without traffic; 0 off).
  setTimeout(ms: number, callback?: () => void): this {
    this.idleMs = ms;
    this.armIdle();
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    return this;
  }
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.idleMs <= 0 || this.destroyed || this.ending) return;
    this.idleTimer = setTimeout(() => this.emit('timeout'), this.idleMs);
    this.idleTimer.unref();
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  // An idle kept-alive connection must not keep a finished CLI running: forward to Docker's socket.
  ref(): this {
    (this.raw as Partial<{ ref(): unknown }>).ref?.();
    return this;
  }
  unref(): this {
    (this.raw as Partial<{ unref(): unknown }>).unref?.();
    return this;
  }
}
