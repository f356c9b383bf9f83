import { createHash } from 'node:crypto';
import { msg } from '../commons/messages';
import { AuthenticationError } from '../commons/errors';
import { newId, randomBase62 } from '../commons/ids';
import { Secret } from '../commons/secret';

/**
 * Secret API keys: `sk_test_` + 32 base62 characters (~190 bits from the CSPRNG, unbiased).
 * A key is shown once, at creation; the table keeps only its sha256 hex, which is also the
 * item's partition key, so authenticating is one GetItem and a leaked table leaks no usable key.
 */
export const SECRET_KEY_PREFIX = 'sk_test_';
/** Restricted keys: the same format with `rk_test_`, limited to their scopes (scopes.ts). */
export const RESTRICTED_KEY_PREFIX = 'rk_test_';
export const SECRET_KEY_RANDOM_LENGTH = 32;
const SECRET_KEY_PATTERN = /^[sr]k_test_[A-Za-z0-9]{32}$/;

export type KeyKind = 'secret' | 'restricted';

export function generateSecretKey(kind: KeyKind = 'secret'): Secret<string> {
  return new Secret((kind === 'secret' ? SECRET_KEY_PREFIX : RESTRICTED_KEY_PREFIX) + randomBase62(SECRET_KEY_RANDOM_LENGTH));
}

export function newKeyId(): string {
  return newId('key');
}

/** A secret or restricted key's format. */
export function isSecretKey(value: string): boolean {
  return SECRET_KEY_PATTERN.test(value);
}

/** sha256 hex of the full key (prefix included). Random 190-bit keys need no salt or slow hash. */
export function hashSecretKey(key: Secret<string> | string): string {
  const plain = typeof key === 'string' ? key : key.reveal();
  return createHash('sha256').update(plain, 'utf8').digest('hex');
}

/** What may be logged about a key the caller presented: its last 4 characters, never more. */
export function keyHint(key: string): string {
  return key.length >= 12 ? `…${key.slice(-4)}` : '…';
}

/**
 * Extracts the key from an `Authorization: Bearer sk_test_…` header value. The scheme is
 * case-insensitive (RFC 9110 §11.1); the key's format is checked before any table read, so
 * garbage never costs a DynamoDB call.
 */
export function parseBearer(header: string | undefined | null): Secret<string> {
  if (header === undefined || header === null || header.trim() === '') {
    throw new AuthenticationError(
      'api_key_missing',
      msg['api_key_missing.header'](),
    );
  }
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    throw new AuthenticationError(
      'api_key_malformed',
      msg['api_key_malformed.scheme'](),
    );
  }
  const key = match[1]!;
  if (!isSecretKey(key)) {
    throw new AuthenticationError(
      'api_key_malformed',
      msg['api_key_malformed.prefix']({ secret: SECRET_KEY_PREFIX, restricted: RESTRICTED_KEY_PREFIX, length: SECRET_KEY_RANDOM_LENGTH }),
    );
  }
  return new Secret(key);
}

/**
 * The value of the merchant's API Gateway key (usage.ts), which the authorizer returns as `usageIdentifierKey`.
 * Clients cannot send it (the API's key source is the authorizer), so it identifies, never authenticates. Here,
 * not in usage.ts, so the authorizer's bundle carries no API Gateway client. API Gateway wants ≥ 20 characters.
 */
export const usageKeyValue = (merchantId: string) => `payplane-usage-${merchantId}`;
