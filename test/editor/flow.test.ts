// The editor flow on the real stack: code-server with the packaged extension, the real firewall
// (control plane, eBPF, CoreDNS, the Envoy stand-in) and an agent `dev` started from the real agent
// image (test/editor/stack.ts brings them up; run.sh passes where they are):
//   CLAWKER_EDITOR_URL          http://127.0.0.1:PORT of a running code-server, whose environment
//                               holds the stack's CLAWKER_* variables
//   CLAWKER_EDITOR_STACK_INFO   stack.json written by stack.ts (StackInfo): the workspace, the
//                               agent's and the proxy's containers, the stack's environment
//   CLAWKER_EDITOR_RESULTS, CLAWKER_EDITOR_CHROMIUM: see driver.ts
//
// The steps: the Agents view lists `dev`; the agent asks for blocked.test and is refused; the
// Blocked view and a diagnostic on .clawker.yaml say so; the quick fix adds the domain to
// add_domains (the whole file is compared); saving applies it; the Rules view lists it; the agent's
// retry reaches the proxy listener; a 15 s bypass shows its countdown in the status bar, which goes
// away when it ends. Screenshots: test-results/editor/flow-NN-<step>.png.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { type EnvoyRecord, envoyRecords } from '../e2e/internet';
import { clawker, run } from '../e2e/testbed';
import {
  describeRows,
  EditorDriver,
  eventually,
  findTreeRow,
  hidden,
  openWorkbench,
  problemRows,
  problemsPanel,
  quickOpen,
  required,
  rowText,
  runCommand,
  showClawker,
  sideBarView,
  treeRows,
  visible,
} from './driver';
import type { StackInfo } from './stack';

const info = JSON.parse(readFileSync(required('CLAWKER_EDITOR_STACK_INFO'), 'utf8')) as StackInfo;
const CONFIG_FILE = '.clawker.yaml';
const CONFIG_PATH = join(info.workspace, CONFIG_FILE);
const BLOCKED = 'blocked.test';
const BYPASS_SECONDS = 15;
/** How long the extension may take to notice a change of the stack (events, polling). */
const STACK_TIMEOUT_MS = 30_000;

/** test/editor/fixtures/stack-workspace/.clawker.yaml, as the test starts with it. */
const FIXTURE = `# Editor end-to-end fixture: the project whose agent \`dev\` the flow test drives.
# The quick fix must keep these comments and this layout exactly as they are.
name: editor-flow

security:
  # The agent needs no git credentials: no host proxy.
  enable_host_proxy: false
  firewall:
    # Reachable over HTTPS from the start.
    add_domains:
      - allowed.test   # the test internet's origin

agent:
  env:
    EDITOR_FLOW: "1"   # below the firewall section: an edit must not move it
`;

/** The fixture plus one line: the new domain under add_domains, nothing else touched. */
const EXPECTED_AFTER_FIX = `# Editor end-to-end fixture: the project whose agent \`dev\` the flow test drives.
# The quick fix must keep these comments and this layout exactly as they are.
name: editor-flow

security:
  # The agent needs no git credentials: no host proxy.
  enable_host_proxy: false
  firewall:
    # Reachable over HTTPS from the start.
    add_domains:
      - allowed.test   # the test internet's origin
      - blocked.test

agent:
  env:
    EDITOR_FLOW: "1"   # below the firewall section: an edit must not move it
`;

interface Curl {
  code: number;
  stdout: string;
  stderr: string;
}

/** The agent's request: curl in the agent's container (the image trusts the firewall CA). */
async function agentCurl(url: string): Promise<Curl> {
  return run('docker', ['exec', info.agentContainer, 'curl', '-sS', '--max-time', '10', url], 30_000);
}

const proxyConnections = async (): Promise<EnvoyRecord[]> => (await envoyRecords(info.envoyContainer)).filter((r) => r.kind === 'conn');

async function firewallStatus(): Promise<Status> {
  const r = await clawker(['firewall', 'status', '--json'], { env: { ...process.env, ...info.env }, cwd: info.workspace, ...(info.asUser ? { asUser: info.asUser } : {}) });
  return JSON.parse(r.stdout) as Status;
}

