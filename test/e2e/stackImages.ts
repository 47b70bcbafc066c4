/**
 * The firewall stack's images built from this checkout, for the end-to-end suites: runs
 * scripts/build-images.sh once per process on the test bed's base image. The script skips an image
 * whose inputs have not changed, so after the first run of a machine this takes a few seconds.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { BASE_IMAGE, ROOT, requireTestbed } from './testbed';

export interface StackImageTags {
  readonly coredns: string;
  readonly controlplane: string;
}

export const STACK_IMAGE_TAGS: StackImageTags = {
  coredns: 'clawker-coredns:latest',
  controlplane: 'clawker-controlplane:latest',
};

/** A cold build compiles CoreDNS (minutes on two cores); a warm one takes seconds. */
const BUILD_TIMEOUT_MS = 30 * 60_000;

export interface BuildImagesResult {
  readonly code: number;
  /** stdout and stderr, interleaved as written. */
  readonly output: string;
}

/**
 * Run scripts/build-images.sh with CLAWKER_BASE_IMAGE set to the test bed's base image. Its
 * progress lines go to this process's stderr as they come.
 */
export function runBuildImages(args: readonly string[] = [], timeoutMs = BUILD_TIMEOUT_MS): Promise<BuildImagesResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(ROOT, 'scripts', 'build-images.sh'), ...args], {
      cwd: ROOT,
      env: { ...process.env, CLAWKER_BASE_IMAGE: BASE_IMAGE },
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
 * Build (or find up to date) clawker-coredns and clawker-controlplane on the test bed's base image;
 * once per process, so every suite can call it. Rejects with the script's output when it fails.
 */
export function ensureStackImages(): Promise<StackImageTags> {
  built ??= (async () => {
    await requireTestbed(['docker daemon', 'base image']);
    const { code, output } = await runBuildImages();
    if (code !== 0) {
      throw new Error(`scripts/build-images.sh exited ${code} (CLAWKER_BASE_IMAGE=${BASE_IMAGE}):\n${output.trim().split('\n').slice(-40).join('\n')}`);
    }
    return STACK_IMAGE_TAGS;
  })();
  return built;
}
