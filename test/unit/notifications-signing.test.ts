import { generateKeyPairSync, randomBytes, type webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, createLocalJWKSet } from 'jose';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { Secret } from '../../functions/commons/secret';
import { jwkThumbprint, signDelivery, signedContent } from '../../functions/notifications/signing';

/** The two signatures of a delivery, checked with the unmodified verifiers merchants use: standardwebhooks and jose. */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
const signer = { kid: jwkThumbprint(jwk), privateKey };
const body = JSON.stringify({ id: 'evt_0001', object: 'event', type: 'order.succeeded', data: { object: { id: 'ord_1', version: 2 } } });

/**
 * Verifies the platform signature as a merchant would: jose picks the key by the header's kid from the JWKS,
 * WebCrypto checks the raw EdDSA signature over `<id>.<timestamp>.<body>`.
 */
async function verifyPlatform(headers: Record<string, string>, payload: string, key: Record<string, string> = jwk): Promise<boolean> {
  const [, kid, sig] = /^kid=([^,]+),sig=(.+)$/.exec(headers['payplane-platform-signature']!)!;
  const jwks = createLocalJWKSet({ keys: [{ ...key, kid: signer.kid, alg: 'EdDSA', use: 'sig' }] });
  const cryptoKey = (await jwks({ alg: 'EdDSA', kid })) as webcrypto.CryptoKey;
  const content = signedContent(headers['webhook-id']!, Number(headers['webhook-timestamp']), payload);
  return crypto.subtle.verify({ name: 'Ed25519' }, cryptoKey, Buffer.from(sig!, 'base64url'), Buffer.from(content));
}

describe('Standard Webhooks signature', () => {
  it('verifies with new Webhook(secret).verify(body, headers), and carries the event id as webhook-id', () => {
    // Prepare
    const secret = newSecret();
    // Act
    const headers = signDelivery({ id: 'evt_0001', body, now: new Date(), secrets: [new Secret(secret)] }, signer);
    // Assess
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(headers['webhook-id']).toBe('evt_0001');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });

  it('rejects a tampered body, another secret and a stale timestamp', () => {
    const secret = newSecret();
    const headers = signDelivery({ id: 'evt_0001', body, now: new Date(), secrets: [new Secret(secret)] }, signer);
    expect(() => new Webhook(secret).verify(body.replace('"version":2', '"version":3'), headers)).toThrow(/signature/i);
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow(/signature/i);
    const stale = signDelivery({ id: 'evt_0001', body, now: new Date(Date.now() - 10 * 60_000), secrets: [new Secret(secret)] }, signer);
    expect(() => new Webhook(secret).verify(body, stale)).toThrow(/timestamp/i);
  });

  it('during a roll both secrets sign (newest first), and either one verifies', () => {
    const [current, old] = [newSecret(), newSecret()];
    const headers = signDelivery({ id: 'evt_0001', body, now: new Date(), secrets: [new Secret(current), new Secret(old)] }, signer);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(new Webhook(current).verify(body, headers)).toBeTruthy();
    expect(new Webhook(old).verify(body, headers)).toBeTruthy();
  });

  it('the per-order notify_url (no secret) gets no webhook-signature, but the platform signature', async () => {
    const headers = signDelivery({ id: 'evt_0001', body, now: new Date(), secrets: [] }, signer);
    expect(headers['webhook-signature']).toBeUndefined();
    expect(await verifyPlatform({ ...headers }, body)).toBe(true);
  });
});

describe('platform signature (Ed25519, JOSE EdDSA)', () => {
  it('verifies with jose against the public JWK; a tampered body or another key does not', async () => {
    const headers = { ...signDelivery({ id: 'evt_0001', body, now: new Date(), secrets: [new Secret(newSecret())] }, signer) };
    expect(await verifyPlatform(headers, body)).toBe(true);
    expect(await verifyPlatform(headers, `${body} `)).toBe(false);
    const other = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as typeof jwk;
    expect(await verifyPlatform(headers, body, other)).toBe(false);
  });

  it('kid is the RFC 7638 thumbprint, as jose computes it (OKP and EC keys)', async () => {
    expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk));
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, string>;
    expect(jwkThumbprint(ec)).toBe(await calculateJwkThumbprint(ec as never));
  });
});
