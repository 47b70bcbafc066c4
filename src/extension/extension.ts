/**
 * Extension entry point: thin on purpose. It builds the few shared services (the CLI runner, the
 * control plane's status and event stream, the agent list) and lets each feature register itself.
 * Nothing heavy is loaded here: the language client starts with the first Clawker file, and the
 * pure core (zod, yaml, the policy) loads on first use (lazy.ts).
 */
import * as vscode from 'vscode';
import { defaultDataDir } from '../platform/dataDir';
import { registerBlocked } from './blocked/registerBlocked';
import { registerBypassStatusBar } from './bypassStatusBar';
import { registerAgentCommands } from './commands/agentCommands';
import { registerCommands } from './commands';
import { registerFirewallCommands } from './commands/firewallCommands';
import { registerLanguageClient } from './languageClient';
import { registerLearnMode } from './learn/learnMode';
import { registerPlatformCheck } from './platformCheck';
import { registerTerminalLauncher } from './terminalLauncher';
import { findProjectFiles, PROJECT_FILE_GLOB } from './projectFiles';
import { registerRefreshOnSave } from './refreshOnSave';
import { ListedAgents } from './stack/agentDirectory';
import { BundledCli } from './stack/cliRunner';
import { ControlPlaneEgressFeed } from './stack/egressFeed';
import { RuntimeRules } from './stack/runtimeRules';
import { PolledStackStatus } from './stack/stackStatus';
import { requireTrust } from './trust';
import { registerAgentsView } from './views/agentsView';
import { registerRulesView } from './views/rulesView';

const setting = <T>(key: string, fallback: T): T => vscode.workspace.getConfiguration('clawker').get<T>(key, fallback);

/** The data directory: the setting (machine-scoped), else what the CLI uses ($CLAWKER_DATA_DIR, XDG). */
const dataDir = (): string => setting<string>('dataDir', '') || defaultDataDir();

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('Clawker', { log: true });
  const cliEnv = (): Record<string, string> => (setting<string>('dataDir', '') ? { CLAWKER_DATA_DIR: dataDir() } : {});
  const cli = new BundledCli(context.extensionPath, cliEnv, log);
  const status = new PolledStackStatus(cli, log);
  const feed = new ControlPlaneEgressFeed(cli, log);
  const agents = new ListedAgents(cli);
  context.subscriptions.push(log, status, feed, agents);

  registerPlatformCheck(log);
  registerTerminalLauncher(context, log);
  registerLanguageClient(context, log);
  registerCommands(context, log);
  registerAgentsView(context, agents, status);
  registerRulesView(context, cli, log);
  registerBypassStatusBar(context, status);
  registerAgentCommands(context, { cli, agents, status, log, trusted: requireTrust });
  registerFirewallCommands(context, {
    cli,
    agents,
    status,
    log,
    trusted: requireTrust,
    defaultBypass: () => setting<string>('bypass.defaultDuration', '5m'),
    stackChanged: () => feed.restart(),
  });
  registerBlocked(context, { feed, agents, cli, log, runtimeRules: new RuntimeRules(dataDir) });
  registerLearnMode(context, { feed, agents, log });
  registerRefreshOnSave(context, { cli, status, log });

  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('clawker.dataDir')) {
        feed.restart();
        status.restart();
        void agents.refresh();
      }
    }),
  );
  const projectFiles = vscode.workspace.createFileSystemWatcher(PROJECT_FILE_GLOB);
  const updateHasProjectFile = (): void => void findProjectFiles().then((f) => vscode.commands.executeCommand('setContext', 'clawker.hasProjectFile', f.length > 0));
  context.subscriptions.push(projectFiles, projectFiles.onDidCreate(updateHasProjectFile), projectFiles.onDidDelete(updateHasProjectFile));
  updateHasProjectFile();
  // Reads only (status, events, the agent list): nothing is started, even in an untrusted workspace.
  // Spawning their CLI processes costs milliseconds each: after activation returns, not inside it.
  setImmediate(() => {
    status.start();
    feed.start();
  });
  void agents.refresh();
}

export function deactivate(): void {
  // Disposables registered on the context are released by VS Code, the language client included.
}
