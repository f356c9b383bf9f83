import { createHash } from 'node:crypto';
import { AuthenticationError } from '../commons/errors';
import { newId, randomBase62 } from '../commons/ids';
import { Secret } from '../commons/secret';

/**
 * Secret API keys: `sk_test_` + 32 base62 characters (~190 bits from the CSPRNG, unbiased).
 * A key is shown once, at creation; the table keeps only its sha256 hex, which is also the
 * item's partition key, so authenticating is one GetItem and a leaked table leaks no usable key.
 */
export const SECRET_KEY_PREFIX = 'sk_test_';
export const SECRET_KEY_RANDOM_LENGTH = 32;
const SECRET_KEY_PATTERN = /^sk_test_[A-Za-z0-9]{32}$/;

export function generateSecretKey(): Secret<string> {
  return new Secret(SECRET_KEY_PREFIX + randomBase62(SECRET_KEY_RANDOM_LENGTH));
}

export function newKeyId(): string {
  return newId('key');
}

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
      "No API key provided. Send your secret key in the Authorization header: 'Authorization: Bearer sk_test_…'.",
    );
  }
  const match = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    throw new AuthenticationError(
      'api_key_malformed',
      "The Authorization header must use the Bearer scheme: 'Authorization: Bearer sk_test_…'.",
    );
  }
  const key = match[1]!;
  if (!isSecretKey(key)) {
    throw new AuthenticationError(
      'api_key_malformed',
      `The API key provided is not a Payplane secret key: they are '${SECRET_KEY_PREFIX}' followed by ${SECRET_KEY_RANDOM_LENGTH} letters and digits. Copy the whole key.`,
    );
  }
  return new Secret(key);
}