/** "Bypass dev 00:14" → 14 (the first mm:ss in the text). */
function countdownSeconds(text: string): number | undefined {
  const m = /(\d{1,2}):(\d{2})/.exec(text);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

test('the editor on the real stack: agent, blocked domain, quick fix, rule, retry through the firewall, bypass countdown', { timeout: 600_000 }, async () => {
  assert.equal(readFileSync(CONFIG_PATH, 'utf8'), FIXTURE, 'the workspace starts as the fixture (test/editor/fixtures/stack-workspace/.clawker.yaml)');
  // run.sh runs this file twice: as root, and with code-server and the stack as the journey user.
  const driver = new EditorDriver(info.asUser ? 'flow-as-user' : 'flow');
  try {
    const page = await driver.launch();
    const step = driver.step.bind(driver);

    await step(page, 'workbench', 'body', () => openWorkbench(page, driver.url, info.workspace, CONFIG_FILE));

    // The Agents view lists the running agent: label `dev`, description with the project and state.
    await step(page, 'agents-view', '.part.sidebar', async () => {
      await showClawker(page);
      const agents = await sideBarView(page, 'Agents');
      const row = treeRows(agents, info.agent);
      await eventually(`agent '${info.agent}' (${info.project}, running) in the Agents view`, async () => {
        if (!(await row.first().isVisible().catch(() => false))) return undefined;
        const { description } = await rowText(row.first());
        return description.includes(info.project) && description.includes('running') ? description : undefined;
      }, STACK_TIMEOUT_MS, () => describeRows(agents));
    });

    // The agent asks for blocked.test (twice): CoreDNS refuses the name, so curl cannot resolve it.
    const connectionsBefore = (await proxyConnections()).length;
    for (let i = 0; i < 2; i++) {
      const r = await agentCurl(`https://${BLOCKED}/`);
      console.log(`  agent: curl https://${BLOCKED}/ -> exit ${r.code}: ${r.stderr.trim()}`);
      assert.equal(r.code, 6, `curl exits 6 (could not resolve host): ${JSON.stringify(r)}`);
      assert.match(r.stderr, /Could not resolve host: blocked\.test/);
    }
    assert.ok(!(await proxyConnections()).slice(connectionsBefore).some((r) => r.sni === BLOCKED), 'nothing for blocked.test reached the proxy');

    // The Blocked view: agent dev → blocked.test ×N.
    const blockedCount = await step(page, 'blocked-view', '.part.sidebar', async () => {
      const view = await sideBarView(page, 'Blocked');
      const agentRow = treeRows(view, info.agent);
      await visible(agentRow, `agent '${info.agent}' in the Blocked view`, STACK_TIMEOUT_MS);
      const domainRow = treeRows(view, BLOCKED);
      if (!(await domainRow.first().isVisible().catch(() => false)) && (await agentRow.first().getAttribute('aria-expanded')) === 'false') {
        await agentRow.first().click();
      }
      return eventually(`'${BLOCKED}' with '×N' under '${info.agent}' in the Blocked view`, async () => {
        if (!(await domainRow.first().isVisible().catch(() => false))) return undefined;
        const m = /^×(\d+)/.exec((await rowText(domainRow.first())).description);
        return m ? Number(m[1]) : undefined;
      }, STACK_TIMEOUT_MS, () => describeRows(view));
    });
    assert.ok(blockedCount >= 1, `blocked ×${blockedCount}`);

    // The diagnostic on .clawker.yaml.
    const diagnosticText = new RegExp(`Agent ${info.agent} was blocked from ${BLOCKED.replace('.', '\\.')} (\\d+) times? \\(DNS refused`);
    await step(page, 'diagnostic', '.part.panel', async () => {
      await quickOpen(page, CONFIG_FILE, 'add_domains');
      const panel = await problemsPanel(page);
      const marker = panel.locator('.monaco-list-row', { hasText: diagnosticText });
      await visible(marker, `the problem '${diagnosticText.source}' in the Problems panel`, STACK_TIMEOUT_MS).catch(async (e: Error) => {
        throw new Error(`${e.message}; the Problems panel shows: ${(await panel.innerText().catch(() => '')).replace(/\s+/g, ' ') || '(nothing)'}`);
      });
      const rows = (await problemRows(panel)).filter((r) => diagnosticText.test(r.text));
      assert.ok(
        rows.some((r) => r.label.includes('generated by clawker') || r.text.includes('clawker(')),
        `the problem comes from the source 'clawker': ${JSON.stringify(rows)}`,
      );
      const times = Number(diagnosticText.exec(rows[0]!.text)?.[1]);
      assert.equal(times, blockedCount, `the problem and the Blocked view count the same refusals: '${rows[0]!.text}' and ×${blockedCount}`);
    });

    // The quick fix: open the problem (the cursor goes to it), Ctrl+. , pick "Allow blocked.test (add_domains)".
    const fixTitle = `Allow ${BLOCKED} (add_domains)`;
    await step(page, 'quick-fix-menu', '.monaco-workbench', async () => {
      const panel = await problemsPanel(page);
      // A double click opens the problem in the editor, with the cursor on it and the focus there.
      await panel.locator('.monaco-list-row', { hasText: diagnosticText }).first().dblclick();
      await visible(page.locator('.part.editor .tab.active', { hasText: CONFIG_FILE }), `the editor of ${CONFIG_FILE}`);
      await visible(page.locator('.part.editor .monaco-editor.focused'), `the focus in the editor of ${CONFIG_FILE}`);
      await page.keyboard.press('Control+.');
      await visible(page.locator('.action-widget .monaco-list-row', { hasText: fixTitle }), `the quick fix '${fixTitle}'`);
    });
    await step(page, 'quick-fix-applied', '.part.editor', async () => {
      // Keyboard, as a user picks from the menu: move the focus to the fix, then Enter.
      const focused = page.locator('.action-widget .monaco-list-row.focused');
      for (let i = 0; i < 10 && !((await focused.first().textContent().catch(() => '')) ?? '').includes(fixTitle); i++) await page.keyboard.press('ArrowDown');
      assert.ok(((await focused.first().textContent()) ?? '').includes(fixTitle), `the focused fix is '${fixTitle}'`);
      await page.keyboard.press('Enter');
      await visible(page.locator('.part.editor .view-lines', { hasText: `- ${BLOCKED}` }), `'- ${BLOCKED}' in the editor`);
    });

    // Save: the extension runs `clawker firewall refresh`; the diagnostic goes; the file is exactly the fix.
    await step(page, 'saved', '.part.panel', async () => {
      await page.keyboard.press('Control+S');
      await eventually('the saved file equals the fixture plus the new add_domains entry', async () =>
        readFileSync(CONFIG_PATH, 'utf8') === EXPECTED_AFTER_FIX ? true : undefined,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; on disk:\n${readFileSync(CONFIG_PATH, 'utf8')}`);
      });
      const panel = await problemsPanel(page);
      await hidden(panel.locator('.monaco-list-row', { hasText: diagnosticText }), 'the blocked-domain problem', STACK_TIMEOUT_MS);
    });
    assert.equal(readFileSync(CONFIG_PATH, 'utf8'), EXPECTED_AFTER_FIX);
    if (info.asUser) {
      // code-server saved it as the user, and the CLI the extension ran on save wrote the user's data dir.
      const uid = Number((await run('id', ['-u', info.asUser])).stdout.trim());
      assert.equal(statSync(CONFIG_PATH).uid, uid, `${CONFIG_FILE} saved by ${info.asUser}`);
      assert.equal(statSync(info.env.CLAWKER_DATA_DIR!).uid, uid, `the data dir is ${info.asUser}'s`);
    }

    // The Rules view lists the rule, from the project.
    await step(page, 'rules-view', '.part.sidebar', async () => {
      await showClawker(page);
      const view = await sideBarView(page, 'Firewall Rules');
      const description = await eventually(`'${BLOCKED}' in the Firewall Rules view`, async () => {
        const row = await findTreeRow(view, BLOCKED);
        return row ? (await rowText(row)).description : undefined;
      }, STACK_TIMEOUT_MS, () => describeRows(view));
      assert.equal(description, 'https:443 · allow · project');
    });

    // The agent's retry gets through the firewall: resolved, redirected to the proxy's listener, TLS with the firewall CA.
    // The name may resolve a moment before the proxy has loaded its new chain: an attempt in that
    // moment is reset by the proxy (fail closed) and the user's retry is tried again. The
    // successful attempt's own connections are the ones asserted on below.
    const before = (await proxyConnections()).length;
    const { r: retry, from } = await eventually('the retry succeeds', async () => {
      const n = (await proxyConnections()).length;
      const r = await agentCurl(`https://${BLOCKED}/`);
      return r.code === 0 ? { r, from: n } : undefined;
    }, STACK_TIMEOUT_MS, async () => JSON.stringify(await agentCurl(`https://${BLOCKED}/`)));
    console.log(`  agent: curl https://${BLOCKED}/ -> exit 0: ${retry.stdout.trim()}`);
    const earlier = (await proxyConnections()).slice(before, from).filter((r) => r.sni === BLOCKED);
    assert.deepEqual(earlier.filter((r) => r.verdict !== 'reset'), [], `attempts before the proxy served ${BLOCKED} were reset: ${JSON.stringify(earlier)}`);
    const seen = (await proxyConnections()).slice(from).filter((r) => r.sni === BLOCKED);
    assert.equal(seen.length, 1, `one connection for ${BLOCKED} reached the proxy: ${JSON.stringify(seen)}`);
    assert.equal(seen[0]!.verdict, 'accepted', JSON.stringify(seen[0]));
    assert.equal(seen[0]!.tls, 'terminated', JSON.stringify(seen[0]));
    assert.equal(seen[0]!.host, BLOCKED);
    assert.equal(retry.stdout.trim(), `envoy:${seen[0]!.port}`, "curl got the proxy listener's answer");
    const origin = await run('docker', ['logs', info.blockedOriginContainer]);
    assert.ok(!/"kind": ?"conn"/.test(origin.stdout), `the origin itself was not reached: ${origin.stdout}`);

    // Bypass for 15 s: the status bar counts down, then the item goes away.
    const bypassItem = page.locator('.part.statusbar .statusbar-item').filter({ hasText: new RegExp(`${info.agent}.*\\d{1,2}:\\d{2}`) });
    let startedAt = 0;
    await step(page, 'bypass-input', '.quick-input-widget', async () => {
      await runCommand(page, 'Clawker: Bypass Firewall for an Agent…');
      const agentChoice = page.locator('.quick-input-list .monaco-list-row', { hasText: info.agent });
      await visible(agentChoice, `'${info.agent}' among the agents to bypass`);
      await agentChoice.first().click();
      const input = page.locator('.quick-input-widget input');
      await visible(input, 'the duration input');
      await input.first().fill(`${BYPASS_SECONDS}s`);
    });
    const first = await step(page, 'bypass-countdown', '.part.statusbar', async () => {
      await page.keyboard.press('Enter');
      startedAt = Date.now();
      await visible(bypassItem, `a status bar item with '${info.agent}' and a mm:ss countdown`, 10_000);
      const text = (await bypassItem.first().innerText()).trim();
      const s = countdownSeconds(text);
      assert.ok(s !== undefined && s <= BYPASS_SECONDS && s >= BYPASS_SECONDS - 8, `countdown '${text}'`);
      const state = (await firewallStatus()).agents.find((a) => a.agent === info.agent)?.state;
      assert.equal(state, 'bypassed', 'the control plane has the agent bypassed');
      return { text, seconds: s };
    });
    await sleep(2_500);
    await step(page, 'bypass-countdown-later', '.part.statusbar', async () => {
      const text = (await bypassItem.first().innerText()).trim();
      const s = countdownSeconds(text);
      assert.ok(s !== undefined && s < first.seconds, `the countdown went down: '${first.text}' then '${text}'`);
    });
    await step(page, 'bypass-ended', '.part.statusbar', async () => {
      const left = BYPASS_SECONDS * 1000 + 10_000 - (Date.now() - startedAt);
      await hidden(bypassItem, 'the bypass status bar item', Math.max(left, 1_000));
      const state = (await firewallStatus()).agents.find((a) => a.agent === info.agent)?.state;
      assert.equal(state, 'enrolled', 'the agent is back under the firewall');
    });
  } finally {
    await driver.close();
  }
});
