// The editor where nothing is set up: Docker unreachable and a folder without `.clawker.yaml`.
// Started by test/editor/run.sh in a second code-server whose extension host has DOCKER_SOCKET
// pointing at nothing and its own empty data directory. The Agents view must say Docker is not
// reachable and offer the button that checks again; the button must run the check and report the
// error; the Blocked view offers to follow the events; the Rules view says only the built-in and
// runtime rules apply.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EditorDriver, eventually, notificationToast, required, showClawker, sideBarView, visible } from '../driver';

const WORKSPACE = required('CLAWKER_EDITOR_WORKSPACE');

test('no Docker, no .clawker.yaml: welcome views say so and their buttons act', { timeout: 180_000 }, async () => {
  const driver = new EditorDriver('cold');
  try {
    const page = await driver.launch();
    const step = driver.step.bind(driver);

    await step(page, 'workbench', 'body', async () => {
      await page.goto(`${driver.url}/?folder=${encodeURIComponent(WORKSPACE)}`);
      await visible(page.locator('.monaco-workbench .part.activitybar'), 'the workbench activity bar', 60_000);
    });

    // The container is opened from the activity bar: that alone activates the extension (no .clawker.yaml here).
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
      // Why (the socket it tried) and what to do: the CLI's own error and next step.
      assert.match(text, /nonexistent\.sock/, `the notification names the socket it tried: ${text}`);
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
