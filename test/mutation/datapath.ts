/**
 * Datapath mutation run: each patch in test/mutation/datapath/ weakens one defence (the eBPF
 * programs, bpfman's map sync, dnsbpf, dnsguard, the control plane's lockdowns); the tests that
 * test/mutation/datapath/manifest.json lists for it must fail.
 *
 *   node --import tsx test/mutation/datapath.ts [--only name[,name...]] [--keep]
 *
 * The working tree (tracked and untracked files, as they are now; node_modules linked) is copied
 * to a scratch directory under $TMPDIR; this tree is never modified. There, the listed tests first
 * run unmutated and must pass (else the run means nothing); then for each patch alone: `git apply`,
 * a build of what it touches (make -C bpf bpfman; go vet of the Go package; the stack images are
 * built by the suites themselves, under clawker-*:mutant-<name> for a patch that changes an image),
 * its tests, `git apply -R`. A mutant is caught when a test fails; the report names which. The run
 * exits 1 if any mutant survived or anything could not be run, and writes its section of
 * test/mutation/REPORT.md (between <!-- datapath:start --> and <!-- datapath:end -->).
 *
 * Needs the e2e test bed (test/testbed/provision.sh): Docker, the cgroup v2 mount, bpffs, root.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPORT_FILE, writeReportSection } from './reportFile';
import { copyWorkingTree, ROOT } from './scratchTree';

const DIR = join(__dirname, 'datapath');
const COMMAND_TIMEOUT_MS = 20 * 60_000;
const BASE_TAG = 'mutation-base';

interface NodeTest { node: string; pattern?: string }
interface GoTest { go: string; pkg: string; run?: string }
type TestSpec = NodeTest | GoTest;
interface Mutant { patch: string; defence: string; images?: boolean; tests: TestSpec[] }

interface Outcome {
  mutant: Mutant;
  result: 'caught' | 'SURVIVED' | 'ERROR';
  caughtBy: string[];
  detail: string;
  seconds: number;
}

const nameOf = (m: Mutant) => m.patch.replace(/\.patch$/, '');
const describeTest = (t: TestSpec) => ('node' in t ? `${t.node}${t.pattern ? ` › "${t.pattern}"` : ''}` : `go test ${t.pkg}${t.run ? ` -run '${t.run}'` : ''} (${t.go})`);

function log(line: string): void {
  process.stderr.write(`[datapath-mutation] ${line}\n`);
}

interface Run { code: number; output: string; timedOut: boolean }

function run(file: string, args: readonly string[], o: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
    let output = '';
    let timedOut = false;
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    if (o.input !== undefined) child.stdin!.end(o.input);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGTERM'); // the process group this spawn made
      } catch {
        /* gone */
      }
    }, o.timeoutMs ?? COMMAND_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output, timedOut });
    });
  });
}

