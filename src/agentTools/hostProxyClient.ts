/**
 * The agent side of the host proxy: one JSON POST to `$CLAWKER_HOST_PROXY<path>` carrying the
 * container's token (HOST_PROXY_TOKEN_FILE) in HOST_PROXY_TOKEN_HEADER. Used by the tools in this
 * folder, which run inside agent containers on the image's Node (18 or later): node:http, not
 * fetch (an experimental warning on Node 18 would land in git's terminal).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ENV_HOST_PROXY, HOST_PROXY_TOKEN_FILE, HOST_PROXY_TOKEN_HEADER } from '../core/agents/agentContract';

export const HOST_PROXY_TIMEOUT_MS = 10_000;
/** An answer longer than this is not one of the host proxy's. */
const MAX_ANSWER_BYTES = 64 * 1024;

export interface HostProxyAnswer {
  readonly status: number;
  /** The parsed JSON body, or undefined when it was not JSON. */
  readonly body: unknown;
}

export class HostProxyUnavailable extends Error {}

/**
 * The host proxy's base URL from the environment: undefined when the variable is unset or empty
 * (the host proxy is off); an error for anything that is not a plain http(s) origin.
 */
export function hostProxyBase(env: NodeJS.ProcessEnv): URL | undefined {
  const value = env[ENV_HOST_PROXY];
  if (value === undefined || value.trim() === '') return undefined;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new HostProxyUnavailable(`${ENV_HOST_PROXY} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HostProxyUnavailable(`${ENV_HOST_PROXY} is not an http URL`);
  if (url.username || url.password) throw new HostProxyUnavailable(`${ENV_HOST_PROXY} must not carry credentials`);
  return url;
}

/** The container's token, or an error naming the file (never its contents). */
export function readHostProxyToken(file: string = HOST_PROXY_TOKEN_FILE): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HostProxyUnavailable(`cannot read the host proxy token ${file} (${code ?? 'error'})`);
  }
  if (!/^[\x21-\x7e]{1,512}$/.test(token)) throw new HostProxyUnavailable(`the host proxy token ${file} is malformed`);
  return token;
}

/** POSTs `body` as JSON; resolves with the status and parsed answer, rejects (HostProxyUnavailable) when there is none. */
export function postToHostProxy(
  base: URL,
  path: string,
  body: unknown,
  token: string,
  timeoutMs: number = HOST_PROXY_TIMEOUT_MS,
): Promise<HostProxyAnswer> {
  const url = new URL(path, base);
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, answer?: HostProxyAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer!);
    };
    const req = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          [HOST_PROXY_TOKEN_HEADER]: token,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy();
            finish(new HostProxyUnavailable('the host proxy answered with too much data'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('error', () => finish(new HostProxyUnavailable('the host proxy connection broke')));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          finish(undefined, { status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish(new HostProxyUnavailable(`no answer from the host proxy within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => finish(new HostProxyUnavailable(`cannot reach the host proxy at ${url.host} (${e.code ?? 'error'})`)));
    req.end(payload);
  });
}
