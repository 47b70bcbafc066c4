/**
 * What the extension's features share: the live stack as the editor sees it. One implementation of
 * each (src/extension/stack/*), handed to every feature by extension.ts, so the views, the status
 * bar, the diagnostics and learn mode all show the same facts.
 */
import type * as vscode from 'vscode';
import type { AgentSummary } from '../../core/agents/lifecycle';
import type { EgressEvent } from '../../core/events/egressEvent';
import type { Status } from '../../core/stack/controlPlaneApi';

/** The control plane's event stream, followed while the control plane runs (reconnecting after). */
export interface EgressFeed {
  /** Every event, validated against the schema, in arrival order (the recent tail first on connect). */
  readonly onEvent: vscode.Event<EgressEvent>;
  /** True while connected to the control plane. */
  readonly connected: boolean;
  readonly onDidChangeConnection: vscode.Event<boolean>;
}

/** The control plane's status, polled; undefined while it is not running. */
export interface StackStatus {
  readonly current: Status | undefined;
  readonly onDidChange: vscode.Event<Status | undefined>;
  /** Poll now (after a command changed something). */
  refresh(): Promise<void>;
}

/** Agent containers of every project (`clawker ps -a --json`), and which belong to this workspace. */
export interface AgentDirectory {
  readonly all: readonly AgentSummary[];
  readonly onDidChange: vscode.Event<void>;
  refresh(): Promise<void>;
  /** Agents whose workspace is one of the open workspace folders. */
  ofWorkspace(): readonly AgentSummary[];
  /** The agent an event came from (by container id, else by agent name when unambiguous). */
  forEvent(event: EgressEvent): AgentSummary | undefined;
  /** Docker unreachable (the welcome view's state). */
  readonly dockerError: string | undefined;
}

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  /** Working directory (the workspace folder: the CLI finds `.clawker.yaml` there). */
  readonly cwd?: string;
  /** Each stderr line the CLI prints while it works (its progress). */
  readonly onProgress?: (line: string) => void;
  /** Cancelling kills the CLI (SIGINT, then SIGKILL): real cancellation, not a hidden notification. */
  readonly token?: vscode.CancellationToken;
}

/** The bundled `clawker` CLI (dist/cli.js), run with an argument vector (never a shell string). */
export interface ClawkerCli {
  run(args: readonly string[], options?: CliRunOptions): Promise<CliResult>;
  /** run(), then JSON.parse(stdout); throws a CliError naming the command and its stderr on failure. */
  json<T>(args: readonly string[], options?: CliRunOptions): Promise<T>;
  /**
   * A long-lived CLI (`firewall status --watch`, `firewall events --follow`): each stdout line to
   * `onLine`; `send` writes a line to its stdin; disposing closes stdin, then ends it.
   */
  follow(args: readonly string[], onLine: (line: string) => void): FollowedCli;
  /** The command line a terminal runs for `args` (attach, logs -f). */
  terminalCommand(args: readonly string[]): { shellPath: string; shellArgs: string[]; env: Record<string, string> };
}

export interface FollowedCli {
  send(line: string): void;
  /** Its exit code (or 128 + signal), once it has ended. */
  readonly exited: Promise<number>;
  dispose(): void;
}
