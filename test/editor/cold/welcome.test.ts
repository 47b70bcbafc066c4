// The editor where nothing is set up: an untrusted folder without `.clawker.yaml`, Docker unreachable.
// Started by test/editor/run.sh in a second code-server with workspace trust on, whose extension
// host has DOCKER_HOST pointing at a socket that does not exist and its own empty data directory.
// In Restricted Mode the Agents view says so and nothing that starts or changes anything is in the
// palette; its button leads to trusting the folder. Trusted, the Agents view says Docker is not
// reachable and its button runs the check and reports the error; the Blocked view offers to follow
// the events; the Rules view says only the built-in and runtime rules apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EditorDriver, eventually, hidden, modalDialog, notificationToast, required, showClawker, sideBarView, visible } from '../driver';

const WORKSPACE = required('CLAWKER_EDITOR_WORKSPACE');

test('no Docker, no .clawker.yaml: welcome views say so and their buttons act', { timeout: 180_000 }, async () => {
  const driver = new EditorDriver('cold');
  try {
    const page = await driver.launch();
    const step = driver.step.bind(driver);

    await step(page, 'trust-prompt', 'body', async () => {
      await page.goto(`${driver.url}/?folder=${encodeURIComponent(WORKSPACE)}`);
      await visible(page.locator('.monaco-workbench .part.activitybar'), 'the workbench activity bar', 60_000);
      const prompt = modalDialog(page, /trust the authors/i);
      await visible(prompt, 'the workspace trust prompt');
      await prompt.getByRole('button', { name: /No, I don.t trust/i }).click();
      await hidden(prompt, 'the workspace trust prompt');
    });

    // The container is opened from the activity bar: that alone activates the extension (no .clawker.yaml here).
    const restricted = await step(page, 'restricted-welcome', '.part.sidebar', async () => {
      await showClawker(page);
      const view = await sideBarView(page, 'Agents');
      await visible(view.locator('.welcome-view-content', { hasText: 'This folder is in Restricted Mode' }), "the Agents view's Restricted Mode welcome", 60_000);
      return view;
    });

    await step(page, 'restricted-palette', '.quick-input-widget', async () => {
      // Each title typed in full, so a virtualized list cannot hide a match; a read-only command is the control.
      const offered = async (title: string): Promise<boolean> => {
        await page.keyboard.press('F1');
        const input = page.locator('.quick-input-widget input');
        await input.fill(`>${title}`);
        const rows = page.locator('.quick-input-widget .monaco-list-row');
        await page.waitForTimeout(400);
        const titles = (await rows.allInnerTexts()).map((t) => t.split('\n')[0]!.trim());
        await page.keyboard.press('Escape');
        return titles.some((t) => t === title);
      };
      assert.equal(await offered('Clawker: Show Agent Logs'), true, "the read-only 'Clawker: Show Agent Logs' is offered");
      for (const verb of ['Clawker: Run Agent…', 'Clawker: Start Firewall Stack', 'Clawker: Bypass Firewall for an Agent…', 'Clawker: Allow a Destination (Runtime Rule)…']) {
        assert.equal(await offered(verb), false, `'${verb}' is not offered in Restricted Mode`);
      }
    });

    await step(page, 'trust-folder', '.monaco-workbench', async () => {
      await restricted.getByRole('button', { name: 'Manage Workspace Trust' }).click();
      const editor = page.locator('.part.editor');
      const trust = editor.getByRole('button', { name: /^Trust( Folder)?$/ });
      await visible(trust, "the Workspace Trust editor's Trust button");
      await trust.first().click();
    });

    const agents = await step(page, 'agents-welcome', '.part.sidebar', async () => {
      await showClawker(page);
      const view = await sideBarView(page, 'Agents');
      await visible(view.locator('.welcome-view-content', { hasText: 'Docker is not reachable, so agents cannot run.' }), "the Agents view's 'Docker is not reachable' welcome", 60_000);
      return view;
    });

    await step(page, 'check-docker-again', '.monaco-workbench', async () => {
      await agents.getByRole('button', { name: 'Check Docker Again' }).click();
      const toast = notificationToast(page, /Docker is not reachable:/);
      await visible(toast, "the error notification of 'Check Docker Again'");
      const text = (await toast.first().innerText()).replace(/\s+/g, ' ');
      // Why (the engine it tried, and where that came from) and what to do: the CLI's own error and next step.
      assert.match(text, /unix:\/\/\S*nonexistent\.sock \(DOCKER_HOST\)/, `the notification names the engine it tried: ${text}`);
      assert.match(text, /next: start the Docker engine/, `the notification says what to do: ${text}`);
    });

    await step(page, 'blocked-welcome', '.part.sidebar', async () => {
      const blocked = await sideBarView(page, 'Blocked');
      await visible(blocked.locator('.welcome-view-content', { hasText: "No blocked requests from this workspace's agents." }), "the Blocked view's welcome");
      await visible(blocked.getByRole('button', { name: 'Follow Egress Events' }), "the Blocked view's 'Follow Egress Events' button");
    });

    await step(page, 'rules-message', '.part.sidebar', async () => {
      const rules = await sideBarView(page, 'Firewall Rules');
      await eventually('the Rules view message about the missing .clawker.yaml', async () =>
        ((await rules.innerText().catch(() => '')).includes('No .clawker.yaml in this workspace') ? true : undefined),
      );
      assert.ok((await rules.innerText()).includes('Built-in'), 'the built-in rules are listed');
    });
  } finally {
    await driver.close();
  }
});
