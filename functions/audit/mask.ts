import { Secret } from '../commons/secret';

/**
 * What an audit entry may keep of a before/after state: configuration, never a credential or personal data.
 * Dropped: any field whose name says secret, hash, ciphertext, bank account (its `_last4` stays), payer, email,
 * phone or card number (unless it is a mere on/off flag); any binary value (ciphertexts) or Secret; any string that is a Payplane credential. URLs keep
 * everything but their user:password. Fee schedules, scopes, key ids, limits and flags pass unchanged.
 */
const DROPPED_FIELD = /secret|hash|ciphertext|bank_account(?!_last4$)|payer|email|phone|card_number|password|token/i;
const CREDENTIAL = /^(sk|rk)_(test|live)_|^whsec_/;

export function mask(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[truncated]';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return maskString(value);
  if (value instanceof Secret || value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map((v) => mask(v, depth + 1)).filter((v) => v !== undefined);
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
      // A flag is not the data it names: receipts' `{ email: true, sms: false }` stays.
      if (DROPPED_FIELD.test(name) && typeof v !== 'boolean') continue;
      const masked = mask(v, depth + 1);
      if (masked !== undefined) out[name] = masked;
    }
    return out;
  }
  return undefined; // functions, symbols, bigints: nothing a state holds
}

function maskString(text: string): string {
  if (CREDENTIAL.test(text)) return '[redacted]';
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(text)) {
    try {
      const url = new URL(text);
      url.username = '';
      url.password = '';
      return url.toString();
    } catch {
      return '[redacted]';
    }
  }
  return text;
}
