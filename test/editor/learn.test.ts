// Learn mode on the real stack (test/editor/stack.ts; environment as flow.test.ts): the palette
// starts learning the egress of `dev`; the status bar shows it recording; the agent asks for two
// names no rule lists (learn-a.test, learn-b.test) and CoreDNS refuses both; stopping lists both in
// a multi-select, the user unticks learn-b.test; the proposal opens as a diff; Apply in the
// notification writes exactly one add_domains line (the whole file is compared) and saves; the save
// refreshes the firewall, after which the agent's retry of learn-a.test reaches the proxy while
// learn-b.test still does not resolve. Screenshots: test-results/editor/learn-NN-<step>.png.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type EnvoyRecord, envoyRecords } from '../e2e/internet';
import { run } from '../e2e/testbed';
import {
  describeRows,
  EditorDriver,
  eventually,
  findTreeRow,
  hidden,
  notificationToast,
  openWorkbench,
  quickPickItems,
  quickPickRow,
  required,
  rowText,
  runCommand,
  showClawker,
  sideBarView,
  toastButton,
  treeRows,
  visible,
} from './driver';
import type { StackInfo } from './stack';

const info = JSON.parse(readFileSync(required('CLAWKER_EDITOR_STACK_INFO'), 'utf8')) as StackInfo;
const CONFIG_FILE = '.clawker.yaml';
const CONFIG_PATH = join(info.workspace, CONFIG_FILE);
const APPROVED = 'learn-a.test';
const REFUSED = 'learn-b.test';
/** How long the extension may take to notice a change of the stack (events, polling). */
const STACK_TIMEOUT_MS = 30_000;

/**
 * The project file this test starts from: the fixture as the repository has it. The flow test,
 * which runs before, leaves its own addition in the workspace's copy; this test puts the fixture
 * back so that it asserts the same thing whether it runs alone or after the flow.
 */
const START = readFileSync(join(__dirname, 'fixtures', 'stack-workspace', CONFIG_FILE), 'utf8');

/** The start plus the one approved name under add_domains; the unticked name is not there. */
const EXPECTED_AFTER_APPLY = `# Editor end-to-end fixture: the project whose agent \`dev\` the flow test drives.
# The quick fix must keep these comments and this layout exactly as they are.
name: editor-flow

security:
  # The agent needs no git credentials: no host proxy.
  enable_host_proxy: false
  firewall:
    # Reachable over HTTPS from the start.
    add_domains:
      - allowed.test   # the test internet's origin
      - learn-a.test

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

async function assertUnresolved(name: string): Promise<void> {
  const r = await agentCurl(`https://${name}/`);
  console.log(`  agent: curl https://${name}/ -> exit ${r.code}: ${r.stderr.trim()}`);
  assert.equal(r.code, 6, `curl exits 6 (could not resolve host): ${JSON.stringify(r)}`);
  assert.equal(r.stderr.trim(), `curl: (6) Could not resolve host: ${name}`);
}

const proxyConnections = async (): Promise<EnvoyRecord[]> => (await envoyRecords(info.envoyContainer)).filter((r) => r.kind === 'conn');

