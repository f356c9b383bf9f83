import { describe, expect, it } from 'vitest';
import { addressKind, isLoopbackUrl } from '../../functions/commons/addresses';
import { InvalidRequestError } from '../../functions/commons/errors';
import { parseInput } from '../../functions/http/validation';
import { createOrderSchema } from '../../functions/orders/schemas';

/** Issue 7 finding 15b: a deployed stage never calls into a private network, however the address is written. */

const valid = { merchant_order_no: 'A-1', amount: 1000, currency: 'USD' };
const deployed = createOrderSchema(false); // any stage in AWS: its base URL is https://…execute-api…
const localCloud = createOrderSchema(false, true);

function refusal(schema: ReturnType<typeof createOrderSchema>, body: unknown): InvalidRequestError {
  try {
    parseInput(schema, body);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(body)} to be refused`);
}

const NON_PUBLIC: [url: string, shown: string, kind: string][] = [
  ['https://169.254.169.254/latest/meta-data/', '169.254.169.254', 'link-local'],
  ['https://10.0.0.1/notify', '10.0.0.1', 'private'],
  ['https://10.255.255.255/', '10.255.255.255', 'private'],
  ['https://172.16.0.1/', '172.16.0.1', 'private'],
  ['https://172.31.255.254/', '172.31.255.254', 'private'],
  ['https://192.168.1.1/', '192.168.1.1', 'private'],
  ['https://127.0.0.1:9001/2018-06-01/runtime/invocation/next', '127.0.0.1', 'loopback'],
  ['https://127.1.2.3/', '127.1.2.3', 'loopback'],
  ['https://localhost/', 'localhost', 'loopback'],
  ['https://shop.localhost/', 'shop.localhost', 'loopback'],
  ['https://0.0.0.0/', '0.0.0.0', 'unspecified'],
  ['https://[::1]/', '[::1]', 'loopback'],
  ['https://[::]/', '[::]', 'unspecified'],
  ['https://[fc00::1]/', '[fc00::1]', 'private'],
  ['https://[fd12:3456:789a::1]/', '[fd12:3456:789a::1]', 'private'],
  ['https://[fe80::1]/', '[fe80::1]', 'link-local'],
  ['https://[febf:ffff::1]/', '[febf:ffff::1]', 'link-local'],
  // IPv4-mapped and IPv4-compatible IPv6
  ['https://[::ffff:169.254.169.254]/', '[::ffff:a9fe:a9fe]', 'link-local'],
  ['https://[::ffff:10.0.0.1]/', '[::ffff:a00:1]', 'private'],
  ['https://[0:0:0:0:0:ffff:7f00:1]/', '[::ffff:7f00:1]', 'loopback'],
  ['https://[::127.0.0.1]/', '[::7f00:1]', 'reserved'],
  // What the WHATWG URL parser turns into dotted quads
  ['https://2852039166/', '169.254.169.254', 'link-local'],
  ['https://0xa9fea9fe/', '169.254.169.254', 'link-local'],
  ['https://0251.0376.0251.0376/', '169.254.169.254', 'link-local'],
  ['https://0xA9.0xFE.0xA9.0xFE/', '169.254.169.254', 'link-local'],
  ['https://10.1/', '10.0.0.1', 'private'],
  ['https://167772161/', '10.0.0.1', 'private'],
  ['https://127.1/', '127.0.0.1', 'loopback'],
  ['https://0/', '0.0.0.0', 'unspecified'],
  ['https://169.254.169.254./', '169.254.169.254', 'link-local'],
];

describe('notify_url and return_url in a deployed stage', () => {
  it.each(NON_PUBLIC)('refuses %s with 400 naming the field, the value and the fix', (url, shown, kind) => {
    for (const field of ['notify_url', 'return_url']) {
      const error = refusal(deployed, { ...valid, [field]: url });
      expect(error.status).toBe(400);
      expect(error).toMatchObject({ code: 'parameter_invalid', param: field });
      expect(error.message).toContain(`'${field}'`);
      expect(error.message).toContain(JSON.stringify(url).slice(0, 40));
      expect(error.message).toContain(`${shown} is a ${kind} address`);
      expect(error.message).toContain('public host name');
    }
  });

  it.each(['https://shop.example/notify', 'https://8.8.8.8/n', 'https://[2001:4860:4860::8888]/n', 'https://172.32.0.1/', 'https://192.169.0.1/', 'https://11.0.0.1/'])(
    'accepts the public URL %s',
    (url) => {
      expect(parseInput(deployed, { ...valid, notify_url: url }).notify_url).toBe(url);
    },
  );

  it('refuses http:// to loopback: only the local cloud calls loopback', () => {
    const error = refusal(deployed, { ...valid, notify_url: 'http://127.0.0.1:8080/n' });
    expect(error.message).toContain('Use an https:// URL.');
  });
});

describe('notify_url and return_url in the local cloud (a stage served on loopback)', () => {
  it.each(['http://127.0.0.1:8080/n', 'https://127.0.0.1/n', 'http://localhost:3000/done', 'http://[::1]:8080/n'])('accepts the loopback URL %s', (url) => {
    expect(parseInput(localCloud, { ...valid, return_url: url }).return_url).toBe(url);
  });

  it.each(['https://169.254.169.254/', 'https://10.0.0.1/', 'http://10.0.0.1/'])('still refuses the non-loopback private URL %s', (url) => {
    expect(refusal(localCloud, { ...valid, notify_url: url }).param).toBe('notify_url');
  });
});

describe('which stages are served on loopback', () => {
  it('only a base URL on a loopback address is', () => {
    expect(isLoopbackUrl('http://127.0.0.1:3000/dev')).toBe(true);
    expect(isLoopbackUrl('https://abc123.execute-api.us-east-1.amazonaws.com/dev')).toBe(false);
    expect(isLoopbackUrl('https://api.payplane.example')).toBe(false);
    expect(isLoopbackUrl('not a url')).toBe(false);
    expect(addressKind('example.com')).toBeUndefined();
  });
});
