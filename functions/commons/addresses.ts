import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * What kind of non-public address a URL's host is, if it is one: the platform calls merchants' notify_url
 * and sends payers to return_url, and neither may point into our own network (in a Lambda, 127.0.0.1:9001
 * is the Runtime API; 169.254.169.254 the metadata service).
 *
 * Takes `URL.hostname`, which the WHATWG parser has already normalized: `http://2852039166/`,
 * `http://0xa9fea9fe/` and `http://0251.0376.0251.0376/` all arrive as `169.254.169.254`, IPv6 arrives
 * bracketed and compressed. Literal addresses only here: the webhook deliverer resolves names itself and
 * checks every address they resolve to with this (functions/notifications/outbound.ts).
 */
export type AddressKind = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'reserved';

const RANGES: [kind: AddressKind, address: string, prefix: number, family: 'ipv4' | 'ipv6'][] = [
  ['unspecified', '0.0.0.0', 8, 'ipv4'],
  ['private', '10.0.0.0', 8, 'ipv4'],
  ['private', '100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['loopback', '127.0.0.0', 8, 'ipv4'],
  ['link-local', '169.254.0.0', 16, 'ipv4'],
  ['private', '172.16.0.0', 12, 'ipv4'],
  ['reserved', '192.0.0.0', 24, 'ipv4'],
  ['private', '192.168.0.0', 16, 'ipv4'],
  ['reserved', '198.18.0.0', 15, 'ipv4'],
  ['reserved', '224.0.0.0', 3, 'ipv4'], // multicast, reserved and broadcast
  ['loopback', '::1', 128, 'ipv6'],
  ['unspecified', '::', 128, 'ipv6'],
  ['reserved', '::', 96, 'ipv6'], // IPv4-compatible (deprecated): ::127.0.0.1 is ::7f00:1
  ['reserved', '64:ff9b::', 96, 'ipv6'], // NAT64: translates to any IPv4 address, private ones included
  ['reserved', '100::', 64, 'ipv6'],
  ['reserved', '2001::', 32, 'ipv6'], // Teredo: tunnels to an IPv4 address the prefix embeds
  ['reserved', '2002::', 16, 'ipv6'], // 6to4: likewise (2002:0a00:0001:: is 10.0.0.1)
  ['private', 'fc00::', 7, 'ipv6'],
  ['link-local', 'fe80::', 10, 'ipv6'],
  ['private', 'fec0::', 10, 'ipv6'], // site-local (deprecated)
  ['reserved', 'ff00::', 8, 'ipv6'],
];

const lists = new Map<AddressKind, BlockList>();
for (const [kind, address, prefix, family] of RANGES) {
  if (!lists.has(kind)) lists.set(kind, new BlockList());
  lists.get(kind)!.addSubnet(address, prefix, family);
}
// Most specific first: ::1 is loopback although ::/96 is reserved.
const ORDER: AddressKind[] = ['loopback', 'unspecified', 'link-local', 'private', 'reserved'];

export function addressKind(hostname: string): AddressKind | undefined {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  const family = isIPv4(host) ? 'ipv4' : isIPv6(host) ? 'ipv6' : undefined;
  if (!family) return undefined;
  // BlockList matches IPv4-mapped IPv6 (::ffff:a9fe:a9fe) against the IPv4 ranges too.
  return ORDER.find((kind) => lists.get(kind)!.check(host, family));
}

/** Whether a URL is served on this machine's loopback interface (the local cloud's own base URL is). */
export function isLoopbackUrl(url: string): boolean {
  try {
    return addressKind(new URL(url).hostname) === 'loopback';
  } catch {
    return false;
  }
}
