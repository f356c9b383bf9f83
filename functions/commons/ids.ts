import { createHmac, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Unbiased base62 from CSPRNG bytes (rejection sampling: 62*4 = 248 is the largest multiple below 256). */
export function randomBase62(length: number): string {
  return base62(length, () => randomBytes(length * 2));
}

function base62(length: number, bytes: (round: number) => Uint8Array): string {
  let out = '';
  for (let round = 0; out.length < length; round++) {
    for (const byte of bytes(round)) {
      if (byte < 248) out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Public object ids: `<prefix>_<24 base62>` (~143 bits), e.g. `ord_3xY…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(24)}`;
}

/**
 * The id of the `prefix` object a request creates, fixed by its Idempotency-Key's secret seed
 * (http/idempotency.ts): a retry that resumes the request gets the same id. HMAC keyed by the random
 * seed, so the id says nothing about the key (merchants often use their order number as the key), and
 * two kinds of object made by one request do not share their random part.
 */
export function idFromSeed(prefix: string, seed: string): string {
  return `${prefix}_${base62(24, (round) => createHmac('sha512', seed).update(`${prefix}:${round}`).digest())}`;
}
