// Editor smoke test: the packaged extension in a real VS Code (code-server), seen through Chromium.
// Started by test/editor/run.sh, which packages and installs the extension, serves the fixture
// workspace and passes where to find it:
//   CLAWKER_EDITOR_URL        http://127.0.0.1:PORT of a running code-server
//   CLAWKER_EDITOR_WORKSPACE  the folder it serves (a copy of test/editor/fixtures/workspace/)
//   CLAWKER_EDITOR_RESULTS    where screenshots and logs go (test-results/editor/)
//   CLAWKER_EDITOR_CHROMIUM   Chromium executable (default /usr/bin/chromium)
//   CLAWKER_EDITOR_TIMEOUT    seconds to wait for the diagnostic (default 60)
// Every step leaves a screenshot; a step that fails leaves NN-step-FAILED.png and the HTML of the
// part of the workbench it looked at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

const URL_BASE = required('CLAWKER_EDITOR_URL');
const WORKSPACE = required('CLAWKER_EDITOR_WORKSPACE');
const RESULTS = process.env.CLAWKER_EDITOR_RESULTS ?? 'test-results/editor';
const CHROMIUM = process.env.CLAWKER_EDITOR_CHROMIUM ?? '/usr/bin/chromium';
const DIAGNOSTIC_TIMEOUT_MS = Number(process.env.CLAWKER_EDITOR_TIMEOUT ?? 60) * 1000;
const UI_TIMEOUT_MS = 30_000;