test('learn mode in the editor: record two refused names, approve one, the diff, Apply, the retry through the firewall', { timeout: 300_000 }, async () => {
  assert.ok(START.includes('- allowed.test') && !START.includes('learn-'), `the fixture lists allowed.test and no learn name:\n${START}`);
  // The fixture is the start; only the user's Apply must add to it.
  writeFileSync(CONFIG_PATH, START);
  const driver = new EditorDriver('learn');
  try {
    const page = await driver.launch();
    const step = driver.step.bind(driver);
    const learningItem = page.locator('.part.statusbar .statusbar-item').filter({ hasText: `Learning: ${info.agent}` });

    await step(page, 'workbench', 'body', () => openWorkbench(page, driver.url, info.workspace, CONFIG_FILE));

    // The extension knows the agent (and the firewall enrolled it) before learning starts.
    await step(page, 'agents-view', '.part.sidebar', async () => {
      await showClawker(page);
      const agents = await sideBarView(page, 'Agents');
      const row = treeRows(agents, info.agent);
      await eventually(`agent '${info.agent}' running and enrolled in the Agents view`, async () => {
        if (!(await row.first().isVisible().catch(() => false))) return undefined;
        const { description } = await rowText(row.first());
        return description === `${info.project} · running · enrolled` ? description : undefined;
      }, STACK_TIMEOUT_MS, () => describeRows(agents));
    });

    // Start learning from the palette: the workspace has one agent, so it is not asked for (if it is, dev is picked).
    await step(page, 'learning-started', '.part.statusbar', async () => {
      await runCommand(page, 'Clawker: Start Learning Egress…');
      const agentChoice = quickPickRow(page, info.agent);
      await Promise.race([visible(learningItem, 'the learning status bar item', 10_000), visible(agentChoice, 'the agent question', 10_000)]).catch(() => undefined);
      if (await agentChoice.first().isVisible().catch(() => false)) await agentChoice.first().click();
      await visible(learningItem, `a status bar item 'Learning: ${info.agent}'`);
      assert.equal((await learningItem.first().innerText()).trim(), `Learning: ${info.agent} (0 blocked)`);
      // start() warns right after showing the item when the event feed is down (even a toast still fading in counts).
      const notConnected = page.locator('.notifications-toasts .notification-toast', { hasText: 'event stream is not connected' });
      await page.waitForTimeout(500);
      assert.equal(await notConnected.count(), 0, "no warning that the firewall's event stream is not connected");
    });

    // The agent asks for two names that no rule lists: CoreDNS refuses both.
    const connectionsBefore = (await proxyConnections()).length;
    await assertUnresolved(APPROVED);
    await assertUnresolved(REFUSED);
    assert.deepEqual(
      (await proxyConnections()).slice(connectionsBefore).filter((r) => r.sni === APPROVED || r.sni === REFUSED),
      [],
      'nothing for the learn names reached the proxy',
    );

    await step(page, 'learning-recorded', '.part.statusbar', async () => {
      await eventually(`the status bar says 'Learning: ${info.agent} (2 blocked)'`, async () =>
        ((await learningItem.first().innerText().catch(() => '')).trim() === `Learning: ${info.agent} (2 blocked)` ? true : undefined),
        STACK_TIMEOUT_MS,
        async () => `it says '${(await learningItem.first().innerText().catch(() => '(no item)')).trim()}'`,
      );
    });

    // What the Blocked view counted for each name (every refusal of it happened while learning).
    const blockedCounts = await step(page, 'blocked-view', '.part.sidebar', async () => {
      const view = await sideBarView(page, 'Blocked');
      const agentRow = treeRows(view, info.agent);
      await visible(agentRow, `agent '${info.agent}' in the Blocked view`, STACK_TIMEOUT_MS);
      if ((await agentRow.first().getAttribute('aria-expanded')) === 'false') await agentRow.first().click();
      const counts: Record<string, number> = {};
      for (const name of [APPROVED, REFUSED]) {
        counts[name] = await eventually(`'${name}' with '×N' under '${info.agent}' in the Blocked view`, async () => {
          const row = treeRows(view, name);
          if (!(await row.first().isVisible().catch(() => false))) return undefined;
          const m = /^×(\d+)/.exec((await rowText(row.first())).description);
          return m ? Number(m[1]) : undefined;
        }, STACK_TIMEOUT_MS, () => describeRows(view));
      }
      return counts;
    });

    // Stop: a multi-select lists both names, both ticked, with the Blocked view's counts.
    await step(page, 'stop-picks', '.quick-input-widget', async () => {
      await runCommand(page, 'Clawker: Stop Learning and Propose Rules');
      await visible(page.locator('.quick-input-widget .quick-input-title', { hasText: `Blocked for ${info.agent} while learning` }), 'the quick pick of what was blocked');
      await visible(quickPickRow(page, `${REFUSED} — DNS refused ×${blockedCounts[REFUSED]}`), `'${REFUSED}' in the quick pick`);
      assert.deepEqual(await quickPickItems(page), [
        { label: `${APPROVED} — DNS refused ×${blockedCounts[APPROVED]}`, description: '', detail: `Adds ${APPROVED} to add_domains (https, every path).`, checked: true },
        { label: `${REFUSED} — DNS refused ×${blockedCounts[REFUSED]}`, description: '', detail: `Adds ${REFUSED} to add_domains (https, every path).`, checked: true },
      ]);
      // Still recording while the list is open (Escape goes back to learning); accepting stops it.
      await visible(learningItem, 'the learning status bar item, while the list is open');
    });

    // Untick learn-b.test, accept: the proposal opens as a diff of the project file.
    const diffTitle = `${CONFIG_FILE} ↔ rules proposed for ${info.agent}`;
    const applyPrompt = `Apply 1 rule to ${CONFIG_FILE}?`;
    await step(page, 'proposal-diff', '.part.editor', async () => {
      await quickPickRow(page, `${REFUSED} — DNS refused ×${blockedCounts[REFUSED]}`).first().locator('.quick-input-list-label').click();
      assert.deepEqual(
        (await quickPickItems(page)).map((i) => [i.label.replace(/ —.*/, ''), i.checked]),
        [
          [APPROVED, true],
          [REFUSED, false],
        ],
        `only ${APPROVED} stays ticked`,
      );
      await page.keyboard.press('Enter');
      await hidden(learningItem, 'the learning status bar item, once the list is accepted');
      await visible(page.locator('.part.editor .tab.active', { hasText: diffTitle }), `the editor tab '${diffTitle}'`);
      const diff = page.locator('.part.editor .monaco-diff-editor');
      await visible(diff, 'a diff editor');
      await visible(diff.locator('.editor.modified .view-lines', { hasText: `- ${APPROVED}` }), `'- ${APPROVED}' on the proposal's side`);
      assert.ok(!(await diff.first().innerText()).includes(REFUSED), `the diff does not mention ${REFUSED}`);
      await visible(toastButton(page, applyPrompt, 'Apply'), `the notification '${applyPrompt}' with Apply`);
      assert.equal(readFileSync(CONFIG_PATH, 'utf8'), START, 'nothing is written before Apply');
    });

    // Apply: one line added under add_domains, saved (the save runs `clawker firewall refresh`); the diff closes.
    await step(page, 'applied', '.part.editor', async () => {
      await toastButton(page, applyPrompt, 'Apply').first().click();
      await eventually('the saved file equals the fixture plus the approved name under add_domains', async () =>
        readFileSync(CONFIG_PATH, 'utf8') === EXPECTED_AFTER_APPLY ? true : undefined,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; on disk:\n${readFileSync(CONFIG_PATH, 'utf8')}`);
      });
      await visible(notificationToast(page, `Added 1 rule to ${CONFIG_FILE}.`), `the notification 'Added 1 rule to ${CONFIG_FILE}.'`);
      await hidden(page.locator('.part.editor .tab', { hasText: diffTitle }), 'the diff editor');
    });
    assert.equal(readFileSync(CONFIG_PATH, 'utf8'), EXPECTED_AFTER_APPLY);

    // After the refresh: the approved name resolves and its connection is redirected to the proxy's
    // listener (TLS with the firewall CA); the unticked one is still refused by DNS.
    const before = (await proxyConnections()).length;
    const retry = await eventually(`the retry of ${APPROVED} succeeds`, async () => {
      const r = await agentCurl(`https://${APPROVED}/`);
      return r.code === 0 ? r : undefined;
    }, STACK_TIMEOUT_MS, async () => JSON.stringify(await agentCurl(`https://${APPROVED}/`)));
    console.log(`  agent: curl https://${APPROVED}/ -> exit 0: ${retry.stdout.trim()}`);
    const seen = (await proxyConnections()).slice(before).filter((r) => r.sni === APPROVED);
    assert.equal(seen.length, 1, `one connection for ${APPROVED} reached the proxy: ${JSON.stringify(seen)}`);
    assert.equal(seen[0]!.verdict, 'accepted', JSON.stringify(seen[0]));
    assert.equal(seen[0]!.tls, 'terminated', JSON.stringify(seen[0]));
    assert.equal(seen[0]!.host, APPROVED);
    assert.equal(retry.stdout.trim(), `envoy:${seen[0]!.port}`, "curl got the proxy listener's answer");
    await assertUnresolved(REFUSED);
    assert.ok(!(await proxyConnections()).slice(before).some((r) => r.sni === REFUSED), `nothing for ${REFUSED} reached the proxy`);

    // The Rules view lists the approved name as a project rule, and not the other one.
    await step(page, 'rules-view', '.part.sidebar', async () => {
      const view = await sideBarView(page, 'Firewall Rules');
      const description = await eventually(`'${APPROVED}' in the Firewall Rules view`, async () => {
        const row = await findTreeRow(view, APPROVED);
        return row ? (await rowText(row)).description : undefined;
      }, STACK_TIMEOUT_MS, () => describeRows(view));
      assert.equal(description, 'https:443 · allow · project');
      assert.equal(await findTreeRow(view, REFUSED), undefined, `no rule for ${REFUSED}: ${await describeRows(view)}`);
    });
  } finally {
    await driver.close();
  }
});
