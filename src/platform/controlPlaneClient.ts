/**
 * The client side of the control plane's API (src/core/stack/controlPlaneApi.ts): HTTP over a
 * transport (controlPlaneTransport.ts: a docker exec session for the CLI, a Unix socket in tests).
 * Connections are kept alive, so a process that polls pays for one exec, not one per request.
 * "Not running" (no container, not started, API not listening) is its own error, so callers can say
 * what to do instead of printing ECONNREFUSED.
 */
import { Agent, request, type RequestOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { createInterface } from 'node:readline';
import type { AgentResult, ApiError, DownResult, ReloadResult, StackInputs, Status } from '../core/stack/controlPlaneApi';
import { type ControlPlaneTransport, ControlPlaneUnreachable } from './controlPlaneTransport';

export class ControlPlaneNotRunning extends Error {
  constructor(readonly description: string, reason?: string) {
    super(`the firewall control plane is not running (no answer from ${description}${reason ? `: ${reason}` : ''}); start it with: clawker firewall up`);
    this.name = 'ControlPlaneNotRunning';
  }
}

/** An http.Agent whose connections come from the transport, kept alive between requests. */
class TransportAgent extends Agent {
  constructor(private readonly transport: ControlPlaneTransport) {
    super({ keepAlive: true, maxSockets: 4, maxFreeSockets: 1 });
  }
  override createConnection(_options: unknown, callback: (error: Error | null, socket?: Duplex) => void): undefined {
    this.transport.open().then(
      (stream) => callback(null, stream),
      (e: unknown) => callback(e instanceof ControlPlaneUnreachable ? new ControlPlaneNotRunning(this.transport.description, e.reason) : (e as Error)),
    );
    return undefined;
  }
}

const notRunning = (e: unknown, transport: ControlPlaneTransport): unknown =>
  e instanceof ControlPlaneNotRunning ? e : e instanceof ControlPlaneUnreachable ? new ControlPlaneNotRunning(transport.description, e.reason) : e;

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
  private readonly agent: TransportAgent;
  constructor(
    readonly transport: ControlPlaneTransport,
    private readonly timeoutMs = 120_000,
  ) {
    this.agent = new TransportAgent(transport);
  }

  /** Closes kept-alive connections (a long-lived caller that is done). */
  close(): void {
    this.agent.destroy();
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        { agent: this.agent, host: 'controlplane', path, method, timeout: this.timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
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
      req.on('error', (e) => reject(notRunning(e, this.transport)));
      if (payload) req.write(payload);
      req.end();
    });
  }

  status(): Promise<Status> {
    return this.call('GET', '/v1/status');
  }
  /** With inputs (see reloadFromHost): the host's rule store and CA replace the control plane's copy first. */
  reload(inputs?: StackInputs): Promise<ReloadResult> {
    return this.call('POST', '/v1/reload', inputs);
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
    return new Promise((resolve, reject) => {
      // Its own connection (not the kept-alive pool): a followed stream holds it until aborted.
      const req = request(
        {
          createConnection: (_o: unknown, callback: (error: Error | null, socket?: Duplex) => void) =>
            void this.transport.open().then((s) => callback(null, s), (e: unknown) => callback(notRunning(e, this.transport) as Error)),
          host: 'controlplane',
          path: `/v1/events?tail=${options.tail}${options.follow ? '&follow=1' : ''}`,
          method: 'GET',
          ...(options.signal ? { signal: options.signal } : {}),
        } as unknown as RequestOptions,
        (res) => {
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
        },
      );
      req.on('error', (e: Error) => (e.name === 'AbortError' ? resolve() : reject(notRunning(e, this.transport))));
      req.end();
    });
  }
}
