/**
 * Runs one CLI verb the way every palette command and tree action does: a progress notification
 * fed by the CLI's progress lines, a Cancel button that really stops it, and an error message that
 * says what the CLI said (its last line carries the next step) with a way to the full log.
 */
import * as vscode from 'vscode';
import { cliVerdict, lastMeaningfulLine } from '../stack/cliRunner';
import type { ClawkerCli, CliResult } from '../stack/contracts';

export interface VerbOptions {
  /** The notification's title: "Starting agent dev". */
  readonly title: string;
  readonly cwd?: string;
  /** Long work (image builds, stack start) shows a notification; short work the window's progress. */
  readonly long?: boolean;
  /** What to say on success; default: the CLI's stdout (its human summary). */
  readonly done?: (result: CliResult) => string | undefined;
}

export async function runVerb(cli: ClawkerCli, log: vscode.LogOutputChannel, args: readonly string[], o: VerbOptions): Promise<CliResult | undefined> {
  const result = await vscode.window.withProgress(
    { location: o.long ? vscode.ProgressLocation.Notification : vscode.ProgressLocation.Window, title: o.title, cancellable: true },
    (progress, token) =>
      cli.run(args, {
        ...(o.cwd ? { cwd: o.cwd } : {}),
        token,
        onProgress: (line) => {
          const message = line.replace(/^==> /, '').trim();
          if (message) progress.report({ message });
        },
      }),
  );
  if (result.code === 130 || result.code === 143) {
    void vscode.window.showInformationMessage(`${o.title}: cancelled.`);
    return undefined;
  }
  if (result.code !== 0) {
    const why = cliVerdict(result.stderr) ?? lastMeaningfulLine(result.stdout) ?? `exit code ${result.code}`;
    void vscode.window.showErrorMessage(`${o.title} failed: ${why}`, 'Show Log').then((c) => c && log.show());
    return undefined;
  }
  const message = o.done ? o.done(result) : lastMeaningfulLine(result.stdout);
  if (message) void vscode.window.showInformationMessage(message);
  return result;
}
