/**
 * Drives code-server's workbench with Playwright and headless Chromium, for the editor tests that
 * test/editor/run.sh starts. Every step leaves a screenshot in test-results/editor/
 * (`<test>-NN-<step>.png`); a step that fails leaves `<test>-NN-<step>-FAILED.png` and the HTML of
 * the part of the workbench it looked at, and its error names both.
 *
 * Environment (set by run.sh):
 *   CLAWKER_EDITOR_URL        http://127.0.0.1:PORT of a running code-server
 *   CLAWKER_EDITOR_RESULTS    where screenshots and logs go (default test-results/editor)
 *   CLAWKER_EDITOR_CHROMIUM   Chromium executable (default /usr/bin/chromium)
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';

export const UI_TIMEOUT_MS = 30_000;

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through test/editor/run.sh`);
  return value;
}

export async function visible(locator: Locator, what: string, timeout = UI_TIMEOUT_MS): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    throw new Error(`${what} did not appear within ${timeout / 1000} s`);
  }
}

export async function hidden(locator: Locator, what: string, timeout = UI_TIMEOUT_MS): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'hidden', timeout });
  } catch {
    throw new Error(`${what} was still there after ${timeout / 1000} s`);
  }
}

/** Polls `probe` until it returns a value (not undefined); the error names `what` and the last value seen. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = UI_TIMEOUT_MS, describeLast?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = describeLast ? `; ${await describeLast().catch((e: unknown) => `(could not tell: ${String(e)})`)}` : '';
      throw new Error(`${what}: not within ${timeoutMs / 1000} s${last}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export class EditorDriver {
  readonly url = required('CLAWKER_EDITOR_URL');
  readonly results = process.env.CLAWKER_EDITOR_RESULTS ?? 'test-results/editor';
  readonly chromiumPath = process.env.CLAWKER_EDITOR_CHROMIUM ?? '/usr/bin/chromium';
  readonly consoleLog: string;
  private browser: Browser | undefined;
  private shot = 0;

  /** `name` prefixes this test's screenshots and browser console log. */
  constructor(readonly name: string) {
    mkdirSync(this.results, { recursive: true });
    this.consoleLog = join(this.results, `${name}-browser-console.log`);
    writeFileSync(this.consoleLog, '');
  }

  async launch(): Promise<Page> {
    this.browser = await chromium.launch({
      executablePath: this.chromiumPath,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await this.browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.on('console', (m) => appendFileSync(this.consoleLog, `[${m.type()}] ${m.text()}\n`));
    page.on('pageerror', (e) => appendFileSync(this.consoleLog, `[pageerror] ${e.message}\n`));
    page.on('requestfailed', (r) => appendFileSync(this.consoleLog, `[requestfailed] ${r.url().slice(0, 200)}: ${r.failure()?.errorText ?? '?'}\n`));
    return page;
  }

  async close(): Promise<void> {
    await this.browser?.close().catch(() => undefined);
  }

  log(line: string): void {
    appendFileSync(this.consoleLog, `[driver] ${line}\n`);
  }

  async screenshot(page: Page, step: string): Promise<string> {
    this.shot += 1;
    const file = join(this.results, `${this.name}-${String(this.shot).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path: file, timeout: 10_000 }).catch((e: unknown) => this.log(`screenshot ${file} failed: ${String(e)}`));
    return file;
  }

  /** Runs one step; on failure leaves a screenshot and the HTML of `scope`, and says where they are. */
  async step<T>(page: Page, step: string, scope: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const result = await fn();
      const file = await this.screenshot(page, step);
      console.log(`  ok   ${step} (${Date.now() - started} ms) -> ${file}`);
      return result;
    } catch (err) {
      const file = await this.screenshot(page, `${step}-FAILED`);
      const htmlFile = file.replace(/\.png$/, '.html');
      const html = await page
        .locator(scope)
        .first()
        .evaluate((el) => el.outerHTML, undefined, { timeout: 5_000 })
        .catch(() => page.content().catch(() => '<no page content>'));
      writeFileSync(htmlFile, html);
      // Playwright's messages run to a call log: its first line says it. An assertion's says the values.
      const full = err instanceof Error ? err.message : String(err);
      const message = err instanceof Error && err.name === 'AssertionError' ? full.split('\n').slice(0, 12).join('\n') : full.split('\n')[0];
      throw new Error(
        `editor step '${step}' failed after ${Date.now() - started} ms: ${message}\n` +
          `  screenshot: ${file}\n  HTML of '${scope}': ${htmlFile}\n  browser console: ${this.consoleLog}`,
        { cause: err },
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The workbench's parts, as both tests use them
// ---------------------------------------------------------------------------------------------

/** Opens the workbench on `folder` and waits until the Explorer lists `expectFile`. */
export async function openWorkbench(page: Page, url: string, folder: string, expectFile: string): Promise<void> {
  await page.goto(`${url}/?folder=${encodeURIComponent(folder)}`, { timeout: UI_TIMEOUT_MS });
  await visible(page.locator('.monaco-workbench .part.activitybar'), 'the workbench activity bar', 60_000);
  // The Explorer lists the workspace once the remote file system answers.
  await visible(page.locator('.explorer-folders-view .monaco-list-row', { hasText: expectFile }), `'${expectFile}' in the Explorer`);
}

/** The activity bar's Clawker tab. Its name is on its link: <li role="tab"><a class="action-label" aria-label="Clawker">. */
export function clawkerTab(page: Page): Locator {
  return page.locator('.part.activitybar .action-item[role="tab"]').filter({ has: page.locator('a.action-label[aria-label^="Clawker"]') });
}

/** Shows the Clawker view container in the side bar (a click on its tab toggles it, so only when not shown). */
export async function showClawker(page: Page): Promise<Locator> {
  const sidebar = page.locator('.part.sidebar');
  const title = sidebar.locator('.composite.title', { hasText: /clawker/i });
  if (!(await title.first().isVisible().catch(() => false))) {
    await visible(clawkerTab(page), "the 'Clawker' view container in the activity bar");
    await clawkerTab(page).first().click();
  }
  await visible(title, "the 'Clawker' side bar title");
  return sidebar;
}

/** A view of the side bar by its title (the pane whose header says exactly `title`), expanded. */
export async function sideBarView(page: Page, title: string): Promise<Locator> {
  const pane = page.locator('.part.sidebar .pane').filter({ has: page.locator('.pane-header .title', { hasText: new RegExp(`^${escapeRegExp(title)}$`, 'i') }) });
  await visible(pane, `the '${title}' view`);
  const header = pane.first().locator('.pane-header').first();
  if ((await header.getAttribute('aria-expanded')) === 'false') await header.click();
  return pane.first();
}

/** Rows of a tree view whose label is exactly `label`. */
export function treeRows(view: Locator, label: string): Locator {
  return view.locator('.monaco-list-row').filter({ has: view.page().locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) });
}

/**
 * The row labelled `label`, scrolled into view: trees render only the rows in their viewport, so a
 * row below a short view's fold is not in the page until the list is scrolled to it. Scrolls from the
 * top to the bottom with the mouse wheel; undefined when no row has that label.
 */
export async function findTreeRow(view: Locator, label: string): Promise<Locator | undefined> {
  const row = treeRows(view, label).first();
  if (await row.isVisible().catch(() => false)) return row;
  const list = view.locator('.monaco-list').first();
  if (!(await list.isVisible().catch(() => false))) return undefined;
  const page = view.page();
  const lastIndex = async (): Promise<string | null> => list.locator('.monaco-list-row').last().getAttribute('data-index').catch(() => null);
  await list.hover();
  await page.mouse.wheel(0, -100_000);
  await page.waitForTimeout(100);
  for (let i = 0; i < 100; i++) {
    if (await row.isVisible().catch(() => false)) return row;
    const before = await lastIndex();
    await page.mouse.wheel(0, 100);
    await page.waitForTimeout(100);
    if ((await lastIndex()) === before && !(await row.isVisible().catch(() => false))) return undefined; // the bottom
  }
  return undefined;
}

/** Label and description of a tree row. */
export async function rowText(row: Locator): Promise<{ label: string; description: string }> {
  const label = ((await row.locator('.label-name').first().textContent()) ?? '').trim();
  const description = ((await row.locator('.label-description').first().textContent().catch(() => '')) ?? '').trim();
  return { label, description };
}

/** Every row of a view as "label — description" (for error messages). */
export async function describeRows(view: Locator): Promise<string> {
  const rows = await view.locator('.monaco-list-row').evaluateAll((els) =>
    els.map((el) => `${el.querySelector('.label-name')?.textContent?.trim() ?? el.textContent?.trim() ?? ''} — ${el.querySelector('.label-description')?.textContent?.trim() ?? ''}`),
  );
  return rows.length ? `rows: ${rows.join(' | ')}` : `no rows (the view shows: ${((await view.innerText().catch(() => '')) || '(nothing)').replace(/\s+/g, ' ')})`;
}

/** Opens a workspace file with Quick Open; waits until its tab is active and the editor shows `expectText`. */
export async function quickOpen(page: Page, file: string, expectText: string): Promise<void> {
  await page.keyboard.press('Control+P');
  const input = page.locator('.quick-input-widget input');
  await visible(input, 'the Quick Open input');
  await input.first().fill(file);
  await visible(page.locator('.quick-input-list .monaco-list-row', { hasText: file }), `'${file}' in the Quick Open results`);
  await page.keyboard.press('Enter');
  await visible(page.locator('.part.editor .tab.active', { hasText: file }), `an editor tab for '${file}'`);
  await visible(page.locator('.part.editor .view-lines', { hasText: expectText }), "the file's text in the editor");
}

/** Runs a command from the palette (F1) by its full title, "Category: Title". */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await visible(input, 'the command palette');
  await input.first().fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title });
  await visible(row, `the command '${title}' in the palette`);
  await row.first().click();
}

/** The Problems panel (Ctrl+Shift+M), shown. */
export async function problemsPanel(page: Page): Promise<Locator> {
  const panel = page.locator('.part.panel .markers-panel');
  if (!(await panel.first().isVisible().catch(() => false))) await page.keyboard.press('Control+Shift+M');
  await visible(panel, 'the Problems panel');
  return panel.first();
}

/** The Problems panel's rows: aria-label (ends "... generated by <source>") and text. */
export async function problemRows(panel: Locator): Promise<{ label: string; text: string }[]> {
  return panel.locator('.monaco-list-row').evaluateAll((els) => els.map((el) => ({ label: el.getAttribute('aria-label') ?? '', text: el.textContent ?? '' })));
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------------
// Quick picks, notifications, dialogs
// ---------------------------------------------------------------------------------------------

/** A quick pick row's first line (label, description); the second holds the detail. */
const QUICK_PICK_LABEL = '.quick-input-list-rows > .quick-input-list-row:first-child';

/** The open quick pick's rows whose label is exactly `label` (separators have no label-name). */
export function quickPickRow(page: Page, label: string): Locator {
  return page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator(`${QUICK_PICK_LABEL} .label-name`, { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) });
}

export interface QuickPickItemSeen {
  readonly label: string;
  readonly description: string;
  readonly detail: string;
  /** aria-checked of a multi-select's row; undefined in a single-select pick. */
  readonly checked?: boolean;
}

/** Every row of the open quick pick (the list renders them all for a short pick). */
export async function quickPickItems(page: Page): Promise<QuickPickItemSeen[]> {
  // No named functions inside: the callback runs in the page, without tsx's __name helper.
  const rows = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row').evaluateAll(
    (els, firstLine) =>
      els.map((el) => ({
        index: Number(el.getAttribute('data-index')),
        label: el.querySelector(`${firstLine} .label-name`)?.textContent?.trim() ?? '',
        description: el.querySelector(`${firstLine} .label-description`)?.textContent?.trim() ?? '',
        detail: el.querySelector('.quick-input-list-label-meta .label-name')?.textContent?.trim() ?? '',
        checked: el.getAttribute('aria-checked'),
      })),
    QUICK_PICK_LABEL,
  );
  return rows
    .sort((a, b) => a.index - b.index)
    .map(({ label, description, detail, checked }) => ({ label, description, detail, ...(checked === null ? {} : { checked: checked === 'true' }) }));
}

/**
 * The notification toasts whose message matches `text`, once they have faded in (until then a toast
 * is translucent and may sit under another one: a screenshot would not show it).
 */
export function notificationToast(page: Page, text: string | RegExp): Locator {
  return page
    .locator('.notifications-toasts .notification-toast.notification-fade-in-done')
    .filter({ has: page.locator('.notification-list-item-message', { hasText: text }) });
}

export interface NotificationSeen {
  readonly message: string;
  /** It showed a running progress bar (a withProgress notification). */
  readonly progress: boolean;
}

/** What recordNotifications uses of the page's globals (the tests compile without the DOM library). */
interface PageElement {
  readonly textContent: string | null;
  readonly classList: { contains(name: string): boolean };
  readonly style: { readonly display: string };
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
}
interface PageGlobals {
  clawkerToasts?: NotificationSeen[];
  clawkerToastObserver?: { disconnect(): void; observe(target: PageElement, options: object): void };
  readonly document: PageElement & { readonly body: PageElement };
  readonly MutationObserver: new (callback: () => void) => NonNullable<PageGlobals['clawkerToastObserver']>;
}

/**
 * Starts recording every notification toast the workbench shows from now on, with whether it ran
 * a progress bar: a verb may finish (and its progress notification close) before a poll sees it.
 */
export async function recordNotifications(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = globalThis as unknown as PageGlobals;
    w.clawkerToastObserver?.disconnect();
    const seen: NotificationSeen[] = [];
    w.clawkerToasts = seen;
    w.clawkerToastObserver = new w.MutationObserver(() => {
      // A toast's row holds the message and, beside it, the progress bar.
      for (const row of Array.from(w.document.querySelectorAll('.notifications-toasts .monaco-list-row'))) {
        const message = row.querySelector('.notification-list-item-message')?.textContent?.trim() ?? '';
        const bar = row.querySelector('.monaco-progress-container');
        const progress = !!bar && !bar.classList.contains('done') && bar.style.display !== 'none';
        if (message && !seen.some((s) => s.message === message && s.progress === progress)) seen.push({ message, progress });
      }
    });
    w.clawkerToastObserver.observe(w.document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

/** The notifications recorded since recordNotifications. */
export async function recordedNotifications(page: Page): Promise<NotificationSeen[]> {
  return page.evaluate(() => [...((globalThis as unknown as PageGlobals).clawkerToasts ?? [])]);
}

/** The button labelled exactly `label` in a toast matching `text`. */
export function toastButton(page: Page, text: string | RegExp, label: string): Locator {
  return notificationToast(page, text).locator('.monaco-button', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) });
}

/** A modal dialog whose message matches `text`. */
export function modalDialog(page: Page, text: string | RegExp): Locator {
  return page.locator('.monaco-dialog-box').filter({ has: page.locator('.dialog-message-text', { hasText: text }) });
}
