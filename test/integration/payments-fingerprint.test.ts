import { randomBytes } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../functions/commons/secret';
import { HmacFingerprinter, KmsFingerprinter, fingerprinterFromEnv } from '../../functions/payments/fingerprint';
import { useHmacKeys } from './hmac-keys';

/**
 * Card fingerprints: the KMS GenerateMac implementation against the local KMS emulator with an
 * HMAC_256 key, and the in-process one. Merchants see a fingerprint of their own (issue 7 finding 15a);
 * the platform-wide one is for the velocity limit only.
 */
const keys = useHmacKeys('Payplane-payments-fingerprint', ['FingerprintKey', 'OtherKey']);

const pan = (n: string) => new Secret(n);
const A = 'mch_A1b2C3d4E5f6G7h8';
const B = 'mch_Z9y8X7w6V5u4T3s2';

describe('KmsFingerprinter (KMS GenerateMac)', () => {
  it('gives the same value for the same card, another for another card or key, and never the PAN', async () => {
    const fp = new KmsFingerprinter(keys.arn('FingerprintKey'), keys.client);
    const other = new KmsFingerprinter(keys.arn('OtherKey'), keys.client);
    const a = (await fp.fingerprint(pan('4242424242424242'), A)).merchant;
    expect((await fp.fingerprint(pan('4242424242424242'), A)).merchant).toBe(a);
    expect((await fp.fingerprint(pan('4000000000000002'), A)).merchant).not.toBe(a);
    expect((await other.fingerprint(pan('4242424242424242'), A)).merchant).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(a).not.toContain('4242');
  });

  it('per merchant: the same card gives each merchant its own value; the platform-wide one is the same everywhere, and another still', async () => {
    const fp = new KmsFingerprinter(keys.arn('FingerprintKey'), keys.client);
    const atA = await fp.fingerprint(pan('4242424242424242'), A);
    const atB = await fp.fingerprint(pan('4242424242424242'), B);
    expect(atA.merchant).not.toBe(atB.merchant);
    expect(atA.platform.reveal()).toBe(atB.platform.reveal());
    expect([atA.merchant, atB.merchant]).not.toContain(atA.platform.reveal());
    expect(atA.platform.reveal()).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // The platform one never prints by accident.
    expect(JSON.stringify(atA)).toBe(`{"merchant":"${atA.merchant}","platform":"[REDACTED]"}`);
  });

  it('calls KMS once per cold start, not once per payment or per merchant', async () => {
    let calls = 0;
    const client = keys.client();
    const counting = { send: (command: unknown) => (calls++, client.send(command as never)) } as unknown as KMSClient;
    const fp = new KmsFingerprinter(keys.arn('FingerprintKey'), () => counting);
    const again = new KmsFingerprinter(keys.arn('FingerprintKey'), keys.client);
    const values = await Promise.all(
      [
        ['4242424242424242', A],
        ['4000000000000002', B],
        ['4242424242424242', A],
      ].map(([n, m]) => fp.fingerprint(pan(n!), m!)),
    );
    expect(calls).toBe(1);
    expect(values[0]!.merchant).toBe(values[2]!.merchant);
    // Another execution environment derives the same key: fingerprints match across containers.
    expect((await again.fingerprint(pan('4242424242424242'), A)).merchant).toBe(values[0]!.merchant);
  });
});

describe('HmacFingerprinter', () => {
  it('is deterministic per key and merchant, and refuses short keys', async () => {
    const key = randomBytes(32);
    const a = new HmacFingerprinter(new Secret(key));
    const b = new HmacFingerprinter(new Secret(Buffer.from(key)));
    const of = async (f: HmacFingerprinter, m = A) => (await f.fingerprint(pan('4242424242424242'), m)).merchant;
    expect(await of(a)).toBe(await of(b));
    expect(await of(a, B)).not.toBe(await of(a));
    expect(await of(new HmacFingerprinter(new Secret(randomBytes(32))))).not.toBe(await of(a));
    expect(() => new HmacFingerprinter(new Secret(randomBytes(16)))).toThrow(/32 bytes/);
  });

  it('fingerprinterFromEnv: KMS when FINGERPRINT_KEY_ARN is set, else FINGERPRINT_KEY, else a clear error', async () => {
    expect(fingerprinterFromEnv({ FINGERPRINT_KEY_ARN: 'arn:aws:kms:us-east-1:000000000000:key/x' })).toBeInstanceOf(KmsFingerprinter);
    expect(fingerprinterFromEnv({ FINGERPRINT_KEY: randomBytes(32).toString('base64') })).toBeInstanceOf(HmacFingerprinter);
    await expect(fingerprinterFromEnv({}).fingerprint(pan('4242424242424242'), A)).rejects.toThrow(/FINGERPRINT_KEY_ARN/);
  });
});
