import { describe, expect, it } from 'vitest';
import { checkedAddress, RefusedUrlError } from '../../functions/notifications/outbound';

/**
 * Delivery-time SSRF checks: every address a webhook URL resolves to must be public. Names are resolved by a
 * substitute resolver here (no network in the unit tier); the integration tier sends real requests.
 */
const resolving = (...addresses: string[]) => ({
  allowLoopback: false,
  resolve: async () => addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
});
const refused = (url: string, options = resolving('93.184.215.14')) => expect(checkedAddress(new URL(url), options)).rejects.toBeInstanceOf(RefusedUrlError);

describe('webhook URL checks (loopback setting off: every deployed stage)', () => {
  it.each([
    'https://127.0.0.1/hook',
    'https://127.0.0.1:9001/2018-06-01/runtime/invocation/next', // the Lambda Runtime API
    'https://10.0.0.1/hook',
    'https://172.16.5.4/hook',
    'https://192.168.1.1/hook',
    'https://100.64.0.1/hook', // CGNAT
    'https://169.254.169.254/latest/meta-data/', // instance metadata
    'https://0.0.0.0/hook',
    'https://224.0.0.1/hook', // multicast
    'https://[::1]/hook',
    'https://[fd00::1]/hook', // ULA
    'https://[fe80::1]/hook', // link-local
    'https://[::ffff:127.0.0.1]/hook', // v4-mapped
    'https://[::ffff:a9fe:a9fe]/hook', // v4-mapped metadata
    'https://[64:ff9b::a00:1]/hook', // NAT64 of 10.0.0.1
    'https://[2002:a00:1::1]/hook', // 6to4 of 10.0.0.1
    'https://2852039166/hook', // 169.254.169.254 as one number
  ])('refuses %s', (url) => refused(url));

  it('refuses a name that resolves to a private address (any of its addresses)', async () => {
    await refused('https://hooks.example.com/x', resolving('10.0.0.1'));
    await refused('https://hooks.example.com/x', resolving('93.184.215.14', '169.254.169.254'));
    await refused('https://hooks.example.com/x', resolving('::1'));
    await expect(checkedAddress(new URL('https://hooks.example.com/x'), resolving('10.0.0.1'))).rejects.toThrow(/hooks\.example\.com resolves to 10\.0\.0\.1, which is a private address/);
  });

  it('refuses localhost by its real resolution, and plain http', async () => {
    await refused('https://localhost/hook', { allowLoopback: false } as never);
    await expect(checkedAddress(new URL('http://hooks.example.com/x'), resolving('93.184.215.14'))).rejects.toThrow(/https/);
  });

  it('accepts a public https URL and returns the address to connect to', async () => {
    await expect(checkedAddress(new URL('https://hooks.example.com/x'), resolving('93.184.215.14'))).resolves.toEqual({ address: '93.184.215.14', family: 4 });
  });

  it('with the local cloud setting: http://localhost and http://127.0.0.1 only, nothing else private', async () => {
    const local = { allowLoopback: true };
    await expect(checkedAddress(new URL('http://127.0.0.1:8080/x'), local)).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(checkedAddress(new URL('http://localhost:8080/x'), local)).resolves.toBeTruthy();
    await refused('http://10.0.0.1/x', local as never);
    await refused('http://[::1]:8080/x', local as never);
    await refused('http://hooks.example.com/x', { ...resolving('127.0.0.1'), allowLoopback: true });
  });
});
