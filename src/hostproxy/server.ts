/**
 * The host proxy's HTTP/1.1 server (plain HTTP: it listens on the firewall bridge's gateway only).
 *
 *   GET  /v1/health            200 {service, pid}; no authentication (the launcher's probe)
 *   POST /v1/git/credential    {operation, fields} → git credential fill|approve|reject on the host
 *   POST /v1/browser/open      {url} → the host's browser
 *
 * Every other request must carry an agent container's token (HOST_PROXY_TOKEN_HEADER; token.ts):
 * `<name>:<proof>` whose proof is right for the name, and the name a running container labelled as
 * this stack's agent (AgentLookup) — the source address is not evidence (NATed on Docker Desktop
 * and remote engines). A bare proof (containers created before tokens named them) is accepted only
 * from that container's firewall-network address. Otherwise 403 with a short reason, logged with
 * the source address only. Bodies are JSON (application/json), at most
 * MAX_BODY_BYTES. Responses are JSON. Log lines name the agent, the operation, protocol, host and
 * outcome: never a username, password, token or full URL.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { HOST_PROXY_TOKEN_HEADER } from '../core/agents/agentContract';
import { type AgentIdentity, type AgentLookup, normalizeAddress } from './agents';
import type { UrlOpener } from './browser';
import { HOST_PROXY_SERVICE } from './constants';
import type { GitCredentialRunner } from './gitCredential';
import type { LogLine } from './log';
import { hostProxyToken, parseAgentToken, tokensEqual } from './token';
import { validateBrowserRequest, validateCredentialRequest } from './validate';

export const MAX_BODY_BYTES = 32 * 1024;
/** Requests handled at once (beyond: 503). */
export const MAX_IN_FLIGHT = 32;
/** git processes at once (beyond: 429). */
export const MAX_GIT_IN_FLIGHT = 4;
/** Browser opens per agent per minute (beyond: 429). */
export const MAX_OPENS_PER_MINUTE = 10;

export interface HostProxyDeps {
  readonly secret: Buffer;
  readonly agents: AgentLookup;
  readonly git: GitCredentialRunner;
  readonly openUrl: UrlOpener;
  readonly log: LogLine;
  readonly now?: () => number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  // Stryker disable next-line ConditionalExpression,BlockStatement: unreachable today (every send is its handler's last step, and the catch only follows a throw before one); kept so that a later change cannot crash the daemon with ERR_HTTP_HEADERS_SENT
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(text);
}

/** Reads a JSON body: application/json, at most MAX_BODY_BYTES. */
function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return Promise.reject(new HttpError(415, 'content type must be application/json'));
  // Refused before reading when the declared length is too large (without one, chunked, this is NaN: the count below holds).
  if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return Promise.reject(new HttpError(413, 'body too large'));
  // A promise settles once: past the limit, this and every later chunk (size only grows) is dropped, and 'end' changes nothing.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new HttpError(413, 'body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'body is not valid JSON'));
      }
    });
    // Stryker disable next-line all: the request errs only when its connection is gone, so there is no one to answer and nothing is logged; this only settles the promise
    req.on('error', () => reject(new HttpError(400, 'request aborted')));
  });
}

const ROUTES: Record<string, string> = {
  // Stryker disable next-line StringLiteral: GET /v1/health is answered before handle(); here the entry only makes other methods 405, as any string no request method equals would
  '/v1/health': 'GET',
  '/v1/git/credential': 'POST',
  '/v1/browser/open': 'POST',
};

