/**
 * What clawker-open accepts and says. Pure: no I/O.
 *
 * `clawker-open URL` ($BROWSER, and xdg-open in the image) asks the host proxy to open an http(s)
 * URL in the browser on the host (POST /v1/browser/open {url}); anything else is refused here
 * already, with the reason.
 */
import { MAX_URL_LENGTH } from '../hostproxy/validate';

export type OpenUrlCheck = { readonly ok: true; readonly url: string } | { readonly ok: false; readonly reason: string };

export function checkOpenUrl(args: readonly string[]): OpenUrlCheck {
  if (args.length !== 1 || args[0] === undefined || args[0] === '') return { ok: false, reason: 'usage: clawker-open URL (one http or https URL)' };
  const raw = args[0];
  if (raw.length > MAX_URL_LENGTH) return { ok: false, reason: 'the URL is too long' };
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) return { ok: false, reason: 'the URL contains whitespace or control characters' };
  if (!/^https?:\/\//i.test(raw)) return { ok: false, reason: 'only http and https URLs are opened on the host' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not a valid URL' };
  }
  if (url.hostname === '') return { ok: false, reason: 'the URL has no host' };
  return { ok: true, url: url.href };
}

/** The host only, for messages: a URL's path and query may carry secrets (OAuth states, codes). */
export const urlHost = (url: string): string => {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
};