const CONFIG_FILE = '.clawker.yaml';
/** The fixture's `path: v1/chat` is on this line (1-based), and the server reports it there. */
const EXPECTED_LINE = 11;
const EXPECTED_SOURCE = 'clawker';
const EXPECTED_MESSAGE = 'must start with';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this test through test/editor/run.sh`);
  return value;
}

mkdirSync(RESULTS, { recursive: true });
const consoleLog = join(RESULTS, 'browser-console.log');
writeFileSync(consoleLog, '');

let shot = 0;
async function screenshot(page: Page, name: string): Promise<string> {
  shot += 1;
  const file = join(RESULTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, timeout: 10_000 }).catch((e) => {
    appendFileSync(consoleLog, `[driver] screenshot ${file} failed: ${e}\n`);
  });
  return file;
}

/** Runs one step; on failure leaves a screenshot and the HTML of `scope`, and says where they are. */
async function step<T>(page: Page, name: string, scope: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    const result = await fn();
    const file = await screenshot(page, name);
    console.log(`  ok   ${name} (${Date.now() - started} ms) -> ${file}`);
    return result;
  } catch (err) {
    const file = await screenshot(page, `${name}-FAILED`);
    const htmlFile = file.replace(/\.png$/, '.html');
    const html = await page
      .locator(scope)
      .first()
      .evaluate((el) => el.outerHTML, undefined, { timeout: 5_000 })
      .catch(() => page.content().catch(() => '<no page content>'));
    writeFileSync(htmlFile, html);
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new Error(
      `editor step '${name}' failed after ${Date.now() - started} ms: ${message}\n` +
        `  screenshot: ${file}\n  HTML of '${scope}': ${htmlFile}\n  browser console: ${consoleLog}`,
      { cause: err },
    );
  }
}

async function visible(locator: Locator, what: string, timeout = UI_TIMEOUT_MS): Promise<void> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch {
    throw new Error(`${what} did not appear within ${timeout / 1000} s`);
  }
}

test('the packaged extension in code-server: Clawker views and a diagnostic on .clawker.yaml', { timeout: 240_000 }, async () => {
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.on('console', (m) => appendFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`));
    page.on('pageerror', (e) => appendFileSync(consoleLog, `[pageerror] ${e.message}\n`));
    page.on('requestfailed', (r) =>
      appendFileSync(consoleLog, `[requestfailed] ${r.url().slice(0, 200)}: ${r.failure()?.errorText ?? '?'}\n`),
    );

    // 1. The workbench for the folder.
    await step(page, 'workbench', 'body', async () => {
      const started = Date.now();
      await page.goto(`${URL_BASE}/?folder=${encodeURIComponent(WORKSPACE)}`, { timeout: UI_TIMEOUT_MS });
      await visible(page.locator('.monaco-workbench .part.activitybar'), 'the workbench activity bar', 60_000);
      // The Explorer lists the workspace once the remote file system answers.
      await visible(
        page.locator('.explorer-folders-view .monaco-list-row', { hasText: CONFIG_FILE }),
        `'${CONFIG_FILE}' in the Explorer`,
      );
      console.log(`  workbench loaded in ${Date.now() - started} ms`);
    });

    // 2. The Clawker view container in the activity bar.
    // The tab's name is on its link: <li role="tab" aria-label=""><a class="action-label" aria-label="Clawker">.
    const clawkerTab = page
      .locator('.part.activitybar .action-item[role="tab"]')
      .filter({ has: page.locator('a.action-label[aria-label^="Clawker"]') });
    await step(page, 'activity-bar', '.part.activitybar', async () => {
      await visible(clawkerTab, "the 'Clawker' view container in the activity bar");
    });

    // 3. Open it: the Agents and Firewall Rules views.
    await step(page, 'clawker-views', '.part.sidebar', async () => {
      await clawkerTab.first().click();
      const sidebar = page.locator('.part.sidebar');
      await visible(sidebar.locator('.composite.title', { hasText: /clawker/i }), "the 'Clawker' side bar title");
      for (const name of ['Agents', 'Firewall Rules']) {
        await visible(sidebar.locator('.pane-header', { hasText: name }), `the '${name}' view header`);
      }
    });

    // 4. Open .clawker.yaml with Quick Open (this starts the language server on it).
    await step(page, 'open-config', '.monaco-workbench', async () => {
      await page.keyboard.press('Control+P');
      const input = page.locator('.quick-input-widget input');
      await visible(input, 'the Quick Open input');
      await input.first().fill(CONFIG_FILE);
      await visible(
        page.locator('.quick-input-list .monaco-list-row', { hasText: CONFIG_FILE }),
        `'${CONFIG_FILE}' in the Quick Open results`,
      );
      await page.keyboard.press('Enter');
      await visible(
        page.locator('.part.editor .tab.active', { hasText: CONFIG_FILE }),
        `an editor tab for '${CONFIG_FILE}'`,
      );
      await visible(page.locator('.part.editor .view-lines', { hasText: 'path_rules' }), "the file's text in the editor");
    });

    // 5. The Problems panel shows the extension's diagnostic on line 11.
    const markers = await step(page, 'problems', '.part.panel', async () => {
      await page.locator('.part.editor .view-lines').first().click();
      await page.keyboard.press('Control+Shift+M');
      const panel = page.locator('.part.panel .markers-panel');
      await visible(panel, 'the Problems panel');
      const fileRow = panel.locator('.monaco-list-row', { hasText: CONFIG_FILE });
      const markerRow = panel.locator(`.monaco-list-row[aria-label*="${EXPECTED_SOURCE}"]`, {
        hasText: EXPECTED_MESSAGE,
      });
      try {
        await fileRow.first().waitFor({ state: 'visible', timeout: DIAGNOSTIC_TIMEOUT_MS });
        await markerRow.first().waitFor({ state: 'visible', timeout: DIAGNOSTIC_TIMEOUT_MS });
      } catch {
        const shown = (await panel.innerText().catch(() => '')).trim() || '(nothing)';
        throw new Error(
          `no '${EXPECTED_SOURCE}' problem containing '${EXPECTED_MESSAGE}' on ${CONFIG_FILE} within ` +
            `${DIAGNOSTIC_TIMEOUT_MS / 1000} s; the Problems panel shows: ${shown.replace(/\s+/g, ' ')}`,
        );
      }
      const rows = await panel.locator('.monaco-list-row').evaluateAll((els) =>
        els.map((el) => ({ label: el.getAttribute('aria-label') ?? '', text: el.textContent ?? '' })),
      );
      return rows;
    });
    console.log(`  Problems panel rows:\n${markers.map((r) => `    ${r.label}`).join('\n')}`);
    // A marker row's label ends "... generated by <source>"; its text shows "<source>(<code>)".
    const ours = markers.filter(
      (r) =>
        (r.label.includes(`generated by ${EXPECTED_SOURCE}`) || r.text.includes(`${EXPECTED_SOURCE}(`)) &&
        r.text.includes(EXPECTED_MESSAGE),
    );
    assert.ok(ours.length > 0, `no marker row from '${EXPECTED_SOURCE}' with '${EXPECTED_MESSAGE}'`);
    // The marker's position: "[Ln 11, Col 19]" in the row, "at line 11 ..." in its label.
    assert.ok(
      ours.some((r) => r.text.includes(`Ln ${EXPECTED_LINE},`) || r.label.includes(`line ${EXPECTED_LINE} `)),
      `the '${EXPECTED_SOURCE}' problem is not on line ${EXPECTED_LINE}: ${JSON.stringify(ours)}`,
    );
  } finally {
    await browser?.close().catch(() => undefined);
  }
});
