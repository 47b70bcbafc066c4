/**
 * The control plane's side of the supervisor session: mutual TLS to an agent's PID 1 (agentd) on the
 * firewall network. The control plane presents a client certificate with CN `clawker-controlplane`;
 * it accepts only a server certificate chained to the same CA whose CN is the container's name, so
 * one agent cannot answer for another.
 *
 * Used once an agent is enrolled: `start` forks the agent's command, which therefore never runs
 * before its egress is enforced.
 */
import { connect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENTD_SESSION_PORT, SESSION_MAX_LINE, type SessionRequest, type SessionResponse, sessionResponseSchema } from '../core/agents/agentContract';

export interface SessionCredentials {
  readonly caPem: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
}

export interface AgentEndpoint {
  readonly ip: string;
  /** The container's name (without Docker's leading `/`): the CN its supervisor's certificate carries. */
  readonly containerName: string;
  readonly port?: number;
}

type Request = SessionRequest extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

export class AgentSessionError extends Error {
  constructor(
    message: string,
    /** True when the supervisor could not be reached at all (still booting, or not ours). */
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

/** One request over a fresh connection: sessions are rare (a start per agent), so no pooling. */
export function sessionRequest(credentials: SessionCredentials, endpoint: AgentEndpoint, request: Request, timeoutMs = 10_000): Promise<SessionResponse> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let handshaken = false;
    let buffer = '';
    const finish = (error: Error | undefined, response?: SessionResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(response!);
    };
    const socket: TLSSocket = connect({
      host: endpoint.ip,
      port: endpoint.port ?? AGENTD_SESSION_PORT,
      ca: credentials.caPem,
      cert: credentials.certificatePem,
      key: credentials.privateKeyPem,
      minVersion: 'TLSv1.3',
      // The chain is checked against our CA by `ca`; the identity is the container's name, not an address.
      checkServerIdentity: (_host, certificate) =>
        certificate.subject?.CN === endpoint.containerName ? undefined : new Error(`the supervisor at ${endpoint.ip} presented CN ${JSON.stringify(certificate.subject?.CN)}, not ${endpoint.containerName}`),
    });
    const timer = setTimeout(() => finish(new AgentSessionError(`no answer from ${endpoint.containerName}'s supervisor in ${timeoutMs} ms`, !handshaken)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      handshaken = true;
      socket.write(`${JSON.stringify({ id: 1, ...request })}\n`);
    });
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (buffer.length > SESSION_MAX_LINE) return finish(new AgentSessionError(`${endpoint.containerName}'s supervisor sent an over-long line`, false));
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      let parsed: unknown;
      try {
        parsed = JSON.parse(buffer.slice(0, end));
      } catch {
        return finish(new AgentSessionError(`${endpoint.containerName}'s supervisor sent something that is not JSON`, false));
      }
      const response = sessionResponseSchema.safeParse(parsed);
      if (!response.success) return finish(new AgentSessionError(`${endpoint.containerName}'s supervisor sent an unexpected answer`, false));
      finish(undefined, response.data);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const unreachable = !handshaken && ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT'].includes(e.code ?? '');
      finish(new AgentSessionError(`session with ${endpoint.containerName}'s supervisor: ${e.message}`, unreachable));
    });
    socket.on('end', () => finish(new AgentSessionError(`${endpoint.containerName}'s supervisor closed the session`, !handshaken)));
  });
}

/**
 * Asks the supervisor to start the agent's command, retrying while it is still booting (connection
 * refused) until `deadlineMs`. Any other failure (a wrong certificate, a refusal) is not retried.
 */
export async function startAgentCommand(
  credentials: SessionCredentials,
  endpoint: AgentEndpoint,
  options: { deadlineMs?: number; retryMs?: number; isCancelled?: () => boolean } = {},
): Promise<SessionResponse> {
  const deadline = Date.now() + (options.deadlineMs ?? 30_000);
  for (;;) {
    try {
      const response = await sessionRequest(credentials, endpoint, { op: 'start' });
      if (!response.ok) throw new AgentSessionError(`${endpoint.containerName}'s supervisor refused to start the command: ${response.error ?? 'no reason given'}`, false);
      return response;
    } catch (e) {
      const retry = e instanceof AgentSessionError && e.unreachable && Date.now() < deadline && !options.isCancelled?.();
      if (!retry) throw e;
      await sleep(options.retryMs ?? 100);
    }
  }
}
