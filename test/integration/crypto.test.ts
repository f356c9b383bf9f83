import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  KmsKeyringNode,
} from '@aws-crypto/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { open, seal } from '../../functions/commons/crypto';
import { Secret } from '../../functions/commons/secret';
import { useLocalServices } from './env';

/** Envelope encryption of PII (commons/crypto.ts) against the KMS emulator. */
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
let keyArn: string;
const binding = { purpose: 'payer', merchantId: 'mch_a', recordId: 'ord_1' };

beforeAll(() => {
  keyArn = useLocalServices().kmsKeyArn;
});

describe('seal and open', () => {
  it('round-trips a value with a key-committing, unsigned suite bound to merchant and purpose', async () => {
    // Act
    const sealed = await seal(new Secret({ email: 'payer@example.com' }), binding);
    // Assess
    const { messageHeader } = await decrypt(new KmsKeyringNode({ keyIds: [keyArn] }), sealed);
    expect(messageHeader.suiteId).toBe(AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY);
    expect(messageHeader.encryptionContext).toEqual({ purpose: 'payer', merchant_id: 'mch_a' });
    expect(Buffer.from(sealed).toString('latin1')).not.toContain('payer@example.com');
    expect((await open<{ email: string }>(sealed, binding)).reveal()).toEqual({ email: 'payer@example.com' });
  });

  it('refuses a value moved to another record, merchant or purpose', async () => {
    const sealed = await seal(new Secret('x'), binding);
    await expect(open(sealed, { ...binding, recordId: 'ord_2' })).rejects.toThrow(/another record/);
    await expect(open(sealed, { ...binding, merchantId: 'mch_b' })).rejects.toThrow(/another record/);
    await expect(open(sealed, { ...binding, purpose: 'card' })).rejects.toThrow(/another record/);
  });

  it('refuses a tampered ciphertext', async () => {
    const sealed = await seal(new Secret('x'), binding);
    sealed[sealed.length - 20]! ^= 1;
    await expect(open(sealed, binding)).rejects.toThrow();
  });

  it('still opens values sealed with the signing suite used before', async () => {
    // Prepare: what the previous version wrote (the SDK's default suite, ECDSA P-384 signed)
    const plaintext = JSON.stringify({ record: binding.recordId, value: 'older' });
    const { result } = await encrypt(new KmsKeyringNode({ generatorKeyId: keyArn }), plaintext, {
      encryptionContext: { purpose: binding.purpose, merchant_id: binding.merchantId },
    });
    // Act + Assess
    expect((await open<string>(result, binding)).reveal()).toBe('older');
  });
});
