import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { AuthenticationError, InvalidRequestError } from '../../functions/commons/errors';
import { generateSecretKey, hashSecretKey, isSecretKey, keyHint, newKeyId, parseBearer } from '../../functions/merchants/keys';
import { allowWholeApi, wholeApiResource } from '../../functions/merchants/policy';
import { validateMerchantId, validateMerchantName } from '../../functions/merchants/validation';

describe('secret key generation', () => {
  it('is sk_test_ followed by 32 base62 characters', () => {
    // Act
    const key = generateSecretKey().reveal();
    // Assess
    expect(key).toMatch(/^sk_test_[A-Za-z0-9]{32}$/);
    expect(key).toHaveLength(40);
    expect(isSecretKey(key)).toBe(true);
  });

  it('never repeats across many keys and uses the whole alphabet about evenly', () => {
    // Prepare / Act
    const keys = Array.from({ length: 20_000 }, () => generateSecretKey().reveal());
    // Assess: uniqueness
    expect(new Set(keys).size).toBe(keys.length);
    // Assess: 640k characters over 62 symbols ≈ 10,323 each; modulo bias (256 % 62) would push
    // the first 8 symbols ~25% above the rest, far outside these bounds.
    const counts = new Map<string, number>();
    for (const key of keys) for (const ch of key.slice(8)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(62);
    const expected = (keys.length * 32) / 62;
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.06);
  });

  it('refuses to print itself', () => {
    const key = generateSecretKey();
    expect(JSON.stringify({ key })).not.toContain('sk_test_');
    expect(String(key)).not.toContain('sk_test_');
    expect(inspect(key)).not.toContain('sk_test_');
  });

  it('gives key ids their own prefix', () => {
    expect(newKeyId()).toMatch(/^key_[A-Za-z0-9]{24}$/);
  });

  it('rejects look-alikes', () => {
    for (const bad of ['', 'sk_test_', 'sk_live_' + 'a'.repeat(32), 'sk_test_' + 'a'.repeat(31), 'sk_test_' + 'a'.repeat(33), 'sk_test_' + 'a'.repeat(31) + '-', ' sk_test_' + 'a'.repeat(32)]) {
      expect(isSecretKey(bad), bad).toBe(false);
    }
  });
});

describe('hashing', () => {
  it('is the sha256 hex of the whole key, prefix included', () => {
    const key = 'sk_test_' + 'A'.repeat(32);
    expect(hashSecretKey(key)).toBe(createHash('sha256').update(key).digest('hex'));
    expect(hashSecretKey(key)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('hashes a Secret like its plaintext', () => {
    const key = generateSecretKey();
    expect(hashSecretKey(key)).toBe(hashSecretKey(key.reveal()));
  });

  it('shows at most the last 4 characters as a hint', () => {
    expect(keyHint('sk_test_abcdefghijklmnopqrstuvwxyz123456')).toBe('…3456');
    expect(keyHint('short')).toBe('…');
  });
});

describe('Authorization header parsing', () => {
  const key = 'sk_test_' + 'Z9'.repeat(16);

  it('accepts the Bearer scheme in any case', () => {
    expect(parseBearer(`Bearer ${key}`).reveal()).toBe(key);
    expect(parseBearer(`bearer ${key}`).reveal()).toBe(key);
    expect(parseBearer(`  BEARER   ${key} `).reveal()).toBe(key);
  });

  it.each([
    ['missing', undefined, 'api_key_missing'],
    ['empty', '   ', 'api_key_missing'],
    ['another scheme', `Basic ${key}`, 'api_key_malformed'],
    ['no scheme', key, 'api_key_malformed'],
    ['two tokens', `Bearer ${key} extra`, 'api_key_malformed'],
    ['not a secret key', 'Bearer pk_test_123', 'api_key_malformed'],
  ])('rejects %s', (_, header, code) => {
    expect(() => parseBearer(header)).toThrow(AuthenticationError);
    try {
      parseBearer(header);
    } catch (error) {
      expect((error as AuthenticationError).code).toBe(code);
      expect((error as AuthenticationError).status).toBe(401);
      // A wrong value never comes back in the message.
      if (header?.trim()) expect((error as Error).message).not.toContain(header.trim());
    }
  });
});

describe('merchant input validation', () => {
  it('trims and accepts 1 to 100 characters, counting code points', () => {
    expect(validateMerchantName('  Acme Coffee ')).toBe('Acme Coffee');
    expect(validateMerchantName('x')).toBe('x');
    expect(validateMerchantName('é'.repeat(100))).toHaveLength(100);
    expect(validateMerchantName('😀'.repeat(100))).toBe('😀'.repeat(100));
  });

  function failure(fn: () => unknown): InvalidRequestError {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidRequestError);
      return error as InvalidRequestError;
    }
    throw new Error('expected an InvalidRequestError');
  }

  it('names the field, the value and the fix for an empty name', () => {
    const error = failure(() => validateMerchantName('   '));
    expect(error.param).toBe('name');
    expect(error.code).toBe('parameter_invalid');
    expect(error.message).toBe(
      `Invalid 'name': got "   " (0 characters after trimming). A merchant name must be 1 to 100 characters; pass a non-empty name, e.g. "Acme Coffee".`,
    );
  });

  it('says to shorten a name over 100 characters', () => {
    const error = failure(() => validateMerchantName('a'.repeat(101)));
    expect(error.message).toContain('(101 characters after trimming)');
    expect(error.message).toContain('shorten it');
    expect(error.message.length).toBeLessThan(250); // the value is abbreviated
  });

  it('refuses control characters', () => {
    const error = failure(() => validateMerchantName('Acme\nINFO forged log line'));
    expect(error.message).toContain('control character');
  });

  it('reports a missing name as missing', () => {
    const error = failure(() => validateMerchantName(undefined));
    expect(error.code).toBe('parameter_missing');
    expect(error.message).toContain("Missing required parameter 'name'");
  });

  it('checks merchant ids', () => {
    expect(validateMerchantId('mch_demo')).toBe('mch_demo');
    const error = failure(() => validateMerchantId('merchant-1'));
    expect(error.param).toBe('merchant_id');
    expect(error.message).toContain(`got "merchant-1"`);
    expect(error.message).toContain("'mch_'");
  });
});

describe('authorizer policy', () => {
  const methodArn = 'arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/GET/v1/orders/ord_123';

  it('allows every method and path of the stage', () => {
    expect(wholeApiResource(methodArn)).toBe('arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/*/*');
  });

  it('carries the merchant as principal, string context with the key\'s scopes, and the merchant\'s usage key', () => {
    const result = allowWholeApi(methodArn, { merchantId: 'mch_1', keyId: 'key_1', livemode: false, scopes: 'orders:read' });
    expect(result.principalId).toBe('mch_1');
    expect(result.context).toEqual({ merchantId: 'mch_1', keyId: 'key_1', livemode: 'false', scopes: 'orders:read' });
    expect(result.usageIdentifierKey).toBe('payplane-usage-mch_1');
    expect(result.policyDocument.Statement).toEqual([
      { Action: 'execute-api:Invoke', Effect: 'Allow', Resource: 'arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/dev/*/*' },
    ]);
  });

  it('refuses an ARN that is not an execute-api method ARN', () => {
    expect(() => wholeApiResource('arn:aws:lambda:eu-west-1:123456789012:function:x')).toThrow(/Unexpected methodArn/);
  });
});
