/**
 * The defences that survived a reviewer's hand-made mutants (issue 13), each weakened again here,
 * one at a time, in a scratch copy of the tree: the test written for it must now fail.
 *
 *   node --import tsx test/mutation/namedSurvivors.ts      (npm run test:mutation -- --named)
 *
 * Writes its section of test/mutation/REPORT.md and exits 1 when a mutant is not caught.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeReportSection } from './reportFile';
import { copyWorkingTree } from './scratchTree';

const CP = 'src/controlplane/controlPlane.ts';
const DEFENCES_TEST = 'test/unit/securityDefences.test.ts';
const CONTROL_PLANE_TEST = 'test/unit/securityControlPlane.test.ts';

interface NamedMutant {
  readonly defence: string;
  /** The test file that must fail (default: securityDefences). */
  readonly test?: string;
  /** Each edit replaces exactly one occurrence. */
  readonly edits: readonly { readonly file: string; readonly from: string; readonly to: string }[];
}

export const NAMED_MUTANTS: readonly NamedMutant[] = [
  {
    defence: 'deny wins a tie (policy.ts, feeds the Envoy and BPF renderers)',
    edits: [{ file: 'src/core/policy/policy.ts', from: "score > bestScore || (score === bestScore && rule.action === 'deny' && best?.action !== 'deny')", to: 'score > bestScore' }],
  },
  {
    defence: 'encoded backslash at the Envoy layer (%5c out of the refused pattern and escaped slashes kept)',
    edits: [
      { file: 'src/core/policy/requestPath.ts', from: '|%5[cC]|', to: '|' },
      { file: 'src/core/render/envoy/envoyConfig.ts', from: "path_with_escaped_slashes_action: 'REJECT_REQUEST'", to: "path_with_escaped_slashes_action: 'KEEP_UNCHANGED'" },
    ],
  },
  {
    defence: 'regex characters in a method token escaped in the :method matcher',
    edits: [{ file: 'src/core/render/envoy/routes.ts', from: "pr.methods.map(re2Literal).join('|')", to: "pr.methods.join('|')" }],
  },
  {
    defence: "a '~' path rule anchored with '^' but not '^/' refused",
    edits: [{ file: 'src/core/firewall/pathMatch.ts', from: "pattern.startsWith('^/')))", to: "pattern.startsWith('^')))" }],
  },
  ...['NET_RAW', 'NET_ADMIN', 'SYS_ADMIN', 'BPF', 'PERFMON', 'SYS_MODULE', 'SYS_RAWIO', 'DAC_READ_SEARCH', 'MAC_ADMIN', 'MAC_OVERRIDE', 'ALL'].map((cap) => ({
    defence: `refused capability ${cap}`,
    edits: [{ file: 'src/core/agents/agentContainerSpec.ts', from: `\n  ${cap}: `, to: `\n  ALLOWED_${cap}: ` }],
  })),
  {
    defence: "agentd's session key owned by another user",
    edits: [{ file: 'src/agentd/session.ts', from: 'if (uid !== undefined && keyStat.uid !== uid)', to: 'if (false)' }],
  },
  // The control plane's enrollment gate and `down`, which no test could mutate before (its image
  // had one fixed tag); test/unit/securityControlPlane.test.ts drives them with recorders.
  {
    defence: "the agents' cgroup guarded without lockdown",
    test: CONTROL_PLANE_TEST,
    edits: [{ file: CP, from: "{ cgroupDir: this.guardDir }, this.containerConfig(['lockdown'])", to: '{ cgroupDir: this.guardDir }, this.containerConfig([])' }],
  },
  {
    defence: "an agent's command started before its cgroup is enrolled",
    test: CONTROL_PLANE_TEST,
    edits: [
      {
        file: CP,
        from: '    const disabled = isDisabled(this.state, who);\n',
        to: "    if (info.Config.Labels?.[LABEL_SUPERVISOR] === SUPERVISOR_AGENTD) void this.startCommand({ agent, name, id: info.Id, cgroupId: 0, cgroupDir, guarded, ip: '', lockedDown: false });\n    const disabled = isDisabled(this.state, who);\n",
      },
      { file: CP, from: '    if (info.Config.Labels?.[LABEL_SUPERVISOR] === SUPERVISOR_AGENTD) void this.startCommand(record);\n', to: '' },
    ],
  },
  {
    defence: 'an agent outside the agents cgroup enrolled without attaching the datapath to it',
    test: CONTROL_PLANE_TEST,
    edits: [{ file: CP, from: '      await this.bpf.attach(cgroupDir);\n', to: '' }],
  },
  {
    defence: '`down` flushes before it locks the agents down',
    test: CONTROL_PLANE_TEST,
    edits: [
      { file: CP, from: '      const lockedDown: string[] = [];\n', to: '      const lockedDown: string[] = [];\n      await this.bpf.flush();\n' },
      { file: CP, from: "      await this.bpf.flush();\n      for (const name of Object.keys(this.state.bypass)) this.endBypass(name, 'firewall down');", to: "      for (const name of Object.keys(this.state.bypass)) this.endBypass(name, 'firewall down');" },
    ],
  },
  {
    defence: '`down` does not lock the agents down',
    test: CONTROL_PLANE_TEST,
    edits: [{ file: CP, from: "        await this.bpf.enroll({ cgroupId: record.cgroupId }, this.containerConfig(['lockdown']));\n        record.lockedDown = true;\n", to: '        record.lockedDown = true;\n' }],
  },
];

