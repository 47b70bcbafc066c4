import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';
import { type Checked, error, info } from './finding';

/** A rule destination after normalisation: lower-case ASCII domain (wildcard flag separate) or IPv4. */
export type Destination =
  | { readonly kind: 'domain'; readonly name: string; readonly wildcard: boolean }
  | { readonly kind: 'ipv4'; readonly address: string };

/** How a destination is written back in rules and keys: wildcards keep their leading dot. */
export const formatDestination = (d: Destination): string =>
  d.kind === 'ipv4' ? d.address : d.wildcard ? `.${d.name}` : d.name;

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

function checkDomainName(name: string, shown: string): string | undefined {
  if (name.length === 0) return `'${shown}' has no domain name.`;
  if (name.length > 253) return `'${shown}' is longer than the 253 characters a domain name may have.`;
  for (const label of name.split('.')) {
    if (label.length === 0) return `'${shown}' has an empty label (two dots in a row, or a dot at the end).`;
    if (label.length > 63) return `'${shown}' has a label longer than 63 characters.`;
    if (!LABEL.test(label)) return `'${shown}' has the label '${label}': labels hold letters, digits, '-' and '_', and do not start or end with '-'.`;
  }
  if (/^[0-9.]+$/.test(name)) return `'${shown}' is neither a domain name nor a valid IPv4 address.`;
  return undefined;
}

/**
 * Parses `dst`. IPv6 is refused because the egress stack is IPv4-only and would deny it; an
 * IPv4-mapped IPv6 address is read as its IPv4 form, which is what dual-stack clients use.
 */
export function checkDestination(raw: string): Checked<Destination> {
  let text = raw.trim();
  if (text === '') return { findings: [error('dst-invalid', "'dst' is empty: name a domain (api.example.com), a wildcard (.example.com) or an IPv4 address.")] };

  const scheme = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(text);
  if (scheme) {
    const host = scheme[1]!;
    return {
      findings: [
        error('dst-invalid', `'dst' takes a host, not a URL: write '${host}' and put the protocol in 'proto' and any path in 'path_rules'.`, {
          title: `Use '${host}'`,
          value: host,
        }),
      ],
    };
  }
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);

  const mapped = MAPPED_IPV4.exec(text);
  if (mapped && isIPv4(mapped[1]!)) {
    const address = mapped[1]!;
    return {
      value: { kind: 'ipv4', address },
      findings: [info('dst-ipv6', `'${text}' is an IPv4-mapped IPv6 address and is enforced as ${address}.`, { title: `Write it as ${address}`, value: address })],
    };
  }
  if (isIPv6(text)) {
    return {
      findings: [
        error(
          'dst-ipv6',
          `'${text}' is a native IPv6 address: the firewall is IPv4-only and denies native IPv6 egress, so this rule could never allow anything. Use the service's hostname (it resolves to an IPv4 address) or its IPv4 address.`,
        ),
      ],
    };
  }
  const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text);
  if (cidr && isIPv4(cidr[1]!) && Number(cidr[2]) <= 32) {
    // clawker accepts CIDR destinations; enforcing them needs IP-range routes this version lacks.
    return { findings: [error('dst-cidr', `'${text}' is a CIDR range, which Clawker for VS Code does not enforce yet.`)] };
  }
  if (text.includes('/')) {
    return { findings: [error('dst-invalid', `'${text}' is not a host: 'dst' takes one domain or IPv4 address, without a path or a CIDR range.`)] };
  }
  const hostPort = /^([^:]+):(\d+)$/.exec(text);
  if (hostPort) {
    return {
      findings: [
        error('dst-invalid', `'${text}' includes a port: write the host in 'dst' and the port in 'port: "${hostPort[2]}"'.`, {
          title: `Use '${hostPort[1]}'`,
          value: hostPort[1]!,
        }),
      ],
    };
  }
  if (isIPv4(text)) return { value: { kind: 'ipv4', address: text }, findings: [] };

  if (text.startsWith('*.')) {
    const fixed = text.slice(1).toLowerCase();
    return {
      findings: [
        error('dst-wildcard-star', `'${text}' uses '*.'; wildcards are written with a leading dot: '${fixed}' matches the domain and all its subdomains.`, {
          title: `Use '${fixed}'`,
          value: fixed,
        }),
      ],
    };
  }

  const wildcard = text.startsWith('.');
  let name = (wildcard ? text.slice(1) : text).toLowerCase();
  if (name.endsWith('.') && !name.endsWith('..')) name = name.slice(0, -1); // a fully qualified name's root dot
  const findings = [];
  if (/[^\x00-\x7f]/.test(name)) {
    const ascii = domainToASCII(name);
    if (ascii === '') return { findings: [error('dst-invalid', `'${text}' is not a valid internationalised domain name.`)] };
    findings.push(info('dst-invalid', `'${text}' is matched in its ASCII form '${wildcard ? '.' : ''}${ascii}'.`));
    name = ascii;
  }
  const problem = checkDomainName(name, text);
  if (problem) return { findings: [error('dst-invalid', problem)] };
  if (wildcard && !name.includes('.')) {
    return {
      findings: [
        error('dst-invalid', `'${text}' would allow every domain under the top-level domain '${name}': name the registered domain instead, e.g. '.example.${name}'.`),
      ],
    };
  }
  return { value: { kind: 'domain', name, wildcard }, findings };
}
