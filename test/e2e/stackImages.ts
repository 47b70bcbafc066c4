/**
 * The firewall stack's images built from this checkout, for the end-to-end suites: runs
 * scripts/build-images.sh once per process on the test bed's base image. The script skips an image
 * whose inputs have not changed, so after the first run of a machine this takes a few seconds.
 *
 * The suites build and run their own tags (clawker-coredns:e2e, clawker-controlplane:e2e), never
 * the :latest images `npm run images` makes for the user. CLAWKER_COREDNS_IMAGE and
 * CLAWKER_CONTROLPLANE_IMAGE (the variables the CLI reads) choose other tags: a suite run with
 * CLAWKER_CONTROLPLANE_IMAGE=clawker-controlplane:mutant-x from a modified tree builds that tree's
 * control plane under that tag and runs it (test/mutation/datapath.ts does).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BASE_IMAGE, ROOT, requireTestbed } from './testbed';

export interface StackImageTags {
  readonly coredns: string;
  readonly controlplane: string;
}

/** The suites' own tags, unless the environment names others. */
export const DEFAULT_TEST_IMAGE_TAGS: StackImageTags = {
  coredns: 'clawker-coredns:e2e',
  controlplane: 'clawker-controlplane:e2e',
};

/** The one source of the tags the test suites build and run. */
export function stackImageTags(env: NodeJS.ProcessEnv = process.env): StackImageTags {
  return {
    coredns: env.CLAWKER_COREDNS_IMAGE || DEFAULT_TEST_IMAGE_TAGS.coredns,
    controlplane: env.CLAWKER_CONTROLPLANE_IMAGE || DEFAULT_TEST_IMAGE_TAGS.controlplane,
  };
}

export const STACK_IMAGE_TAGS: StackImageTags = stackImageTags();

/** A cold build compiles CoreDNS (minutes on two cores); a warm one takes seconds. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface BuildImagesResult {
  readonly code: number;
  /** stdout and stderr, interleaved as written. */
  readonly output: string;
}

/**
 * Run scripts/build-images.sh with CLAWKER_BASE_IMAGE set to the test bed's base image, building
 * under STACK_IMAGE_TAGS. Its progress lines go to this process's stderr as they come.
 */
export function runBuildImages(args: readonly string[] = [], timeoutMs = BUILD_TIMEOUT_MS): Promise<BuildImagesResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(ROOT, 'scripts', 'build-images.sh'), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        CLAWKER_BASE_IMAGE: BASE_IMAGE,
        CLAWKER_COREDNS_IMAGE: STACK_IMAGE_TAGS.coredns,
        CLAWKER_CONTROLPLANE_IMAGE: STACK_IMAGE_TAGS.controlplane,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output += text;
      process.stderr.write(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run scripts/build-images.sh: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) output += `\n(killed by ${signal}${signal === 'SIGTERM' ? ` after ${timeoutMs} ms` : ''})`;
      resolve({ code: code ?? 1, output });
    });
  });
}

let built: Promise<StackImageTags> | undefined;

/**
 * Build (or find up to date) STACK_IMAGE_TAGS (clawker-coredns:e2e and clawker-controlplane:e2e
 * unless overridden) on the test bed's base image; once per process, so every suite can call it.
 * Rejects with the script's output when it fails.
 */
export function ensureStackImages(): Promise<StackImageTags> {
  built ??= (async () => {
    await requireTestbed(['docker daemon', 'base image']);
    const { code, output } = await runBuildImages();
    if (code !== 0) {
      throw new Error(`scripts/build-images.sh exited ${code} (CLAWKER_BASE_IMAGE=${BASE_IMAGE}, tags ${STACK_IMAGE_TAGS.coredns} ${STACK_IMAGE_TAGS.controlplane}):\n${output.trim().split('\n').slice(-40).join('\n')}`);
    }
    return STACK_IMAGE_TAGS;
  })();
  return built;
}
