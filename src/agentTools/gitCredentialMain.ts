/**
 * git-credential-clawker: git's credential helper in agent containers (`git config --system
 * credential.helper clawker`). Asks the host proxy, which asks git on the host; see
 * credentialProtocol.ts for the protocol. Always exits 0: when there is no answer git falls back
 * (its next helper, or a prompt), and a short reason goes to stderr, never a credential.
 * With CLAWKER_HOST_PROXY unset (the host proxy is off) it does nothing, silently.
 */
import { describeFailure, formatCredentialOutput, isGitOperation, parseCredentialInput, planCredentialRequest } from './credentialProtocol';
import { hostProxyBase, HostProxyUnavailable, postToHostProxy, readHostProxyToken } from './hostProxyClient';

const PREFIX = 'git-credential-clawker:';
/** git's input is a few short lines; anything bigger is not git. */
const MAX_INPUT_BYTES = 64 * 1024;

function readStdin(): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    process.stdin.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_INPUT_BYTES) chunks.push(chunk);
    });
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

async function main(): Promise<void> {
  const operation = process.argv[2];
  // git-credential(1): a helper ignores operations it does not know.
  if (!isGitOperation(operation)) return;
  const input = parseCredentialInput(await readStdin());
  let base: URL | undefined;
  try {
    base = hostProxyBase(process.env);
  } catch (e) {
    process.stderr.write(`${PREFIX} ${(e as Error).message}\n`);
    return;
  }
  if (base === undefined) return; // the host proxy is off
  const plan = planCredentialRequest(operation, input);
  if (plan.kind === 'skip') {
    if (!plan.quiet) process.stderr.write(`${PREFIX} not asking the host: ${plan.reason}\n`);
    return;
  }
  // For messages: the host as git gave it, without anything a terminal would interpret.
  // eslint-disable-next-line no-control-regex
  const host = (input.host ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 260);
  try {
    const token = readHostProxyToken();
    const answer = await postToHostProxy(base, '/v1/git/credential', plan.body, token);
    if (answer.status === 200) {
      if (operation === 'get') {
        const text = formatCredentialOutput(answer.body);
        if (text) process.stdout.write(text);
        else process.stderr.write(`${PREFIX} the host proxy gave no usable credential for ${host}\n`);
      }
      return;
    }
    if (answer.status === 404 && operation === 'get') {
      process.stderr.write(`${PREFIX} no credential for ${host} on the host\n`);
      return;
    }
    process.stderr.write(`${PREFIX} the host proxy refused (${describeFailure(answer.status, answer.body, [input.password, input.username])})\n`);
  } catch (e) {
    const message = e instanceof HostProxyUnavailable ? e.message : 'internal error';
    process.stderr.write(`${PREFIX} ${message}\n`);
  }
}

main().then(
  () => process.exit(0),
  () => process.exit(0),
);
