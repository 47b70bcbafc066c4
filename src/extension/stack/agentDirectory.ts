/**
 * The agents of every project, as `clawker ps -a --json` lists them, refreshed when the stack's
 * status changes, after each command, and now and then while the Agents view is visible.
 */
import { resolve } from 'node:path';
import * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { EgressEvent } from '../../core/events/egressEvent';
import { CliError, cliVerdict } from './cliRunner';
import type { AgentDirectory, ClawkerCli } from './contracts';

export class ListedAgents implements AgentDirectory, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private agents: readonly AgentSummary[] = [];
  private lastJson = '';
  private error: string | undefined;
  private inFlight: Promise<void> | undefined;
  private loadedOnce = false;

  constructor(private readonly cli: ClawkerCli) {}

  get all(): readonly AgentSummary[] {
    return this.agents;
  }

  get dockerError(): string | undefined {
    return this.error;
  }

  /** True once the first listing came back (until then the views say "loading", not "no agents"). */
  get loaded(): boolean {
    return this.loadedOnce;
  }

  refresh(): Promise<void> {
    this.inFlight ??= this.list().finally(() => (this.inFlight = undefined));
    return this.inFlight;
  }

  private async list(): Promise<void> {
    let agents: readonly AgentSummary[] = this.agents;
    let error: string | undefined;
    try {
      agents = await this.cli.json<AgentSummary[]>(['ps', '-a', '--json']);
    } catch (e) {
      error = e instanceof CliError ? (cliVerdict(e.result.stderr) ?? e.message) : e instanceof Error ? e.message : String(e);
      agents = [];
    }
    this.loadedOnce = true;
    const json = JSON.stringify([agents, error]);
    if (json === this.lastJson) return;
    this.lastJson = json;
    this.agents = agents;
    this.error = error;
    this.changed.fire();
  }

  ofWorkspace(): readonly AgentSummary[] {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => resolve(f.uri.fsPath));
    return this.agents.filter((a) => folders.includes(resolve(a.workspace)));
  }

  forEvent(event: EgressEvent): AgentSummary | undefined {
    if (event.container) {
      const byId = this.agents.find((a) => a.id === event.container || a.id.startsWith(event.container!) || a.name === event.container);
      if (byId) return byId;
    }
    if (!event.agent) return undefined;
    const named = this.agents.filter((a) => a.agent === event.agent && a.state === 'running');
    return named.length === 1 ? named[0] : undefined;
  }

  dispose(): void {
    this.changed.dispose();
  }
}
