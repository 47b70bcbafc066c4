/**
 * agentd's session server: mutual TLS 1.3 on AGENTD_SESSION_PORT, where the only accepted peer is a
 * client certificate chained to the clawker CA with CN `clawker-controlplane` and the clientAuth
 * purpose. Each connection speaks the line protocol of sessionProtocol.ts.
 */
import { readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import { CONTROLPLANE_SESSION_CN } from '../core/agents/agentContract';
import type { SessionFiles } from './config';
import { answer, encodeResponse, LineReader, parseRequestLine, type SessionHandlers } from './sessionProtocol';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
/** On shutdown, how long connections get to flush what was written to them. */
const CLOSE_GRACE_MS = 500;

export const SESSION_LIMITS = {
  /** The control plane needs one or two; more is someone else. */
  maxConnections: 4,
  handshakeTimeoutMs: 10_000,
  /** A connection with nothing in flight and nothing said for this long is closed. */
  idleTimeoutMs: 5 * 60_000,
  /** Requests one connection may have unanswered at once. */
  maxInFlight: 8,
} as const;

export interface SessionMaterial {
  readonly ca: string;
  readonly certificate: string;
  readonly key: string;
}

/**
 * Reads the session's CA, certificate and key. The key must be agentd's alone (owner-only mode,
 * owned by agentd's user): a key the agent user could read would let it impersonate agentd.
 */
export function readSessionMaterial(files: SessionFiles): { readonly material: SessionMaterial } | { readonly problem: string } {
  try {
    const keyStat = statSync(files.key);
    if ((keyStat.mode & 0o077) !== 0) return { problem: `${files.key} is readable by others (mode ${(keyStat.mode & 0o777).toString(8)}); it must be 0600` };
    const uid = process.getuid?.();
    if (uid !== undefined && keyStat.uid !== uid) return { problem: `${files.key} belongs to uid ${keyStat.uid}, not to agentd (uid ${uid})` };
    return {
      material: {
        ca: readFileSync(files.ca, 'utf8'),
        certificate: readFileSync(files.certificate, 'utf8'),
        key: readFileSync(files.key, 'utf8'),
      },
    };
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    // The path and the errno only: never the contents.
    if (e.code === 'ENOENT') {
      // Stryker disable next-line LogicalOperator,StringLiteral: fs errors with code ENOENT (statSync, readFileSync of a path) always carry the path, so the fallback name is never used
      const missing = e.path ?? 'a session file';
      return { problem: `${missing} does not exist` };
    }
    return { problem: `cannot read ${e.path ?? 'the session files'}: ${e.code ?? e.message}` };
  }
}

/** The pinned peer: CN exactly clawker-controlplane (one CN, not a list) and a clientAuth certificate. */
export function isControlPlanePeer(certificate: Pick<PeerCertificate, 'subject' | 'ext_key_usage'> | undefined): boolean {
  if (!certificate?.subject) return false;
  const cn: unknown = certificate.subject.CN;
  return cn === CONTROLPLANE_SESSION_CN && certificate.ext_key_usage?.includes(CLIENT_AUTH_OID) === true;
}

export interface SessionServer {
  readonly address: AddressInfo;
  /** Stops listening and ends every connection. */
  close(): Promise<void>;
}

export interface SessionServerOptions {
  readonly host: string;
  readonly port: number;
  readonly handlers: SessionHandlers;
  readonly log: (message: string) => void;
  readonly limits?: Partial<typeof SESSION_LIMITS>;
}

/**
 * Anyone on clawker-net can knock: one line per refusal would let them flood the container's log.
 * At most one line per interval, then how many were left out. Pure apart from the clock.
 */
export function rateLimitedLog(log: (message: string) => void, intervalMs = 5_000, now: () => number = Date.now): (message: string) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (message) => {
    if (now() - last < intervalMs) {
      suppressed += 1;
      return;
    }
    last = now();
    log(suppressed > 0 ? `${message} (and ${suppressed} more refusals not shown)` : message);
    suppressed = 0;
  };
}

export async function startSessionServer(material: SessionMaterial, options: SessionServerOptions): Promise<SessionServer> {
  const limits = { ...SESSION_LIMITS, ...options.limits };
  const logRefusal = rateLimitedLog(options.log);
  const sockets = new Set<TLSSocket>();
  const server = createServer({
    key: material.key,
    cert: material.certificate,
    ca: material.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    handshakeTimeout: limits.handshakeTimeoutMs,
  });
  server.maxConnections = limits.maxConnections;
  server.on('tlsClientError', (error, socket) => {
    logRefusal(`session: refused a connection from ${socket.remoteAddress ?? 'an unknown address'}: ${error.message}`);
    // A handshake timeout does not end the socket by itself once this event has a listener: a peer
    // that never speaks would keep its connection slot forever.
    socket.destroy();
  });
  server.on('secureConnection', (socket) => {
    if (!socket.authorized || !isControlPlanePeer(socket.getPeerCertificate())) {
      logRefusal(`session: refused ${socket.remoteAddress ?? 'a peer'}: its certificate is not the control plane's (CN ${CONTROLPLANE_SESSION_CN}, clientAuth)`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, options.handlers, limits, options.log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => options.log(`session: server error: ${error.message}`));
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close();
        // end() first, so a reply already written (a failed start) still reaches the control plane;
        // then destroy rather than wait for the peer to hang up.
        for (const socket of sockets) socket.end(() => socket.destroy());
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
          resolve();
        }, CLOSE_GRACE_MS);
        if (sockets.size === 0) {
          clearTimeout(timer);
          resolve();
        }
        for (const socket of sockets) {
          socket.on('close', () => {
            if (sockets.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          });
        }
      }),
  };
}

function serveConnection(socket: TLSSocket, handlers: SessionHandlers, limits: typeof SESSION_LIMITS, log: (message: string) => void): void {
  const lines = new LineReader();
  let inFlight = 0;
  const send = (text: string): void => {
    if (!socket.destroyed && socket.writable) socket.write(text);
  };
  // Not setTimeout's callback: that one is called once only, so a timeout during a long exec step
  // would leave the connection open for good.
  socket.setTimeout(limits.idleTimeoutMs);
  socket.on('timeout', () => {
    // A long exec step is not idleness.
    if (inFlight === 0) socket.destroy();
  });
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    const received = lines.push(chunk);
    if (received === 'too-long') {
      log('session: a request line exceeded the limit; closing the connection');
      socket.destroy();
      return;
    }
    for (const line of received) {
      if (line.trim() === '') continue;
      const parsed = parseRequestLine(line);
      if ('fatal' in parsed) {
        // No id to answer to: say why with id 0, then close, so nothing is mistaken for a reply.
        socket.end(encodeResponse({ id: 0, ok: false, error: parsed.fatal }));
        return;
      }
      if ('error' in parsed) {
        send(encodeResponse({ id: parsed.id, ok: false, error: parsed.error }));
        continue;
      }
      if (inFlight >= limits.maxInFlight) {
        send(encodeResponse({ id: parsed.request.id, ok: false, error: `too many requests in flight (at most ${limits.maxInFlight})` }));
        continue;
      }
      inFlight += 1;
      void answer(parsed.request, handlers).then((response) => {
        inFlight -= 1;
        send(encodeResponse(response));
      });
    }
  });
}
