import { constants, createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DescribeKeyCommand,
  EncryptCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  InvalidKeyUsageException,
  KMSClient,
  KMSInvalidMacException,
  KMSInvalidSignatureException,
  SignCommand,
  UnsupportedOperationException,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKms, type KmsEndpoint } from '../../local/kms';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * The local KMS's HMAC and asymmetric signing keys through the real @aws-sdk/client-kms, declared as
 * CDK declares them (`new kms.Key(this, 'Mac', { keySpec: KeySpec.HMAC_256, keyUsage: KeyUsage.GENERATE_VERIFY_MAC })`),
 * and the merchant's side: verifying a KMS signature with node:crypto and the DER key from GetPublicKey.
 */
const template: CfnTemplate = {
  Resources: {
    MacKey: { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } },
    OtherMacKey: { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' } },
    RsaKey: { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' } },
    EcKey: { Type: 'AWS::KMS::Key', Properties: { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' } },
    DataKey: { Type: 'AWS::KMS::Key', Properties: { EnableKeyRotation: true } },
    RsaAlias: { Type: 'AWS::KMS::Alias', Properties: { AliasName: 'alias/payplane-return-url', TargetKeyId: { 'Fn::GetAtt': ['RsaKey', 'Arn'] } } },
  },
};
const stack = new LocalStack(template, { stackName: 'Payplane-kms-sign' });
const arn = (id: string) => stack.kmsKeyArn(id);

let endpoint: KmsEndpoint;
let kms: KMSClient;
const client = (url: string) => new KMSClient({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
const message = Buffer.from('order=ord_123&status=succeeded&amount=1999&currency=USD');

beforeAll(async () => {
  endpoint = await startKms(stack, { inMemory: true });
  kms = client(endpoint.url);
});
afterAll(async () => {
  kms?.destroy();
  await endpoint?.stop();
});

describe('HMAC keys: GenerateMac / VerifyMac', () => {
  it('generates an HMAC-SHA-256 that VerifyMac accepts', async () => {
    // Act
    const { Mac, MacAlgorithm, KeyId } = await kms.send(new GenerateMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message }));
    const again = await kms.send(new GenerateMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message }));
    const verified = await kms.send(new VerifyMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message, Mac }));
    // Assess
    expect(Mac).toHaveLength(32);
    expect(Buffer.from(again.Mac!)).toEqual(Buffer.from(Mac!));
    expect({ MacAlgorithm, KeyId }).toEqual({ MacAlgorithm: 'HMAC_SHA_256', KeyId: arn('MacKey') });
    expect(verified).toMatchObject({ MacValid: true, MacAlgorithm: 'HMAC_SHA_256', KeyId: arn('MacKey') });
  });

  it('answers a MAC that does not match with KMSInvalidMacException (never MacValid: false)', async () => {
    const { Mac } = await kms.send(new GenerateMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message }));
    const tampered = Buffer.concat([message, Buffer.from('&x=1')]);
    await expect(kms.send(new VerifyMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: tampered, Mac }))).rejects.toBeInstanceOf(KMSInvalidMacException);
    await expect(kms.send(new VerifyMacCommand({ KeyId: arn('OtherMacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message, Mac }))).rejects.toBeInstanceOf(
      KMSInvalidMacException,
    );
    await expect(kms.send(new VerifyMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message, Mac: Mac!.subarray(0, 16) }))).rejects.toBeInstanceOf(
      KMSInvalidMacException,
    );
  });

  it('refuses a key or algorithm that does not fit, with InvalidKeyUsageException', async () => {
    await expect(kms.send(new GenerateMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_512', Message: message }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new GenerateMacCommand({ KeyId: arn('DataKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new EncryptCommand({ KeyId: arn('MacKey'), Plaintext: message }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new SignCommand({ KeyId: arn('MacKey'), Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new GetPublicKeyCommand({ KeyId: arn('MacKey') }))).rejects.toBeInstanceOf(UnsupportedOperationException);
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: arn('MacKey') }));
    expect(KeyMetadata).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC', MacAlgorithms: ['HMAC_SHA_256'] });
    expect(KeyMetadata!.EncryptionAlgorithms).toBeUndefined();
  });
});

