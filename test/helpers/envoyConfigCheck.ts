/**
 * Checks Envoy configuration files with test/envoy-config-check (Go, go-control-plane): a strict
 * parse into Envoy's own v3 API types (unknown fields and unknown "@type"s rejected), their
 * protoc-gen-validate rules (including inside every typed_config Any), and a few load-time rules
 * of Envoy. It is not Envoy: a pass does not prove Envoy accepts the file.
 *
 * The checker is built once per source version into the OS temp directory (go build; modules
 * come from the Go module cache, so after the first download it builds offline). A missing Go
 * toolchain is an error, never a skip.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CHECKER_DIR = resolve(__dirname, '..', 'envoy-config-check');

export interface EnvoyCheckResult {
  /** Every file parsed and validated. */
  ok: boolean;
  /** The checker's output: `FILE: ok (N resources, TYPE)` or `FILE: error: PATH: MESSAGE` lines. */
  output: string;
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ExecResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 64 * 1024 * 1024, timeout: opts.timeoutMs ?? 0 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(err); // spawn failure (ENOENT), timeout, signal
          return;
        }
        resolvePromise({ code: err ? (err.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** A hash of the checker's sources, so that a changed checker is rebuilt and an unchanged one is not. */
function sourceHash(): string {
  const h = createHash('sha256');
  for (const name of readdirSync(CHECKER_DIR).sort()) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') {
      h.update(name).update('\0').update(readFileSync(join(CHECKER_DIR, name))).update('\0');
    }
  }
  return h.digest('hex').slice(0, 16);
}

let built: Promise<string> | undefined;

/**
 * Builds the checker (once per process; reused across processes while its sources are unchanged)
 * and returns the binary's path.
 */
export function buildEnvoyConfigChecker(): Promise<string> {
  built ??= (async () => {
    const dir = join(tmpdir(), 'clawker-envoy-config-check', sourceHash());
    const bin = join(dir, 'envoy-config-check');
    if (existsSync(bin)) return bin;
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    // -mod=readonly: never rewrite go.mod/go.sum from a test. -buildvcs=false: no git stamping.
    const env = { ...process.env, GOFLAGS: [process.env.GOFLAGS, '-mod=readonly', '-buildvcs=false'].filter(Boolean).join(' ') };
    // $GO, then `go` on PATH, then the official tarball's location (not always on a CI PATH).
    const candidates = [process.env.GO, 'go', '/usr/local/go/bin/go'].filter((c): c is string => !!c);
    let r: ExecResult | undefined;
    for (const go of candidates) {
      try {
        r = await run(go, ['build', '-o', tmp, '.'], { cwd: CHECKER_DIR, env });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    if (!r) {
      throw new Error(
        `Go is not installed (tried ${candidates.join(', ')}). The Envoy configuration checker test/envoy-config-check ` +
          'is a Go program (go.mod: go 1.26, github.com/envoyproxy/go-control-plane); install Go and let it reach ' +
          'the Go module proxy once (or have the module cache filled) to build it.',
      );
    }
    if (r.code !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`go build of ${CHECKER_DIR} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
    }
    renameSync(tmp, bin); // atomic: a concurrent build by another test process is harmless
    return bin;
  })();
  // A failed build is not cached, so a later call reports it again rather than a stale rejection.
  built.catch(() => {
    built = undefined;
  });
  return built;
}

/**
 * Checks Envoy configuration files (bootstrap or path_config_source xDS files, YAML or JSON; the
 * checker decides the type from the document, see test/envoy-config-check/main.go).
 * `extraArgs`, e.g. ['-type', 'envoy.config.listener.v3.Listener'], go before the files.
 */
export async function checkEnvoyConfig(files: string[], extraArgs: string[] = []): Promise<EnvoyCheckResult> {
  if (files.length === 0) throw new Error('checkEnvoyConfig: no files');
  const bin = await buildEnvoyConfigChecker();
  const r = await run(bin, [...extraArgs, '--', ...files]);
  if (r.code !== 0 && r.code !== 1) {
    throw new Error(`envoy-config-check exited ${r.code}:\n${r.stderr}${r.stdout}`);
  }
  return { ok: r.code === 0, output: r.stdout + r.stderr };
}