/** A scratch copy of the working tree: mutants are never written into the tree people work in. */
function scratchTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-named-mutants-'));
  copyWorkingTree(dir);
  return dir;
}

function runTest(dir: string, test: string): { failed: string[]; passed: number } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', test], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  const out = `${run.stdout}`;
  // The failing tests themselves (indented: inside their describe), not the describe blocks.
  const failed = [...out.matchAll(/^ +not ok \d+ - (.*)$/gm)].map((m) => m[1]!);
  const passed = Number(/^# pass (\d+)$/m.exec(out)?.[1] ?? 0);
  return { failed: run.status === 0 ? [] : failed.length ? failed : [`exit ${run.status}`], passed };
}

function main(): void {
  const dir = scratchTree();
  const rows: string[] = [];
  let survivors = 0;
  try {
    for (const test of new Set(NAMED_MUTANTS.map((m) => m.test ?? DEFENCES_TEST))) {
      const baseline = runTest(dir, test);
      if (baseline.failed.length) throw new Error(`${test} fails without any mutant: ${baseline.failed.join('; ')}`);
    }
    for (const mutant of NAMED_MUTANTS) {
      const originals = mutant.edits.map((e) => ({ file: join(dir, e.file), text: readFileSync(join(dir, e.file), 'utf8') }));
      for (const edit of mutant.edits) {
        const path = join(dir, edit.file);
        const text = readFileSync(path, 'utf8');
        const count = text.split(edit.from).length - 1;
        if (count !== 1) throw new Error(`${edit.file}: expected exactly one '${edit.from}', found ${count} (update test/mutation/namedSurvivors.ts)`);
        writeFileSync(path, text.replace(edit.from, edit.to));
      }
      const test = mutant.test ?? DEFENCES_TEST;
      const { failed } = runTest(dir, test);
      for (const o of originals) writeFileSync(o.file, o.text);
      if (failed.length === 0) survivors++;
      const caughtBy = failed.length ? failed.slice(0, 2).join('; ') + (failed.length > 2 ? ` (+${failed.length - 2} more)` : '') : '**SURVIVED**';
      console.log(`${failed.length ? 'caught  ' : 'SURVIVED'} ${mutant.defence}${failed.length ? ` — ${caughtBy}` : ''}`);
      rows.push(`| ${mutant.defence} | ${[...new Set(mutant.edits.map((e) => `\`${e.file}\``))].join(', ')} | \`${test}\`: ${caughtBy.replace(/\|/g, '\\|')} |`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  writeReportSection(
    'named',
    [
      '## The named survivors (issue 13), weakened again',
      '',
      `\`node --import tsx test/mutation/namedSurvivors.ts\`, ${new Date().toISOString().slice(0, 10)}: each defence weakened alone in a scratch copy of the tree; the test file named must fail.`,
      '',
      '| defence weakened | where | failing tests |',
      '|---|---|---|',
      ...rows,
    ].join('\n'),
  );
  console.log(`${NAMED_MUTANTS.length - survivors} of ${NAMED_MUTANTS.length} named mutants caught`);
  if (survivors) process.exit(1);
}

main();
