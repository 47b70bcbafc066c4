/**
 * The control plane's HTTP API on a Unix socket (routes: src/core/stack/controlPlaneApi.ts). The
 * socket is the only way in: mode 0600 in a 0700 tmpfs of the container's own, reached from the
 * host only through `docker exec` (so Docker's access control is the gate). Bodies are small JSON
 * (a reload's may carry the rule store); the event stream is JSON lines.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { type ApiError, MAX_RELOAD_BODY } from '../core/stack/controlPlaneApi';
import { type ControlPlane, ControlPlaneError } from './controlPlane';
import { parseStackInputs, StackInputsError } from './stackInputs';

/** The event stream as the API serves it. */
export interface EventSource {
  tail(n: number): unknown[];
  /** Returns the unsubscribe function. With `stream`, a client that stops reading loses the oldest
   * events (counted) instead of growing the daemon's memory. */
  subscribe(listener: (event: unknown, dropped: number) => void, options?: { stream?: NodeJS.WritableStream }): () => void;
}

const MAX_BODY = 64 * 1024;

function readBody(req: IncomingMessage, limit = MAX_BODY): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new ControlPlaneError('request body too large', 413));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new ControlPlaneError('request body is not JSON', 400));
      }
    });
    req.on('error', reject);
  });
}

function decodeAgent(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new ControlPlaneError(`the agent in the path is not valid URL encoding: ${segment}`, 400);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface ApiHooks {
  /** Called after `down` answered: the daemon exits. */
  onDown(): void;
}

export function startApi(socketPath: string, controlPlane: ControlPlane, events: EventSource, hooks: ApiHooks): Promise<Server> {
  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      // Inputs the host sent that cannot be used are the caller's error, like any bad request.
      if (e instanceof StackInputsError) e = new ControlPlaneError(`reload refused: ${e.message}; the running firewall keeps its rules`, 400, 'controlplane', 'clawker firewall list checks the rule store');
      const error: ApiError =
        e instanceof ControlPlaneError
          ? { error: e.message, ...(e.component ? { component: e.component } : {}), ...(e.next ? { next: e.next } : {}), ...(e.candidates ? { candidates: e.candidates } : {}) }
          : { error: e instanceof Error ? e.message : String(e) };
      if (!res.headersSent) send(res, e instanceof ControlPlaneError ? e.status : 500, error);
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://controlplane');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (method === 'GET' && path === '/v1/status') return send(res, 200, controlPlane.status());
    if (method === 'POST' && path === '/v1/reload') {
      // With a body: the host's rule store and CA, adopted before rendering (see StackInputs).
      const body = await readBody(req, MAX_RELOAD_BODY);
      const empty = typeof body === 'object' && body !== null && Object.keys(body).length === 0;
      return send(res, 200, await controlPlane.reload(empty ? undefined : parseStackInputs(body)));
    }
    if (method === 'POST' && path === '/v1/down') {
      const result = await controlPlane.down();
      send(res, 200, result);
      res.on('finish', () => hooks.onDown());
      return;
    }
    if (method === 'GET' && path === '/v1/events') return streamEvents(url, req, res);
    const agentRoute = /^\/v1\/agents\/([^/]+)\/(enable|disable|bypass)$/.exec(path);
    if (agentRoute) {
      // Container name, container id (or a 12+ digit prefix), or an agent name only one agent has.
      const agent = decodeAgent(agentRoute[1]!);
      const verb = agentRoute[2]!;
      if (verb === 'enable' && method === 'POST') return send(res, 200, await controlPlane.setEnabled(agent, true));
      if (verb === 'disable' && method === 'POST') return send(res, 200, await controlPlane.setEnabled(agent, false));
      if (verb === 'bypass' && method === 'DELETE') return send(res, 200, await controlPlane.bypass(agent, 0));
      if (verb === 'bypass' && method === 'POST') {
        const body = (await readBody(req)) as { seconds?: unknown };
        const seconds = body.seconds;
        if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0 || seconds > 7 * 24 * 3600) {
          throw new ControlPlaneError('bypass needs {"seconds": N} with 0 < N <= 604800 (one week)', 400);
        }
        return send(res, 200, await controlPlane.bypass(agent, seconds));
      }
    }
    throw new ControlPlaneError(`no such endpoint: ${method} ${path}`, 404);
  }

  function streamEvents(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const tail = Math.min(Math.max(Number(url.searchParams.get('tail') ?? '100') || 0, 0), 10_000);
    const follow = url.searchParams.get('follow') === '1';
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    for (const e of events.tail(tail)) res.write(`${JSON.stringify(e)}\n`);
    if (!follow) return void res.end();
    const unsubscribe = events.subscribe(
      (e, dropped) => {
        if (dropped > 0) res.write(`${JSON.stringify({ time: new Date().toISOString(), source: 'controlplane', verdict: 'allowed', message: `${dropped} events not sent: this client read too slowly` })}\n`);
        res.write(`${JSON.stringify(e)}\n`);
      },
      { stream: res },
    );
    req.on('close', unsubscribe);
  }

  return new Promise((resolve, reject) => {
    mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
    rmSync(socketPath, { force: true }); // a socket left by a killed control plane
    server.once('error', reject);
    server.listen(socketPath, () => {
      chmodSync(socketPath, 0o600);
      resolve(server);
    });
  });
}
