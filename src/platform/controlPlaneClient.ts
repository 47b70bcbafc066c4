/**
 * The client side of the control plane's API (src/core/stack/controlPlaneApi.ts): HTTP over the
 * Unix socket in the data directory. "Not running" (no socket, nobody listening) is its own error,
 * so callers can say what to do instead of printing ECONNREFUSED.
 */
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type AgentResult, type ApiError, CONTROL_SOCKET, type DownResult, type ReloadResult, type Status } from '../core/stack/controlPlaneApi';

export class ControlPlaneNotRunning extends Error {
  constructor(readonly socketPath: string) {
    super(`the firewall control plane is not running (no answer on ${socketPath}); start it with: clawker firewall up`);
    this.name = 'ControlPlaneNotRunning';
  }
}

export class ControlPlaneRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.next ? `${body.error} (next: ${body.next})` : body.error);
    this.name = 'ControlPlaneRequestError';
  }
}

export class ControlPlaneClient {
  readonly socketPath: string;
  constructor(dataDir: string, private readonly timeoutMs = 120_000) {
    this.socketPath = join(dataDir, CONTROL_SOCKET);
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!existsSync(this.socketPath)) return Promise.reject(new ControlPlaneNotRunning(this.socketPath));
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, path, method, timeout: this.timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              return reject(new Error(`the control plane answered ${method} ${path} with something that is not JSON (HTTP ${res.statusCode})`));
            }
            if ((res.statusCode ?? 500) >= 400) reject(new ControlPlaneRequestError(res.statusCode ?? 500, parsed as ApiError));
            else resolve(parsed as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`the control plane did not answer ${method} ${path} within ${this.timeoutMs / 1000} s`)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? new ControlPlaneNotRunning(this.socketPath) : e));
      if (payload) req.write(payload);
      req.end();
    });
  }

  status(): Promise<Status> {
    return this.call('GET', '/v1/status');
  }
  reload(): Promise<ReloadResult> {
    return this.call('POST', '/v1/reload');
  }
  setEnabled(agent: string, enabled: boolean): Promise<AgentResult> {
    return this.call('POST', `/v1/agents/${encodeURIComponent(agent)}/${enabled ? 'enable' : 'disable'}`);
  }
  bypass(agent: string, seconds: number): Promise<AgentResult> {
    return seconds > 0 ? this.call('POST', `/v1/agents/${encodeURIComponent(agent)}/bypass`, { seconds }) : this.call('DELETE', `/v1/agents/${encodeURIComponent(agent)}/bypass`);
  }
  down(): Promise<DownResult> {
    return this.call('POST', '/v1/down');
  }

  /** The event stream: the last `tail` events, then (follow) new ones until the signal aborts. */
  events(options: { tail: number; follow: boolean; signal?: AbortSignal; onOpen?: () => void }, onEvent: (event: unknown) => void): Promise<void> {
    if (!existsSync(this.socketPath)) return Promise.reject(new ControlPlaneNotRunning(this.socketPath));
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path: `/v1/events?tail=${options.tail}${options.follow ? '&follow=1' : ''}`, method: 'GET', ...(options.signal ? { signal: options.signal } : {}) }, (res) => {
        // Connected: the stream is open even while no event comes (an idle stack).
        if ((res.statusCode ?? 500) < 400) options.onOpen?.();
        const lines = createInterface({ input: res });
        // readline re-emits the response's errors: handled below, on the response itself.
        lines.on('error', () => undefined);
        lines.on('line', (l) => {
          try {
            onEvent(JSON.parse(l));
          } catch {
            // partial line at abort
          }
        });
        res.on('end', resolve);
        res.on('close', resolve);
        // An abort (or the control plane going away) tears the response down: that ends the stream, it is not a crash.
        res.on('error', (e) => (options.signal?.aborted ? resolve() : reject(e)));
      });
      req.on('error', (e: NodeJS.ErrnoException) => (e.name === 'AbortError' ? resolve() : reject(e.code === 'ECONNREFUSED' ? new ControlPlaneNotRunning(this.socketPath) : e)));
      req.end();
    });
  }
}
