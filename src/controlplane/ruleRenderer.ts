/**
 * The rule state on disk → the stack's configuration files. Reads the rule store (what `firewall
 * add/remove/refresh` wrote; `reload` never re-reads a project file), builds the one policy, renders
 * Envoy, the Corefile, the route entries and the certificates, and writes only the files whose
 * content changed (each atomically: Envoy and CoreDNS never read half a file).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { DnsGuardSettings } from '../core/config/settingsSchema';
import { dirname, join } from 'node:path';
import { effectivePolicy } from '../core/firewall/runtimeRules';
import type { Policy } from '../core/policy/policy';
import { renderAll } from '../core/render/renderAll';
import { loadCa } from '../platform/caStore';
import { writeFileAtomic } from '../platform/files';
import { RuleStore } from '../platform/ruleStore';

export const ENTRIES_FILE = 'bpf/entries.json';
export const COREFILE = 'coredns/Corefile';
const LISTENERS_FILE = 'envoy/listeners.json';

export interface RenderOutcome {
  readonly policy: Policy;
  readonly routes: number;
  /** Relative paths written because their content changed. */
  readonly changed: readonly string[];
  readonly entriesFile: string;
}

function previousAllocation(stackDir: string): Record<string, number> | undefined {
  try {
    return JSON.parse(readFileSync(join(stackDir, LISTENERS_FILE), 'utf8')) as Record<string, number>;
  } catch {
    return undefined; // first render, or unreadable: ports are numbered afresh
  }
}

export async function renderStack(dataDir: string, stackDir: string, caDir: string, upstreams: readonly string[], dns?: DnsGuardSettings): Promise<RenderOutcome> {
  const store = new RuleStore(dataDir).load();
  const policy = effectivePolicy([], store.rules);
  const pki = await loadCa(caDir); // the host's, copied in: never one made here
  const previous = previousAllocation(stackDir);
  const rendered = renderAll(policy, { upstreams, ...(dns ? { dns } : {}), pki, ...(previous ? { previousAllocation: previous } : {}) });
  const changed: string[] = [];
  for (const [relative, content] of rendered.files) {
    const target = join(stackDir, relative);
    if (existsSync(target) && readFileSync(target, 'utf8') === content) continue;
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    // The leaf key is read by Envoy running as root without capabilities in its container: 0600 root suffices.
    writeFileAtomic(target, content, { mode: relative.endsWith('key.pem') ? 0o600 : 0o644 });
    changed.push(relative);
  }
  // Certificates of destinations no longer allowed are removed, so Envoy cannot serve them.
  const certDir = join(stackDir, 'envoy', 'certs');
  if (existsSync(certDir)) {
    for (const name of readdirSync(certDir)) {
      if (!rendered.files.has(`envoy/certs/${name}`)) rmSync(join(certDir, name), { force: true });
    }
  }
  return { policy, routes: rendered.bpf.routes.length, changed, entriesFile: join(stackDir, ENTRIES_FILE) };
}
