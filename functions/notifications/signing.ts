import { createHash, createHmac, sign as edSign, type KeyObject } from 'node:crypto';
import type { Secret } from '../commons/secret';

/**
 * The two signatures every delivery carries over the same content, `<webhook-id>.<webhook-timestamp>.<body>`:
 *
 * - Standard Webhooks (standardwebhooks.com), so any off-the-shelf verifier accepts it:
 *   `webhook-signature: v1,<base64 HMAC-SHA256>` keyed with the base64-decoded bytes after `whsec_`, one
 *   space-separated entry per unexpired endpoint secret, newest first (both sign during a roll). The per-order
 *   notify_url has no secret, so no entry (and no header).
 * - The platform's: `Payplane-Platform-Signature: kid=<kid>,sig=<base64url>`, Ed25519 (JOSE EdDSA: the raw
 *   64-byte signature) with the platform key (platform-key.ts), verifiable with `jose` / WebCrypto against
 *   `GET /v1/platform/public_keys`.
 */
export const SECRET_PREFIX = 'whsec_';

/** webhook-id, webhook-timestamp, webhook-signature (endpoints only), payplane-platform-signature. */
export type SignedHeaders = Record<string, string>;

export function signedContent(id: string, timestamp: number, body: string): string {
  return `${id}.${timestamp}.${body}`;
}

/** The HMAC key of a `whsec_…` secret: the bytes its base64 part encodes. */
export function secretKeyBytes(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error(`A webhook secret starts with '${SECRET_PREFIX}'`);
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

export function webhookSignature(content: string, secrets: readonly Secret<string>[]): string | undefined {
  if (secrets.length === 0) return undefined;
  return secrets.map((s) => `v1,${createHmac('sha256', secretKeyBytes(s.reveal())).update(content, 'utf8').digest('base64')}`).join(' ');
}

export interface PlatformSigner {
  kid: string;
  privateKey: KeyObject;
}

export function platformSignature(content: string, signer: PlatformSigner): string {
  // Ed25519 takes no digest argument (null): the raw 64-byte signature is what JOSE's EdDSA expects.
  const sig = edSign(null, Buffer.from(content, 'utf8'), signer.privateKey);
  return `kid=${signer.kid},sig=${sig.toString('base64url')}`;
}

/** Every header of one attempt, signed afresh with this attempt's timestamp (verifiers allow ±5 minutes). */
export function signDelivery(
  input: { id: string; body: string; now: Date; secrets: readonly Secret<string>[] },
  signer: PlatformSigner,
): SignedHeaders {
  const timestamp = Math.floor(input.now.getTime() / 1000);
  const content = signedContent(input.id, timestamp, input.body);
  const signature = webhookSignature(content, input.secrets);
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(timestamp),
    ...(signature ? { 'webhook-signature': signature } : {}),
    'payplane-platform-signature': platformSignature(content, signer),
  };
}

/** Public JWK members. */
export type PublicJwk = Record<string, string>;

/**
 * RFC 7638 thumbprint: SHA-256 over the JSON of the key type's required members in lexicographic order,
 * base64url. It names the key by its content, so a kid cannot be reused for another key.
 */
export function jwkThumbprint(jwk: PublicJwk): string {
  const members: Record<string, string[]> = { OKP: ['crv', 'kty', 'x'], EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'] };
  const names = members[jwk.kty ?? ''];
  if (!names) throw new Error(`No RFC 7638 thumbprint for key type ${JSON.stringify(jwk.kty)}`);
  const canonical = `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify(jwk[n])}`).join(',')}}`;
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}