export function createHostProxyServer(deps: HostProxyDeps): Server {
  const now = deps.now ?? Date.now;
  const log = deps.log;
  const tokens = new Map<string, string>(); // container name → expected token
  const expectedToken = (name: string): string => {
    let t = tokens.get(name);
    if (t === undefined) {
      if (tokens.size > 1000) tokens.clear();
      t = hostProxyToken(deps.secret, name);
      tokens.set(name, t);
    }
    return t;
  };
  let inFlight = 0;
  let gitInFlight = 0;
  const opens = new Map<string, number[]>();

  async function authenticate(req: IncomingMessage, source: string): Promise<AgentIdentity> {
    const presented = req.headers[HOST_PROXY_TOKEN_HEADER];
    const named = parseAgentToken(presented);
    if (named) {
      // The proof first (no Docker call for a forged token), then the container it names must be a running agent.
      if (!tokensEqual(named.proof, expectedToken(named.name))) {
        log(`403 from ${source}: wrong token`);
        throw new HttpError(403, 'wrong token');
      }
      return runningAgent(() => deps.agents.lookupName(named.name), source, `${named.name} is not a running agent container`);
    }
    const agent = await runningAgent(() => deps.agents.lookup(source), source, 'not an agent container');
    if (!tokensEqual(presented, expectedToken(agent.name))) {
      log(`403 from ${source}: ${presented === undefined ? 'missing' : 'wrong'} token`);
      throw new HttpError(403, presented === undefined ? 'missing token' : 'wrong token');
    }
    return agent;
  }

  /** The agent `find` finds in Docker: 503 when Docker cannot say, 403 (logging `notFound`) when it is none. */
  async function runningAgent(find: () => Promise<AgentIdentity | undefined>, source: string, notFound: string): Promise<AgentIdentity> {
    let agent: AgentIdentity | undefined;
    try {
      agent = await find();
    } catch {
      log(`503 from ${source}: cannot list agent containers in Docker`);
      throw new HttpError(503, 'agent lookup failed');
    }
    if (!agent) {
      log(`403 from ${source}: ${notFound}`);
      throw new HttpError(403, 'not an agent container');
    }
    return agent;
  }

  async function gitCredential(req: IncomingMessage, res: ServerResponse, agent: AgentIdentity): Promise<void> {
    const parsed = validateCredentialRequest(await readJson(req));
    if (!parsed.ok) {
      log(`git-credential agent=${agent.name} refused: ${parsed.reason}`);
      throw new HttpError(400, parsed.reason);
    }
    const { operation, fields } = parsed.value;
    const what = `git-credential agent=${agent.name} operation=${operation} protocol=${fields.protocol} host=${fields.host}`;
    if (gitInFlight >= MAX_GIT_IN_FLIGHT) {
      log(`${what} outcome=busy`);
      throw new HttpError(429, 'too many credential requests at once');
    }
    gitInFlight++;
    let result;
    try {
      result = await deps.git(operation, fields);
    } finally {
      gitInFlight--;
    }
    switch (result.kind) {
      case 'found':
        log(`${what} outcome=found`);
        return send(res, 200, { fields: { username: result.username, password: result.password } });
      case 'none':
        log(`${what} outcome=none`);
        return send(res, 404, { error: 'no credential' });
      case 'done':
        log(`${what} outcome=ok`);
        return send(res, 200, {});
      case 'error':
        log(`${what} outcome=error (${result.reason})`);
        return send(res, 502, { error: result.reason });
    }
  }

  async function browserOpen(req: IncomingMessage, res: ServerResponse, agent: AgentIdentity): Promise<void> {
    const parsed = validateBrowserRequest(await readJson(req));
    if (!parsed.ok) {
      log(`browser-open agent=${agent.name} refused: ${parsed.reason}`);
      throw new HttpError(400, parsed.reason);
    }
    const t = now();
    const recent = (opens.get(agent.name) ?? []).filter((at) => t - at < 60_000);
    if (recent.length >= MAX_OPENS_PER_MINUTE) {
      log(`browser-open agent=${agent.name} host=${parsed.value.host} outcome=rate-limited`);
      throw new HttpError(429, 'too many browser opens');
    }
    recent.push(t);
    opens.set(agent.name, recent);
    try {
      await deps.openUrl(parsed.value.url);
    } catch (e) {
      const reason = e instanceof Error ? e.message : 'cannot open';
      log(`browser-open agent=${agent.name} host=${parsed.value.host} outcome=error (${reason})`);
      throw new HttpError(502, 'cannot open the browser');
    }
    log(`browser-open agent=${agent.name} host=${parsed.value.host} outcome=opened`);
    send(res, 200, {});
  }

  async function handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const source = normalizeAddress(req.socket.remoteAddress);
    const method = ROUTES[path];
    const agent = await authenticate(req, source);
    if (method === undefined) throw new HttpError(404, 'no such endpoint');
    if (req.method !== method) throw new HttpError(405, 'method not allowed');
    if (path === '/v1/git/credential') return gitCredential(req, res, agent);
    return browserOpen(req, res, agent); // the only route left: GET /v1/health never gets here
  }

  const server = createServer({ maxHeaderSize: 8 * 1024, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, (req, res) => {
    const path = req.url!.split('?')[0]!; // a server's request always has a url
    if (req.method === 'GET' && path === '/v1/health') {
      // Before the in-flight limit: a busy daemon is still running, and the launcher must see that.
      send(res, 200, { service: HOST_PROXY_SERVICE, pid: process.pid });
      return;
    }
    if (inFlight >= MAX_IN_FLIGHT) {
      send(res, 503, { error: 'busy' });
      return;
    }
    inFlight++;
    res.on('close', () => inFlight--);
    handle(req, res, path).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // An unread body would be parsed as the next request: close the connection instead.
        if (!req.complete) res.setHeader('connection', 'close');
        send(res, e.status, { error: e.reason });
      } else {
        log(`500: internal error (${e instanceof Error ? e.name : 'unknown'})`);
        send(res, 500, { error: 'internal error' });
      }
    });
  });
  // Idle sockets are dropped; the longest response (git, 30 s) fits.
  server.setTimeout(45_000, (socket) => socket.destroy());
  server.maxConnections = 128;
  server.maxRequestsPerSocket = 100;
  return server;
}