describe('asymmetric keys: Sign / Verify / GetPublicKey', () => {
  const cases = [
    { key: 'RsaKey', algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' },
    { key: 'RsaKey', algorithm: 'RSASSA_PSS_SHA_256' },
    { key: 'EcKey', algorithm: 'ECDSA_SHA_256' },
  ] as const;

  it.each(cases)('$key $algorithm: KMS verifies its signature over RAW and DIGEST messages; a changed message fails', async ({ key, algorithm }) => {
    // Prepare
    const digest = createHash('sha256').update(message).digest();
    // Act
    const raw = await kms.send(new SignCommand({ KeyId: arn(key), Message: message, MessageType: 'RAW', SigningAlgorithm: algorithm }));
    const pre = await kms.send(new SignCommand({ KeyId: arn(key), Message: digest, MessageType: 'DIGEST', SigningAlgorithm: algorithm }));
    // Assess: a RAW signature verifies as DIGEST of the same message and vice versa.
    expect(raw).toMatchObject({ KeyId: arn(key), SigningAlgorithm: algorithm });
    const check = (Signature: Uint8Array, asDigest: boolean) =>
      kms.send(new VerifyCommand({ KeyId: arn(key), Message: asDigest ? digest : message, MessageType: asDigest ? 'DIGEST' : 'RAW', Signature, SigningAlgorithm: algorithm }));
    for (const [signature, asDigest] of [[raw.Signature!, false], [raw.Signature!, true], [pre.Signature!, false], [pre.Signature!, true]] as const) {
      await expect(check(signature, asDigest)).resolves.toMatchObject({ SignatureValid: true, SigningAlgorithm: algorithm, KeyId: arn(key) });
    }
    await expect(
      kms.send(new VerifyCommand({ KeyId: arn(key), Message: Buffer.from('order=ord_123&status=failed'), Signature: raw.Signature, SigningAlgorithm: algorithm })),
    ).rejects.toBeInstanceOf(KMSInvalidSignatureException);
  });

  it.each(cases)('$key $algorithm: a merchant verifies the signature with node:crypto and the DER public key', async ({ key, algorithm }) => {
    // Prepare: what a merchant downloads once.
    const published = await kms.send(new GetPublicKeyCommand({ KeyId: arn(key) }));
    const publicKey = createPublicKey({ key: Buffer.from(published.PublicKey!), format: 'der', type: 'spki' });
    const options = algorithm.startsWith('RSASSA_PSS') ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : publicKey;
    // Act
    const raw = await kms.send(new SignCommand({ KeyId: arn(key), Message: message, SigningAlgorithm: algorithm }));
    const pre = await kms.send(
      new SignCommand({ KeyId: arn(key), Message: createHash('sha256').update(message).digest(), MessageType: 'DIGEST', SigningAlgorithm: algorithm }),
    );
    // Assess
    expect(published).toMatchObject({ KeyId: arn(key), KeyUsage: 'SIGN_VERIFY', KeySpec: template.Resources[key]!.Properties!.KeySpec });
    expect(published.SigningAlgorithms).toContain(algorithm);
    expect(publicKey.asymmetricKeyType).toBe(key === 'RsaKey' ? 'rsa' : 'ec');
    expect(verify('sha256', message, options, Buffer.from(raw.Signature!))).toBe(true);
    expect(verify('sha256', message, options, Buffer.from(pre.Signature!))).toBe(true);
    expect(verify('sha256', Buffer.from('tampered'), options, Buffer.from(raw.Signature!))).toBe(false);
  });

  it('finds the key by alias, and refuses algorithms, digests and messages that do not fit', async () => {
    await expect(kms.send(new SignCommand({ KeyId: 'alias/payplane-return-url', Message: message, SigningAlgorithm: 'RSASSA_PKCS1_V1_5_SHA_256' }))).resolves.toMatchObject({
      KeyId: arn('RsaKey'),
    });
    await expect(kms.send(new SignCommand({ KeyId: arn('RsaKey'), Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new SignCommand({ KeyId: arn('EcKey'), Message: message, SigningAlgorithm: 'ECDSA_SHA_384' }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new SignCommand({ KeyId: arn('DataKey'), Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new SignCommand({ KeyId: arn('EcKey'), Message: message, MessageType: 'DIGEST', SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toMatchObject({
      name: 'ValidationException',
      message: 'Digest is invalid length for algorithm ECDSA_SHA_256.',
    });
    await expect(kms.send(new SignCommand({ KeyId: arn('EcKey'), Message: Buffer.alloc(4097), SigningAlgorithm: 'ECDSA_SHA_256' }))).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(kms.send(new GenerateMacCommand({ KeyId: arn('EcKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message }))).rejects.toBeInstanceOf(InvalidKeyUsageException);
    await expect(kms.send(new GetPublicKeyCommand({ KeyId: arn('DataKey') }))).rejects.toBeInstanceOf(UnsupportedOperationException);
    const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: arn('EcKey') }));
    expect(KeyMetadata).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'] });
  });
});

describe('key material across restarts', () => {
  const publicKeyAndMac = async (url: string) => {
    const c = client(url);
    try {
      const [pub, mac] = await Promise.all([
        c.send(new GetPublicKeyCommand({ KeyId: arn('EcKey') })),
        c.send(new GenerateMacCommand({ KeyId: arn('MacKey'), MacAlgorithm: 'HMAC_SHA_256', Message: message })),
      ]);
      return { publicKey: Buffer.from(pub.PublicKey!).toString('base64'), mac: Buffer.from(mac.Mac!).toString('base64') };
    } finally {
      c.destroy();
    }
  };

  it('keeps HMAC and signing keys in a persistent cloud (wrapped under the master secret), not in memory-only runs', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'payplane-kms-sign-'));
    const secretFile = join(dir, 'kms-master-secret');
    try {
      // Act
      const first = await startKms(stack, { secretFile });
      const before = await publicKeyAndMac(first.url);
      await first.stop();
      const second = await startKms(stack, { secretFile });
      const after = await publicKeyAndMac(second.url);
      await second.stop();
      const ephemeral = await startKms(stack, { inMemory: true });
      const other = await publicKeyAndMac(ephemeral.url);
      await ephemeral.stop();
      // Assess
      expect(after).toEqual(before);
      expect(other.publicKey).not.toBe(before.publicKey);
      expect(other.mac).not.toBe(before.mac);
      const stored = readdirSync(join(dir, 'kms-keys'));
      expect(stored).toEqual([`${stack.kmsKeyId('EcKey')}.json`]);
      expect(statSync(join(dir, 'kms-keys', stored[0]!)).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
