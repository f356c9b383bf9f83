import { randomBytes } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../functions/commons/secret';
import { HmacFingerprinter, KmsFingerprinter, fingerprinterFromEnv } from '../../functions/payments/fingerprint';
import { useHmacKeys } from './hmac-keys';

/**
 * Card fingerprints: the KMS GenerateMac implementation against the local KMS emulator with an
 * HMAC_256 key, and the in-process one.
 */
const keys = useHmacKeys('Payplane-payments-fingerprint', ['FingerprintKey', 'OtherKey']);

const pan = (n: string) => new Secret(n);

describe('KmsFingerprinter (KMS GenerateMac)', () => {
  it('gives the same value for the same card, another for another card or key, and never the PAN', async () => {
    const fp = new KmsFingerprinter(keys.arn('FingerprintKey'), keys.client);
    const other = new KmsFingerprinter(keys.arn('OtherKey'), keys.client);
    const a = await fp.fingerprint(pan('4242424242424242'));
    expect(await fp.fingerprint(pan('4242424242424242'))).toBe(a);
    expect(await fp.fingerprint(pan('4000000000000002'))).not.toBe(a);
    expect(await other.fingerprint(pan('4242424242424242'))).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a).not.toContain('4242');
  });

  it('calls KMS once per cold start, not once per payment', async () => {
    let calls = 0;
    const client = keys.client();
    const counting = { send: (command: unknown) => (calls++, client.send(command as never)) } as unknown as KMSClient;
    const fp = new KmsFingerprinter(keys.arn('FingerprintKey'), () => counting);
    const again = new KmsFingerprinter(keys.arn('FingerprintKey'), keys.client);
    const values = await Promise.all(['4242424242424242', '4000000000000002', '4242424242424242'].map((n) => fp.fingerprint(pan(n))));
    expect(calls).toBe(1);
    expect(values[0]).toBe(values[2]);
    // Another execution environment derives the same key: fingerprints match across containers.
    expect(await again.fingerprint(pan('4242424242424242'))).toBe(values[0]);
  });
});

describe('HmacFingerprinter', () => {
  it('is deterministic per key and refuses short keys', async () => {
    const key = randomBytes(32);
    const a = new HmacFingerprinter(new Secret(key));
    const b = new HmacFingerprinter(new Secret(Buffer.from(key)));
    expect(await a.fingerprint(pan('4242424242424242'))).toBe(await b.fingerprint(pan('4242424242424242')));
    expect(await new HmacFingerprinter(new Secret(randomBytes(32))).fingerprint(pan('4242424242424242'))).not.toBe(await a.fingerprint(pan('4242424242424242')));
    expect(() => new HmacFingerprinter(new Secret(randomBytes(16)))).toThrow(/32 bytes/);
  });

  it('fingerprinterFromEnv: KMS when FINGERPRINT_KEY_ARN is set, else FINGERPRINT_KEY, else a clear error', async () => {
    expect(fingerprinterFromEnv({ FINGERPRINT_KEY_ARN: 'arn:aws:kms:us-east-1:000000000000:key/x' })).toBeInstanceOf(KmsFingerprinter);
    expect(fingerprinterFromEnv({ FINGERPRINT_KEY: randomBytes(32).toString('base64') })).toBeInstanceOf(HmacFingerprinter);
    await expect(fingerprinterFromEnv({}).fingerprint(pan('4242424242424242'))).rejects.toThrow(/FINGERPRINT_KEY_ARN/);
  });
});
