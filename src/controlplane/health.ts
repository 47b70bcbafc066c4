/**
 * Health probes of the stack, as the spec defines them: Envoy `GET /` on its health listener 9902,
 * CoreDNS `GET /health` on 18902, both over the firewall network; the datapath is healthy when its
 * programs and maps are pinned.
 */
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';

export interface ProbeResult {
  readonly healthy: boolean;
  readonly detail: string;
}

export function probeHttp(host: string, port: number, path: string, timeoutMs = 1000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      const ok = res.statusCode === 200;
      resolve({ healthy: ok, detail: `HTTP ${res.statusCode} from ${host}:${port}${path}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ healthy: false, detail: `${host}:${port}${path}: ${e.message}` }));
    req.end();
  });
}

export const DATAPATH_PROGRAMS = ['connect4', 'connect6', 'sendmsg4', 'sendmsg6', 'recvmsg4', 'recvmsg6', 'sock_create'] as const;
export const DATAPATH_MAPS = ['container_map', 'route_map', 'dns_cache', 'bypass_map', 'metrics_map', 'events_ringbuf'] as const;

export function probeDatapath(pinDir: string): ProbeResult {
  const progs = existsSync(join(pinDir, 'progs')) ? readdirSync(join(pinDir, 'progs')) : [];
  const missing = [...DATAPATH_PROGRAMS.filter((p) => !progs.includes(p)), ...DATAPATH_MAPS.filter((m) => !existsSync(join(pinDir, m)))];
  return missing.length === 0
    ? { healthy: true, detail: `${DATAPATH_PROGRAMS.length} programs and ${DATAPATH_MAPS.length} maps pinned in ${pinDir}` }
    : { healthy: false, detail: `not pinned in ${pinDir}: ${missing.join(', ')}` };
}
