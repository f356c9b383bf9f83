import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Unbiased base62 from CSPRNG bytes (rejection sampling: 62*4 = 248 is the largest multiple below 256). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
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