async function runOk(file: string, args: readonly string[], o: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<string> {
  const r = await run(file, args, o);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}:\n${tail(r.output, 30)}`);
  return r.output;
}

const tail = (text: string, lines: number) => text.trim().split('\n').slice(-lines).join('\n');

function imageEnv(tags: { coredns: string; controlplane: string }): NodeJS.ProcessEnv {
  return { ...process.env, CLAWKER_COREDNS_IMAGE: tags.coredns, CLAWKER_CONTROLPLANE_IMAGE: tags.controlplane };
}

/** The tags a mutant's suites build and run: mutant-specific for each image the patch changes. */
function tagsFor(m: Mutant | undefined, touched: Set<string>): { coredns: string; controlplane: string } {
  const tag = m ? `mutant-${nameOf(m)}` : BASE_TAG;
  return {
    coredns: `clawker-coredns:${m && touched.has('coredns') ? tag : BASE_TAG}`,
    controlplane: `clawker-controlplane:${m && touched.has('controlplane') ? tag : BASE_TAG}`,
  };
}

/** What a patch touches, from the paths in it: bpf, bpfman, coredns (Go), controlplane (image sources). */
function touchedBy(patchText: string): Set<string> {
  const touched = new Set<string>();
  for (const [, path] of patchText.matchAll(/^\+\+\+ b\/(\S+)/gm)) {
    if (path!.startsWith('bpf/')) touched.add('bpf').add('controlplane');
    if (path!.startsWith('images/controlplane/')) touched.add('bpfman').add('controlplane');
    if (path!.startsWith('images/coredns/')) touched.add('coredns');
    if (path!.startsWith('src/')) touched.add('controlplane');
  }
  return touched;
}

interface TestRun { passed: boolean; failing: string[]; detail: string; output: string }

/** node:test TAP: the failing tests (not suites), each with its failure type when not a plain assertion. */
function failingNodeTests(output: string): string[] {
  const lines = output.split('\n');
  const failing: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*not ok \d+ - (.*?)(?: # .*)?$/.exec(lines[i]!);
    if (!m) continue;
    let yaml = '';
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.\s*$/.test(lines[j]!); j++) yaml += `${lines[j]}\n`;
    if (/type: 'suite'/.test(yaml) || /\.test\.ts$/.test(m[1]!)) continue;
    const type = /failureType: '([^']+)'/.exec(yaml)?.[1];
    // The assertion's message: what the mutant changed, as the test saw it.
    const error = /^\s*error: (?:\|-?\n\s*)?'?(.*?)'?$/m.exec(yaml)?.[1]?.trim().slice(0, 160);
    failing.push(`${m[1]}${type && type !== 'testCodeFailure' ? ` (${type})` : ''}${error ? ` — “${error}”` : ''}`);
  }
  return failing;
}

function failingGoTests(output: string): string[] {
  const names = [...output.matchAll(/^\s*--- FAIL: (\S+)/gm)].map((m) => m[1]!);
  // Only the outermost of TestX and TestX/sub when both fail: name the subtests, they say which case.
  return names.filter((n) => !names.some((o) => o !== n && o.startsWith(`${n}/`)));
}

async function runTest(tree: string, t: TestSpec, env: NodeJS.ProcessEnv): Promise<TestRun> {
  let r: Run;
  let failing: string[];
  if ('node' in t) {
    const args = ['--import', 'tsx', '--test', '--test-reporter=tap', ...(t.pattern ? [`--test-name-pattern=${t.pattern}`] : []), t.node];
    r = await run('node', args, { cwd: tree, env });
    failing = failingNodeTests(r.output);
    if (r.code === 0 && !/^# pass [1-9]/m.test(r.output)) {
      return { passed: false, failing: [], detail: `no test ran (pattern matched nothing?)`, output: r.output };
    }
  } else {
    r = await run('go', ['test', '-count=1', ...(t.run ? ['-run', t.run] : []), t.pkg], { cwd: join(tree, t.go), env });
    failing = failingGoTests(r.output);
    if (r.code === 0 && /no tests to run/.test(r.output)) {
      return { passed: false, failing: [], detail: 'no test ran (-run matched nothing)', output: r.output };
    }
  }
  const detail = r.timedOut ? 'timed out' : r.code === 0 ? 'passed' : failing.length ? `failed: ${failing.join('; ')}` : `exited ${r.code} with no failing test named`;
  return { passed: r.code === 0, failing, detail, output: r.output };
}

/** Compile what the patch touches, so a mutant that does not build is reported as such, not as caught
 * (go test would also say so, but with no failing test to name). */
async function build(tree: string, touched: Set<string>): Promise<void> {
  if (touched.has('bpf') || touched.has('bpfman')) await runOk('make', ['-C', join(tree, 'bpf'), 'bpfman'], { cwd: tree, env: { ...process.env, CGO_ENABLED: '0' } });
  if (touched.has('coredns')) await runOk('go', ['build', './plugin/...'], { cwd: join(tree, 'images', 'coredns') });
  if (touched.has('controlplane')) await runOk('node', ['scripts/build.mjs'], { cwd: tree });
}

async function removeImage(tag: string): Promise<void> {
  await run('docker', ['image', 'rm', tag], { cwd: ROOT }).catch(() => undefined);
}

function writeReport(outcomes: readonly Outcome[], command: string, startedAt: Date, seconds: number, baseline: string): void {
  const rows = outcomes.map((o) =>
    `| \`${o.mutant.patch}\` | ${o.mutant.defence} | ${o.caughtBy.length ? o.caughtBy.map((c) => `\`${c.replace(/\|/g, '\\|')}\``).join('<br>') : '—'} | ${o.result === 'caught' ? 'caught' : `**${o.result}**${o.detail ? ` (${o.detail.replace(/\|/g, '\\|').replace(/\n/g, ' ').slice(0, 200)})` : ''}`} | ${o.seconds.toFixed(0)} s |`,
  );
  const caught = outcomes.filter((o) => o.result === 'caught').length;
  const section = [
    '## Datapath mutants',
    '',
    `Each patch in \`test/mutation/datapath/\` weakens one defence; \`test/mutation/datapath/manifest.json\` lists the tests that must catch it.`,
    `Command: \`${command}\`, ${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}, ${Math.round(seconds)} s. Unmutated, the same tests passed first (${baseline}).`,
    '',
    `**${caught} of ${outcomes.length} mutants caught.**`,
    '',
    '| patch | defence weakened | caught by (failing test) | result | time |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
  writeReportSection('datapath', section); // between <!-- datapath:start --> and <!-- datapath:end -->
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const onlyArg = argv.find((a) => a.startsWith('--only'));
  const onlyValue = onlyArg?.includes('=') ? onlyArg.split('=')[1] : onlyArg ? argv[argv.indexOf(onlyArg) + 1] : undefined;
  const only = onlyValue ? new Set(onlyValue.split(',').map((s) => s.replace(/\.patch$/, ''))) : undefined;
  const keep = argv.includes('--keep');
  const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { mutants: Mutant[] };
  const mutants = manifest.mutants.filter((m) => !only || only.has(nameOf(m)));
  if (only && mutants.length !== only.size) throw new Error(`--only names no mutant in the manifest: ${[...only].filter((n) => !manifest.mutants.some((m) => nameOf(m) === n)).join(', ')}`);
  if (process.getuid?.() !== 0) throw new Error('run as root (the datapath e2e loads eBPF programs)');
  const startedAt = new Date();
  const t0 = Date.now();
  const command = `node --import tsx test/mutation/datapath.ts${only ? ` --only ${[...only].join(',')}` : ''}`;

  const scratch = mkdtempSync(join(tmpdir(), 'clawker-datapath-mutation-'));
  const tree = join(scratch, 'tree');
  const mutantTags = new Set<string>();
  const outcomes: Outcome[] = [];
  try {
    log(`copying the working tree to ${tree}`);
    copyWorkingTree(tree);
    for (const m of mutants) {
      const patch = join(DIR, m.patch);
      await runOk('git', ['apply', '--check', patch], { cwd: tree });
    }

    // Unmutated first: every test a mutant lists must pass.
    const distinct = new Map<string, TestSpec>();
    for (const m of mutants) for (const t of m.tests) distinct.set(describeTest(t), t);
    log(`baseline: ${distinct.size} test command(s) unmutated`);
    await build(tree, new Set(['bpf']));
    for (const [what, t] of distinct) {
      const started = Date.now();
      const r = await runTest(tree, t, imageEnv(tagsFor(undefined, new Set())));
      log(`  ${r.passed ? 'pass' : 'FAIL'} ${what} (${Math.round((Date.now() - started) / 1000)} s)`);
      if (!r.passed) {
        const at = r.output.search(/^\s*not ok \d+ - (?!.*# SKIP)/m);
        process.stderr.write(`${at >= 0 ? r.output.slice(at).split('\n').slice(0, 40).join('\n') : tail(r.output, 60)}\n`);
        throw new Error(`unmutated, ${what} does not pass (${r.detail}): the mutants' results would mean nothing`);
      }
    }
    const baseline = `${distinct.size} test command(s), ${Math.round((Date.now() - t0) / 1000)} s with the copy`;

    for (const m of mutants) {
      const name = nameOf(m);
      const patch = join(DIR, m.patch);
      const touched = touchedBy(readFileSync(patch, 'utf8'));
      const tags = tagsFor(m, touched);
      if (m.images) for (const tag of Object.values(tags)) if (tag.includes(':mutant-')) mutantTags.add(tag);
      const started = Date.now();
      log(`mutant ${name}: ${m.defence}`);
      await runOk('git', ['apply', patch], { cwd: tree });
      let outcome: Outcome | undefined;
      try {
        try {
          await build(tree, touched);
        } catch (e) {
          outcome = { mutant: m, result: 'ERROR', caughtBy: [], detail: `does not build: ${tail((e as Error).message, 3)}`, seconds: 0 };
          throw e;
        }
        const caughtBy: string[] = [];
        const details: string[] = [];
        for (const t of m.tests) {
          const r = await runTest(tree, t, imageEnv(tags));
          details.push(`${describeTest(t)}: ${r.detail}`);
          if (!r.passed) {
            if (r.failing.length) caughtBy.push(...r.failing.map((f) => ('node' in t ? `${t.node} › ${f}` : `${t.pkg} ${f}`)));
            else process.stderr.write(`${tail(r.output, 40)}\n`);
          }
        }
        const result = caughtBy.length ? 'caught' : details.some((d) => /timed out|no failing test|no test ran/.test(d)) ? 'ERROR' : 'SURVIVED';
        outcome = { mutant: m, result, caughtBy, detail: result === 'caught' ? '' : details.join('; '), seconds: 0 };
      } catch (e) {
        outcome ??= { mutant: m, result: 'ERROR', caughtBy: [], detail: (e as Error).message.split('\n')[0]!, seconds: 0 };
      } finally {
        await runOk('git', ['apply', '-R', patch], { cwd: tree });
      }
      outcome!.seconds = (Date.now() - started) / 1000;
      outcomes.push(outcome!);
      log(`  ${outcome!.result}${outcome!.caughtBy.length ? ` by ${outcome!.caughtBy.join('; ')}` : ''}${outcome!.detail ? ` — ${outcome!.detail}` : ''} (${Math.round(outcome!.seconds)} s)`);
    }

    const seconds = (Date.now() - t0) / 1000;
    writeReport(outcomes, command, startedAt, seconds, baseline);
    log(`${outcomes.filter((o) => o.result === 'caught').length} of ${outcomes.length} caught in ${Math.round(seconds)} s; report: ${relative(ROOT, REPORT_FILE)}`);
  } finally {
    for (const tag of mutantTags) await removeImage(tag);
    if (keep) log(`kept ${tree}`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  return outcomes.every((o) => o.result === 'caught') ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    log(`ERROR: ${e.message}`);
    process.exit(1);
  },
);
