/**
 * Entry point of the control-plane daemon (bundled to dist/controlplane.js, run in the
 * clawker-controlplane container). Progress and warnings go to stdout/stderr (docker logs); the
 * egress event stream to <data dir>/events/egress.jsonl and the API.
 *
 * On SIGTERM it only stops: pinned programs and maps outlive it, so agents stay enforced while it is
 * gone (fail closed). `firewall down` is the way to stop the stack.
 */
import Docker from 'dockerode';
import { Bpfman } from '../platform/bpf/bpfman';
import { startApi } from './api';
import { readConfig } from './config';
import { ControlPlane } from './controlPlane';
import { EgressPipeline } from './egressPipeline';

const line = (stream: NodeJS.WriteStream, text: string): void => void stream.write(`${new Date().toISOString()} ${text}\n`);

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const docker = new Docker({ socketPath: config.dockerSocket });
  const bpf = new Bpfman(config.bpfman, config.pinDir);
  let pipeline: EgressPipeline | undefined;
  const controlPlane = new ControlPlane(config, docker, bpf, {
    progress: (m) => line(process.stdout, `[controlplane] ${m}`),
    warn: (m) => line(process.stderr, `[controlplane] warning: ${m}`),
    audit: (m, fields) => {
      line(process.stdout, `[controlplane] ${m}`);
      pipeline?.audit(m, fields);
    },
  });
  pipeline = new EgressPipeline(config, docker, bpf, controlPlane, (m) => line(process.stderr, `[events] ${m}`));
  const server = await startApi(config.socketPath, controlPlane, pipeline, {
    onDown: () => {
      pipeline?.stop();
      server.close();
      process.exit(0);
    },
  });
  line(process.stdout, `[controlplane] API on ${config.socketPath}`);
  pipeline.start();
  await controlPlane.start();
  const stop = (): void => {
    controlPlane.stop();
    pipeline?.stop();
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((e: unknown) => {
  line(process.stderr, `[controlplane] failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
