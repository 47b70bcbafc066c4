/**
 * The firewall verbs of the CLI as palette commands: status, up, down, add, remove, list, refresh,
 * reload, enable, disable, bypass (and stop it), rotate-ca, check, events. Rule verbs run in the
 * project folder so the CLI sees its `.clawker.yaml`.
 */
import * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { Status } from '../../core/stack/controlPlaneApi';
import type { AgentDirectory, ClawkerCli, StackStatus } from '../stack/contracts';
import type { ListedRule } from '../views/ruleGroups';
import { pickAgent, pickProjectFolder, validateDuration } from './pickers';
import { runVerb } from './runVerb';

export interface FirewallCommandDeps {
  readonly cli: ClawkerCli;
  readonly agents: AgentDirectory;
  readonly status: StackStatus;
  readonly log: vscode.LogOutputChannel;
  readonly trusted: () => boolean;
  /** The default bypass duration (setting clawker.bypass.defaultDuration). */
  readonly defaultBypass: () => string;
  /** The stack was started or stopped: reconnect the event stream now. */
  readonly stackChanged: () => void;
}

/** Protocols `firewall add --proto` takes, with what they mean, for the picker. */
const PROTOCOLS: readonly { label: string; detail: string; needsPort: boolean }[] = [
  { label: 'https', detail: 'TLS inspected by the proxy; port 443 unless you say otherwise', needsPort: false },
  { label: 'http', detail: 'plain HTTP through the proxy; port 80 unless you say otherwise', needsPort: false },
  { label: 'wss', detail: 'WebSocket over TLS', needsPort: false },
  { label: 'ws', detail: 'plain WebSocket', needsPort: false },
  { label: 'ssh', detail: 'SSH (git over ssh): port 22 unless you say otherwise', needsPort: false },
  { label: 'tcp', detail: 'TCP pass-through on a port you give', needsPort: true },
  { label: 'udp', detail: 'UDP on a port you give', needsPort: true },
];


