/**
 * One status bar item per open bypass window: the agent and a live `mm:ss` countdown; clicking it
 * closes the window early. The control plane owns the deadline (it survives a window reload and a
 * control-plane restart); the editor only counts down to it and hides the item once it has passed
 * or the control plane no longer reports it.
 */
import * as vscode from 'vscode';
import { formatCountdown, openBypasses } from './bypassCountdown';
import type { StackStatus } from './stack/contracts';

export function registerBypassStatusBar(context: vscode.ExtensionContext, status: StackStatus): void {
  const items = new Map<string, vscode.StatusBarItem>();
  let ticker: NodeJS.Timeout | undefined;

  const render = (): void => {
    const now = Date.now();
    const open = openBypasses(status.current?.agents ?? [], now);
    const keep = new Set(open.map((b) => b.container));
    for (const [container, item] of items) {
      if (!keep.has(container)) {
        item.dispose();
        items.delete(container);
      }
    }
    for (const b of open) {
      let item = items.get(b.container);
      if (!item) {
        item = vscode.window.createStatusBarItem(`clawker.bypass.${b.container.slice(0, 12)}`, vscode.StatusBarAlignment.Left, 100);
        item.name = `Clawker bypass: ${b.agent}`;
        item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
        item.command = { title: 'Stop the bypass', command: 'clawker.firewall.bypassStop', arguments: [{ container: b.container }] };
        items.set(b.container, item);
      }
      item.text = `$(unlock) Bypass ${b.agent} ${formatCountdown((b.until - now) / 1000)}`;
      item.tooltip = `The firewall is bypassed for ${b.agent}: unrestricted egress until ${new Date(b.until).toLocaleTimeString()}. Click to close it now.`;
      item.show();
    }
    if (open.length > 0 && !ticker) ticker = setInterval(render, 1000);
    if (open.length === 0 && ticker) {
      clearInterval(ticker);
      ticker = undefined;
      // The window just ran out here: ask the control plane, whose record is the one that counts.
      void status.refresh();
    }
  };

  context.subscriptions.push(status.onDidChange(render), {
    dispose: () => {
      if (ticker) clearInterval(ticker);
      for (const item of items.values()) item.dispose();
    },
  });
  render();
}
