import type { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadProject, loadSettings } from '../../core/config/load';
import { DEFAULT_UPSTREAM_DNS, type DnsGuardSettings } from '../../core/config/settingsSchema';
import { Policy } from '../../core/policy/policy';
import { formatProblem } from '../../core/problems';
import { renderAll } from '../../core/render/renderAll';
import { loadOrCreateCa, rotateCa } from '../../platform/caStore';
import { writeFileAtomic } from '../../platform/files';
import { ControlPlaneNotRunning } from '../../platform/controlPlaneClient';
import { cliControlPlane } from '../controlPlaneAccess';
import { defaultDataDir } from '../../platform/ruleStore';
import { reloadFromHost } from '../../platform/stackInputs';
import { findProjectFile, readForCommand } from '../projectFile';

const LISTENERS_FILE = 'envoy/listeners.json';

/** Prints a file's errors as FILE:LINE:COL and says that nothing was rendered. */
function refuse(file: string, loaded: ReturnType<typeof loadProject> | ReturnType<typeof loadSettings>): void {
  for (const p of loaded.problems.filter((p) => p.severity === 'error')) process.stderr.write(`${formatProblem(file, loaded.lines, p)}\n`);
  process.stderr.write(`clawker: ${file} has errors; nothing was rendered (clawker validate ${file}).\n`);
  process.exitCode = 2;
}

/** The listener ports handed out by the last render into `out`, so they stay the same. */
function previousAllocation(out: string): Record<string, number> | undefined {
  const file = join(out, LISTENERS_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
  } catch {
    process.stderr.write(`clawker: ${file} is unreadable; listener ports are numbered afresh.\n`);
    return undefined;
  }
}

const defaultCaDir = (): string => join(defaultDataDir(), 'firewall', 'ca');

export function registerFirewallRenderCommand(firewall: Command): void {
  firewall
    .command('rotate-ca')
    .description('Replace the firewall CA and the key of every domain certificate.')
    .option('--ca-dir <dir>', 'where the firewall CA is kept (default: <data dir>/firewall/ca)')
    .action(async (options: { caDir?: string }) => {
      const rotated = await rotateCa(options.caDir ?? defaultCaDir());
      process.stdout.write(
        `New firewall CA ${rotated.ca.certificate.fingerprint256} in ${rotated.files.directory}` +
          `${rotated.previousFingerprint ? ` (replaces ${rotated.previousFingerprint})` : ''}.\n`,
      );
      // The running stack re-issues every domain certificate from the new CA; Envoy picks the files up.
      let applied = false;
      if (!options.caDir) {
        try {
          const r = await reloadFromHost(cliControlPlane(), defaultDataDir());
          applied = true;
          process.stdout.write(`Re-issued the domain certificates of the running firewall (${r.rules} rules) in ${r.millis} ms.\n`);
        } catch (e) {
          if (!(e instanceof ControlPlaneNotRunning)) process.stderr.write(`clawker: re-issuing the certificates failed: ${e instanceof Error ? e.message : String(e)}; retry with: clawker firewall reload\n`);
        }
      }
      process.stdout.write(
        `${applied ? '' : 'The firewall is not running: its certificates are issued from the new CA when it starts (or run clawker firewall render). '}` +
          'Rebuild agent images and restart running agents: they trust the CA baked into their image.\n',
      );
    });

  firewall
    .command('render')
    .description('Write the Envoy configuration, Corefile, BPF map entries and certificates for a project, without Docker.')
    .requiredOption('-o, --out <dir>', 'directory to write into (envoy/, coredns/, bpf/)')
    .option('-c, --config <file>', 'project file (default: .clawker.yaml, then .clawker/clawker.yaml)')
    .option('-s, --settings <file>', 'settings.yaml with firewall.upstream_dns (default: the built-in resolvers)')
    .option('--ca-dir <dir>', 'where the firewall CA is kept (default: <data dir>/firewall/ca)')
    .action(async (options: { out: string; config?: string; settings?: string; caDir?: string }) => {
      let rules: Policy['rules'] = [];
      const file = options.config ?? findProjectFile();
      if (file) {
        const text = readForCommand(file);
        if (text === undefined) return;
        const loaded = loadProject(text);
        if (loaded.failed) return refuse(file, loaded);
        rules = loaded.rules;
      } else process.stderr.write('clawker: no .clawker.yaml here: rendering the built-in rules only.\n');
      let upstreams: readonly string[] = DEFAULT_UPSTREAM_DNS;
      let dns: DnsGuardSettings | undefined;
      if (options.settings) {
        const text = readForCommand(options.settings);
        if (text === undefined) return;
        const settings = loadSettings(text);
        if (settings.failed || !settings.config) return refuse(options.settings, settings);
        upstreams = settings.config.firewall.upstream_dns;
        dns = settings.config.firewall.dns;
      }
      const policy = new Policy({ project: rules });
      const pki = await loadOrCreateCa(options.caDir ?? defaultCaDir());
      const previous = previousAllocation(options.out);
      const rendered = renderAll(policy, { upstreams, ...(dns ? { dns } : {}), pki, ...(previous ? { previousAllocation: previous } : {}) });
      for (const [relative, content] of rendered.files) {
        const target = join(options.out, relative);
        mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
        writeFileAtomic(target, content, { mode: relative.endsWith('key.pem') ? 0o600 : 0o644 });
      }
      process.stdout.write(
        `rendered ${policy.rules.length} rules: ${Object.keys(rendered.allocation).length + 1} listeners, ${rendered.bpf.routes.length} routes, ` +
          `${[...rendered.files.keys()].filter((f) => f.startsWith('envoy/certs/') && !f.endsWith('key.pem')).length} certificates into ${options.out}\n`,
      );
    });
}