export function registerFirewallCommands(context: vscode.ExtensionContext, d: FirewallCommandDeps): void {
  const cwd = async (): Promise<string | undefined> => (await pickProjectFolder())?.uri.fsPath;
  const after = async (): Promise<void> => {
    await Promise.all([d.status.refresh(), d.agents.refresh()]);
    void vscode.commands.executeCommand('clawker.rules.refresh');
  };

  /** enable/disable/bypass act on the control plane's agents: running ones. */
  const runningAgent = (given: unknown, placeHolder: string): Promise<AgentSummary | undefined> =>
    pickAgent(d.agents, given, { placeHolder, filter: (a) => a.state === 'running' });

  const register = (id: string, fn: (...args: unknown[]) => unknown): void => {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  };

  register('clawker.firewall.status', async () => {
    const result = await d.cli.run(['firewall', 'status', '--json']);
    let status: Status | undefined;
    try {
      status = JSON.parse(result.stdout) as Status;
    } catch {
      status = undefined;
    }
    if (!status) {
      const up = 'Start Firewall';
      const choice = await vscode.window.showWarningMessage(`The firewall stack is not running. ${result.stderr.trim().split('\n').pop() ?? ''}`, up);
      if (choice === up) await vscode.commands.executeCommand('clawker.firewall.up');
      return;
    }
    const items: vscode.QuickPickItem[] = [
      { label: `Phase: ${status.phase}`, description: `${status.rules} rules · ${status.routes} routes · ${status.network.name} ${status.network.subnet}` },
      { label: 'Components', kind: vscode.QuickPickItemKind.Separator },
      ...status.components.map((c) => ({ label: `${c.healthy ? '$(pass)' : '$(error)'} ${c.name}`, description: c.detail, ...(c.next ? { detail: `next: ${c.next}` } : {}) })),
      { label: 'Agents', kind: vscode.QuickPickItemKind.Separator },
      ...status.agents.map((a) => ({ label: `$(vm) ${a.agent}`, description: `${a.state}${a.bypassUntil ? ` until ${new Date(a.bypassUntil).toLocaleTimeString()}` : ''}`, detail: a.container })),
    ];
    await vscode.window.showQuickPick(items, { title: 'Clawker firewall status', placeHolder: 'Health of the eBPF datapath, CoreDNS, Envoy and the control plane' });
  });

  register('clawker.firewall.up', async () => {
    if (!d.trusted()) return;
    await runVerb(d.cli, d.log, ['firewall', 'up'], { title: 'Starting the firewall stack', long: true, done: () => 'The firewall stack is up.' });
    d.stackChanged();
    await after();
  });

  register('clawker.firewall.down', async () => {
    if (!d.trusted()) return;
    const stop = 'Stop the Firewall';
    const ok = await vscode.window.showWarningMessage(
      'Stop the firewall stack?',
      { modal: true, detail: 'Running agents are locked down: they keep running with no egress at all until the stack is up again.' },
      stop,
    );
    if (ok !== stop) return;
    await runVerb(d.cli, d.log, ['firewall', 'down'], { title: 'Stopping the firewall stack', long: true });
    await after();
  });

  register('clawker.firewall.add', async () => {
    if (!d.trusted()) return;
    const domain = await vscode.window.showInputBox({
      title: 'Allow a destination (runtime rule)',
      prompt: 'A domain (example.com), a wildcard (.example.com: it and every name below it) or an IPv4 address',
      placeHolder: 'example.com',
      validateInput: (v) => (/^\.?[A-Za-z0-9.-]+$/.test(v.trim()) ? undefined : 'A domain, .domain or IPv4 address (no scheme, no path).'),
    });
    if (!domain) return;
    const proto = await vscode.window.showQuickPick(PROTOCOLS, { title: `Allow ${domain.trim()} over…`, placeHolder: 'https' });
    if (!proto) return;
    const args = ['firewall', 'add', domain.trim(), '--proto', proto.label];
    if (proto.needsPort || proto.label !== 'https') {
      const port = await vscode.window.showInputBox({
        title: `Port for ${proto.label}`,
        prompt: proto.needsPort ? 'A port (5432) or a range (9000-9100)' : 'Leave empty for the protocol\'s port',
        validateInput: (v) => (v === '' && !proto.needsPort) || /^\d{1,5}(-\d{1,5})?$/.test(v) ? undefined : 'A port or a range of ports.',
      });
      if (port === undefined) return;
      if (port) args.push('--port', port);
    }
    await runVerb(d.cli, d.log, args, { title: `Allowing ${domain.trim()}`, ...(await cwdOption(cwd)) });
    await after();
  });

  register('clawker.firewall.remove', async (given?: unknown) => {
    if (!d.trusted()) return;
    const dir = await cwd();
    let rule = isListedRule(given) ? given : undefined;
    if (!rule) {
      const listed = await d.cli.json<{ rules: ListedRule[] }>(['firewall', 'list', '--json'], dir ? { cwd: dir } : {}).catch(() => ({ rules: [] as ListedRule[] }));
      const runtime = listed.rules.filter((r) => r.origin === 'runtime');
      if (runtime.length === 0) {
        void vscode.window.showInformationMessage('No runtime rules to remove. Project rules live in .clawker.yaml: edit the file to remove them.');
        return;
      }
      const picked = await vscode.window.showQuickPick(
        runtime.map((r) => ({ label: r.dst, description: `${r.proto}:${r.port} · ${r.action}`, rule: r })),
        { title: 'Remove a runtime rule' },
      );
      rule = picked?.rule;
    }
    if (!rule) return;
    if (rule.origin !== 'runtime') {
      void vscode.window.showInformationMessage(`${rule.dst} is a ${rule.origin} rule: ${rule.origin === 'project' ? 'remove it from .clawker.yaml' : 'built-in rules cannot be removed'}.`);
      return;
    }
    await runVerb(d.cli, d.log, ['firewall', 'remove', rule.dst, '--proto', rule.proto, '--port', String(rule.port)], { title: `Removing ${rule.dst}`, ...(dir ? { cwd: dir } : {}) });
    await after();
  });

  register('clawker.firewall.list', () => vscode.commands.executeCommand('clawker.rules.focus'));

  register('clawker.firewall.refresh', async () => {
    if (!d.trusted()) return;
    await runVerb(d.cli, d.log, ['firewall', 'refresh'], { title: 'Syncing .clawker.yaml into the firewall', ...(await cwdOption(cwd)) });
    await after();
  });

  register('clawker.firewall.reload', async () => {
    if (!d.trusted()) return;
    await runVerb(d.cli, d.log, ['firewall', 'reload'], { title: 'Reloading the firewall configuration' });
    await after();
  });

  for (const enabled of [true, false]) {
    register(enabled ? 'clawker.firewall.enable' : 'clawker.firewall.disable', async (given?: unknown) => {
      if (!d.trusted()) return;
      const a = await runningAgent(given, enabled ? 'Enforce the firewall for which agent?' : 'Take which agent out of the firewall?');
      if (!a) return;
      if (!enabled) {
        const disable = 'Disable';
        const ok = await vscode.window.showWarningMessage(
          `Disable the firewall for ${a.agent}?`,
          { modal: true, detail: 'Its egress becomes unrestricted until you enable it again (each connection is still recorded).' },
          disable,
        );
        if (ok !== disable) return;
      }
      await runVerb(d.cli, d.log, ['firewall', enabled ? 'enable' : 'disable', '--agent', a.name], { title: `${enabled ? 'Enabling' : 'Disabling'} the firewall for ${a.agent}` });
      await after();
    });
  }

  register('clawker.firewall.bypass', async (given?: unknown) => {
    if (!d.trusted()) return;
    const a = await runningAgent(given, 'Bypass the firewall for which agent?');
    if (!a) return;
    const duration = await vscode.window.showInputBox({
      title: `Bypass the firewall for ${a.agent}`,
      prompt: 'For how long? Egress is unrestricted until then; the firewall closes by itself.',
      value: d.defaultBypass(),
      validateInput: validateDuration,
    });
    if (!duration) return;
    await runVerb(d.cli, d.log, ['firewall', 'bypass', duration, '--agent', a.name], {
      title: `Opening a ${duration} bypass for ${a.agent}`,
      // The status bar item counts down; the message says where to look and how to end it early.
      done: () => `The firewall is bypassed for ${a.agent} for ${duration}: the status bar counts down, click it to close the bypass early.`,
    });
    await after();
  });

  register('clawker.firewall.bypassStop', async (given?: unknown) => {
    const bypassed = new Set((d.status.current?.agents ?? []).filter((s) => s.state === 'bypassed').map((s) => s.container));
    const a = await pickAgent(d.agents, given, { placeHolder: 'Close the bypass of which agent?', filter: (x) => bypassed.has(x.id) });
    if (!a) return;
    await runVerb(d.cli, d.log, ['firewall', 'bypass', '--stop', '--agent', a.name], { title: `Closing the bypass of ${a.agent}` });
    await after();
  });

  register('clawker.firewall.rotateCa', async () => {
    if (!d.trusted()) return;
    const rotate = 'Rotate';
    const ok = await vscode.window.showWarningMessage(
      'Replace the firewall CA?',
      { modal: true, detail: 'Every domain certificate is re-issued. Agents trust the CA baked into their image: recreate them with clawker run --rebuild afterwards.' },
      rotate,
    );
    if (ok !== rotate) return;
    await runVerb(d.cli, d.log, ['firewall', 'rotate-ca'], { title: 'Rotating the firewall CA', long: true });
  });

  register('clawker.firewall.check', async () => {
    const url = await vscode.window.showInputBox({ title: 'Would the firewall allow…', prompt: 'A URL: https://host/path, ssh://host, tcp://host:port', placeHolder: 'https://api.github.com/repos' });
    if (!url) return;
    const dir = await cwd();
    const result = await d.cli.run(['firewall', 'check', url.trim()], dir ? { cwd: dir } : {});
    const text = (result.stdout.trim() || result.stderr.trim()).split('\n').join(' ');
    if (result.code === 0) void vscode.window.showInformationMessage(`Allowed: ${text}`);
    else if (result.code === 1) void vscode.window.showWarningMessage(`Denied: ${text}`);
    else void vscode.window.showErrorMessage(text || `clawker firewall check exited ${result.code}`);
  });

  register('clawker.firewall.render', async () => {
    const dir = await cwd();
    const [out] = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Render Here', title: 'Where to write the Envoy config, Corefile, BPF entries and certificates' })) ?? [];
    if (!out) return;
    const result = await runVerb(d.cli, d.log, ['firewall', 'render', '--out', out.fsPath], { title: 'Rendering the firewall configuration', ...(dir ? { cwd: dir } : {}), done: () => `Rendered into ${out.fsPath}.` });
    if (result) void vscode.commands.executeCommand('revealFileInOS', out);
  });

  register('clawker.firewall.events', () => {
    const { shellPath, shellArgs, env } = d.cli.terminalCommand(['firewall', 'events', '--follow']);
    vscode.window.createTerminal({ name: 'clawker: egress events', shellPath, shellArgs, env, iconPath: new vscode.ThemeIcon('pulse') }).show();
  });
}

async function cwdOption(cwd: () => Promise<string | undefined>): Promise<{ cwd?: string }> {
  const dir = await cwd();
  return dir ? { cwd: dir } : {};
}

function isListedRule(x: unknown): x is ListedRule {
  return !!x && typeof x === 'object' && typeof (x as ListedRule).dst === 'string' && typeof (x as ListedRule).origin === 'string';
}
