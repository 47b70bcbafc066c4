/**
 * Saving `.clawker.yaml` applies it: `clawker firewall refresh` syncs its add_domains and rules into
 * the rule store, and into the running stack when there is one (the spec's "apply yaml edits without
 * a container restart"). A file with errors is not applied, and the user is told why.
 */
import * as vscode from 'vscode';
import { projectDirOf } from './projectDir';
import { cliVerdict, lastMeaningfulLine } from './stack/cliRunner';
import type { ClawkerCli, StackStatus } from './stack/contracts';

export function registerRefreshOnSave(
  context: vscode.ExtensionContext,
  d: { cli: ClawkerCli; status: StackStatus; log: vscode.LogOutputChannel },
): void {
  let running: Promise<void> = Promise.resolve();
  context.subscriptions.push(
    vscode.workspace.onDidSaveTextDocument((doc) => {
      const dir = doc.uri.scheme === 'file' ? projectDirOf(doc.uri.fsPath) : undefined;
      if (!dir || !vscode.workspace.isTrusted) return;
      if (!vscode.workspace.getConfiguration('clawker').get<boolean>('refreshOnSave', true)) return;
      // One refresh at a time, in save order: the last save wins.
      running = running.then(async () => {
        const started = Date.now();
        const result = await d.cli.run(['firewall', 'refresh'], { cwd: dir });
        if (result.code === 0) {
          vscode.window.setStatusBarMessage(`$(shield) Clawker: ${lastMeaningfulLine(result.stdout) ?? 'firewall refreshed'} (${Date.now() - started} ms)`, 6000);
          await d.status.refresh();
          void vscode.commands.executeCommand('clawker.rules.refresh');
        } else {
          const why = cliVerdict(result.stderr) ?? `exit code ${result.code}`;
          d.log.warn(`refresh after saving ${doc.uri.fsPath}: ${why}`);
          void vscode.window.showWarningMessage(`.clawker.yaml was saved but not applied to the firewall: ${why}`, 'Show Log').then((c) => c && d.log.show());
        }
      });
    }),
  );
}
