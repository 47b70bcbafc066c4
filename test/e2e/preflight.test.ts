/**
 * Preflight: every component the end-to-end suites need is live. A missing one FAILS here, named;
 * nothing is skipped. `bash test/testbed/provision.sh` installs and starts them all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ALL_COMPONENTS, CHECKS } from './testbed';

describe('test bed preflight', () => {
  for (const component of ALL_COMPONENTS) {
    test(`${component} is live`, async () => {
      const problem = await CHECKS[component]();
      assert.equal(problem, undefined, `test bed component missing: ${component}: ${problem}; run bash test/testbed/provision.sh`);
    });
  }
});
