/**
 * clawker-open URL: opens an http(s) URL in the browser on the host, through the host proxy
 * ($BROWSER in agent images; xdg-open is a link to it). Prints one line saying it was opened (naming
 * the URL's host) or why not (with the URL, to open by hand: this is the user's terminal, not a
 * log); exits 0 when opened, 1 otherwise.
 */
import { describeFailure } from './credentialProtocol';
import { hostProxyBase, HostProxyUnavailable, postToHostProxy, readHostProxyToken } from './hostProxyClient';
import { checkOpenUrl, urlHost } from './openUrl';

async function main(): Promise<number> {
  const check = checkOpenUrl(process.argv.slice(2));
  if (!check.ok) {
    process.stderr.write(`clawker-open: ${check.reason}\n`);
    return 1;
  }
  const host = urlHost(check.url);
  const notOpened = (why: string): number => {
    process.stderr.write(`clawker-open: not opened: ${why}. Open it on the host yourself: ${check.url}\n`);
    return 1;
  };
  try {
    const base = hostProxyBase(process.env);
    if (base === undefined) return notOpened('the host proxy is off in this container (CLAWKER_HOST_PROXY is not set)');
    const answer = await postToHostProxy(base, '/v1/browser/open', { url: check.url }, readHostProxyToken());
    if (answer.status !== 200) return notOpened(`the host proxy refused (${describeFailure(answer.status, answer.body)})`);
    process.stdout.write(`clawker-open: opened ${host} in the browser on the host\n`);
    return 0;
  } catch (e) {
    return notOpened(e instanceof HostProxyUnavailable ? e.message : 'internal error');
  }
}

main().then(
  (code) => process.exit(code),
  () => process.exit(1),
);
