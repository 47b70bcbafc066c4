// The palette's agent verbs on the real stack (test/editor/stack.ts; environment as flow.test.ts):
// "Create Agent…" makes a second agent of the workspace (under a progress notification, then the
// Agents view lists it as created); "Stop Agent" stops dev and "Start Agent" starts it again (the view
// follows; after the start the firewall has it enrolled and its requests go through the proxy
// again); "Remove Agent…" asks in a modal dialog and the second agent leaves the view and Docker.
// It stops dev, so it runs after the other tests (run.sh runs the files in name order), and it
// leaves dev running and enrolled. Screenshots: test-results/editor/verbs-NN-<step>.png.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { type EnvoyRecord, envoyRecords } from '../e2e/internet';
import { clawker, run } from '../e2e/testbed';
import {
  describeRows,
  EditorDriver,
  eventually,
  hidden,
  modalDialog,
  notificationToast,
  openWorkbench,
  quickPickItems,
  quickPickRow,
  recordedNotifications,
  recordNotifications,
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
const SECOND = 'second';
/** `<stack>.<project>.<agent>`: the second agent's container, named like dev's. */
const SECOND_CONTAINER = info.agentContainer.replace(/\.[^.]+$/, `.${SECOND}`);
/** The agent verbs may build or start containers: longer than a view refresh. */
const VERB_TIMEOUT_MS = 60_000;

/** The Agents view's description of an agent: `project · state[ · firewall]` (see agentsView.ts). */
const described = (state: string, firewall?: string): string => [info.project, state, ...(firewall ? [firewall] : [])].join(' · ');

async function containerState(name: string): Promise<string | undefined> {
  const r = await run('docker', ['inspect', '--format', '{{.State.Status}}', name]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

async function firewallStatus(): Promise<Status> {
  const r = await clawker(['firewall', 'status', '--json'], { env: { ...process.env, ...info.env }, cwd: info.workspace });
  return JSON.parse(r.stdout) as Status;
}

/** A notification whose message starts with `title` ran a progress bar since recordNotifications. */
async function assertProgressShown(page: Page, title: string): Promise<void> {
  const seen = await recordedNotifications(page);
  assert.ok(
    seen.some((n) => n.progress && n.message.startsWith(title)),
    `a progress notification '${title}' was shown; the notifications seen: ${JSON.stringify(seen)}`,
  );
}

const proxyConnections = async (): Promise<EnvoyRecord[]> => (await envoyRecords(info.envoyContainer)).filter((r) => r.kind === 'conn');

test('agent verbs from the palette: create a second agent, stop and start dev, remove the second agent', { timeout: 300_000 }, async () => {
  assert.equal(await containerState(SECOND_CONTAINER), undefined, `no container ${SECOND_CONTAINER} before the test`);
  const driver = new EditorDriver('verbs');
  try {
    const page = await driver.launch();
    const step = driver.step.bind(driver);
    let agents = page.locator('.part.sidebar');

    /** Waits until the Agents view shows `agent` with `description`. */
    const agentShown = async (agent: string, description: string, timeout = VERB_TIMEOUT_MS): Promise<void> => {
      const row = treeRows(agents, agent);
      await eventually(`'${agent}' as '${description}' in the Agents view`, async () => {
        if (!(await row.first().isVisible().catch(() => false))) return undefined;
        return (await rowText(row.first())).description === description ? true : undefined;
      }, timeout, () => describeRows(agents));
    };

    await step(page, 'workbench', 'body', () => openWorkbench(page, driver.url, info.workspace, CONFIG_FILE));

    await step(page, 'agents-view', '.part.sidebar', async () => {
      await showClawker(page);
      agents = await sideBarView(page, 'Agents');
      await agentShown(info.agent, described('running', 'enrolled'));
      assert.equal(await treeRows(agents, SECOND).count(), 0, `no '${SECOND}' yet: ${await describeRows(agents)}`);
    });

    // Create Agent…: the name asked for, the work under a progress notification, then the view lists it.
    await step(page, 'create-name', '.quick-input-widget', async () => {
      await runCommand(page, 'Clawker: Create Agent…');
      await visible(page.locator('.quick-input-widget .quick-input-title', { hasText: 'Create an agent' }), "the input box 'Create an agent'");
      const input = page.locator('.quick-input-widget input');
      assert.equal(await input.first().inputValue(), '', 'no name proposed: the default name (dev) is taken');
      await input.first().fill(SECOND);
    });
    await step(page, 'created', '.part.sidebar', async () => {
      await recordNotifications(page);
      await page.keyboard.press('Enter');
      const folder = basename(info.workspace);
      await visible(notificationToast(page, `Agent ${SECOND} created in ${folder} (not started).`), 'the notification that the agent was created', VERB_TIMEOUT_MS);
      await assertProgressShown(page, `Creating agent ${SECOND}`);
      await agentShown(SECOND, described('created'));
      await agentShown(info.agent, described('running', 'enrolled'));
      assert.equal(await containerState(SECOND_CONTAINER), 'created');
    });

    // Stop Agent: only running agents are offered; dev stops.
    await step(page, 'stop-pick', '.quick-input-widget', async () => {
      await runCommand(page, 'Clawker: Stop Agent');
      await visible(quickPickRow(page, info.agent), `'${info.agent}' among the agents to stop`);
      assert.deepEqual(
        (await quickPickItems(page)).map((i) => [i.label, i.description]),
        [[info.agent, `${info.project} (this workspace) · running`]],
        'the running agents are offered',
      );
    });
    await step(page, 'stopped', '.part.sidebar', async () => {
      await quickPickRow(page, info.agent).first().click();
      await visible(notificationToast(page, `stopped ${info.agentContainer}`), "the CLI's 'stopped' summary", VERB_TIMEOUT_MS);
      await agentShown(info.agent, described('exited'));
      assert.equal(await containerState(info.agentContainer), 'exited');
    });

    // Start Agent: the stopped agents are offered (dev and the created one); dev starts under a progress notification.
    await step(page, 'start-pick', '.quick-input-widget', async () => {
      await runCommand(page, 'Clawker: Start Agent');
      await visible(quickPickRow(page, SECOND), `'${SECOND}' among the agents to start`);
      assert.deepEqual(
        (await quickPickItems(page)).map((i) => [i.label, i.description]).sort(),
        [
          [info.agent, `${info.project} (this workspace) · exited`],
          [SECOND, `${info.project} (this workspace) · created`],
        ],
        'the stopped agents are offered',
      );
    });
    await step(page, 'started', '.part.sidebar', async () => {
      await recordNotifications(page);
      await quickPickRow(page, info.agent).first().click();
      await visible(notificationToast(page, `started ${info.agentContainer}`), "the CLI's 'started' summary", VERB_TIMEOUT_MS);
      await agentShown(info.agent, described('running', 'enrolled'));
      await assertProgressShown(page, `Starting ${info.agent}`);
      assert.equal(await containerState(info.agentContainer), 'running');
      const state = (await firewallStatus()).agents.find((a) => a.agent === info.agent)?.state;
      assert.equal(state, 'enrolled', 'the control plane has the restarted agent enrolled');
    });

    // The restarted agent is behind the firewall again: allowed.test goes through the proxy's listener.
    const before = (await proxyConnections()).length;
    const r = await eventually('the restarted agent reaches allowed.test through the proxy', async () => {
      const c = await run('docker', ['exec', info.agentContainer, 'curl', '-sS', '--max-time', '10', 'https://allowed.test/'], 30_000);
      return c.code === 0 ? c : undefined;
    }, VERB_TIMEOUT_MS);
    const seen = (await proxyConnections()).slice(before).filter((c) => c.sni === 'allowed.test');
    assert.equal(seen.length, 1, `one connection for allowed.test reached the proxy: ${JSON.stringify(seen)}`);
    assert.equal(r.stdout.trim(), `envoy:${seen[0]!.port}`, "curl got the proxy listener's answer");

    // Remove Agent…: a modal confirmation, then the agent leaves the view and Docker.
    const question = `Remove agent ${SECOND} of ${info.project}?`;
    await step(page, 'remove-confirm', '.monaco-dialog-box', async () => {
      await runCommand(page, 'Clawker: Remove Agent…');
      await visible(quickPickRow(page, SECOND), `'${SECOND}' among the agents to remove`);
      await quickPickRow(page, SECOND).first().click();
      const dialog = modalDialog(page, question);
      await visible(dialog, `the modal dialog '${question}'`);
      assert.equal(
        ((await dialog.first().locator('.dialog-message-detail').textContent()) ?? '').trim(),
        `Its container is deleted; the workspace folder ${info.workspace} is not touched.`,
      );
    });
    await step(page, 'removed', '.part.sidebar', async () => {
      await modalDialog(page, question).first().locator('.dialog-buttons .monaco-button', { hasText: /^\s*Remove\s*$/ }).click();
      await hidden(modalDialog(page, question), 'the dialog');
      await visible(notificationToast(page, `removed ${SECOND_CONTAINER}`), "the CLI's 'removed' summary", VERB_TIMEOUT_MS);
      await eventually(`'${SECOND}' gone from the Agents view`, async () => ((await treeRows(agents, SECOND).count()) === 0 ? true : undefined), VERB_TIMEOUT_MS, () =>
        describeRows(agents),
      );
      await agentShown(info.agent, described('running', 'enrolled'));
      assert.equal(await containerState(SECOND_CONTAINER), undefined, `container ${SECOND_CONTAINER} removed`);
    });
  } finally {
    await driver.close();
  }
});
