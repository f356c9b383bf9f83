import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { showActor } from '../../functions/audit/api';
import { auditEventId, hashEntry, seqOfId } from '../../functions/audit/chain';
import { mask } from '../../functions/audit/mask';
import { Secret } from '../../functions/commons/secret';

/** Issue 11 §4: the audit entry's hash (RFC 8785 + SHA-256) and what masking keeps. */

describe('hashEntry', () => {
  it('is the SHA-256 of the RFC 8785 canonical JSON: keys sorted, no whitespace, keys and hash left out', () => {
    const entry = { seq: 1, action: 'merchant.created', after: { b: 2, a: 1.5 } };
    const canonical = '{"action":"merchant.created","after":{"a":1.5,"b":2},"seq":1}';
    expect(hashEntry(entry)).toBe(createHash('sha256').update(canonical).digest('hex'));
    // The same content in another order, with its keys and an old hash: the same hash.
    expect(hashEntry({ after: { a: 1.5, b: 2 }, pk: 'AUDIT#x', hash: 'f'.repeat(64), sk: 'SEQ#1', action: 'merchant.created', seq: 1 })).toBe(hashEntry(entry));
    expect(hashEntry({ ...entry, seq: 2 })).not.toBe(hashEntry(entry));
  });

  it('ids carry their seq', () => {
    expect(seqOfId(auditEventId(42, 'abcdefABCDEF'))).toBe(42);
  });
});

describe('mask', () => {
  it('drops secrets, hashes, ciphertexts, bank accounts and contact data; keeps configuration and flags', () => {
    const masked = mask({
      fee_schedule: { card: { percent_bps: 250, fixed: 30 } },
      scopes: ['orders:read'],
      receipts: { email: true, sms: false },
      secret: 'whsec_x',
      active_key_hash: 'abc',
      bank_account: '000123456789',
      bank_account_ciphertext: new Uint8Array([1, 2]),
      bank_account_last4: '6789',
      payer: { email: 'a@b.c' },
      email_address: 'a@b.c',
      key: new Secret('sk_test_x'),
      note: 'sk_test_abcdefabcdefabcdefabcdefabcdefab',
      url: 'https://user:pass@shop.example/hooks?x=1',
    });
    expect(masked).toEqual({
      fee_schedule: { card: { percent_bps: 250, fixed: 30 } },
      scopes: ['orders:read'],
      receipts: { email: true, sms: false },
      bank_account_last4: '6789',
      note: '[redacted]',
      url: 'https://shop.example/hooks?x=1',
    });
  });

  it('merchants see an operator as "Payplane operator", never the principal', () => {
    expect(showActor({ type: 'operator', principal: 'arn:aws:iam::1:user/a' })).toEqual({ type: 'operator', name: 'Payplane operator' });
    expect(showActor({ type: 'merchant_key', key_id: 'key_1' })).toEqual({ type: 'merchant_key', key_id: 'key_1' });
  });
});
