import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
} from '@aws-crypto/client-node';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMS,
  KMSClient,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKms, type KmsEndpoint } from '../../local/kms';
import { LocalStack, type CfnTemplate } from '../../local/template';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'local-cloud');
const template = JSON.parse(readFileSync(join(FIXTURE, 'Payplane-fixture.template.json'), 'utf8')) as CfnTemplate;
// Two keys: the fixture's, plus a second one to prove ciphertexts are bound to their key.
const twoKeys: CfnTemplate = { ...template, Resources: { ...template.Resources, OtherKey1234ABCD: { Type: 'AWS::KMS::Key', Properties: {} } } };
const stack = new LocalStack(twoKeys, { stackName: 'Payplane-fixture' });
const keyArn = stack.kmsKeyArn('DataKey9C0B3FD2');
const otherArn = stack.kmsKeyArn('OtherKey1234ABCD');

let endpoint: KmsEndpoint;
let kms: KMSClient;
const clientConfig = (url: string) => ({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
const client = (url: string) => new KMSClient(clientConfig(url));

beforeAll(async () => {
  endpoint = await startKms(stack, { inMemory: true });
  kms = client(endpoint.url);
});
afterAll(async () => {
  kms.destroy();
  await endpoint.stop();
});

describe('local KMS through @aws-sdk/client-kms', () => {
  it('encrypts and decrypts under the template key; Decrypt answers the full key ARN', async () => {
    // Act
    const enc = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('4242 4242'), EncryptionContext: { order: 'ord_1' } }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { order: 'ord_1' } }));
    // Assess
    expect(enc.KeyId).toBe(keyArn);
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('4242 4242');
    expect(dec.KeyId).toBe(keyArn);
    expect(dec.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');
  });

  it('fails like KMS when the encryption context differs, is missing or the blob is tampered', async () => {
    const enc = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('x'), EncryptionContext: { order: 'ord_1', merchant: 'm' } }));
    // Same pairs in another order are the same context.
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { merchant: 'm', order: 'ord_1' } }))).resolves.toBeDefined();
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { order: 'ord_2', merchant: 'm' } }))).rejects.toBeInstanceOf(
      InvalidCiphertextException,
    );
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).rejects.toBeInstanceOf(InvalidCiphertextException);
    const tampered = Buffer.from(enc.CiphertextBlob!);
    tampered[tampered.length - 1]! ^= 1;
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: { order: 'ord_1', merchant: 'm' } }))).rejects.toBeInstanceOf(
      InvalidCiphertextException,
    );
  });

  it('binds ciphertexts to their key: naming another key in Decrypt is IncorrectKeyException', async () => {
    const enc = await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('x') }));
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: otherArn }))).rejects.toBeInstanceOf(IncorrectKeyException);
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, KeyId: keyArn }))).resolves.toMatchObject({ KeyId: keyArn });
  });

  it('generates data keys whose ciphertext decrypts to the same plaintext', async () => {
    const key = await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/payplane-fixture', KeySpec: 'AES_256', EncryptionContext: { a: 'b' } }));
    expect(key.Plaintext).toHaveLength(32);
    expect(key.KeyId).toBe(keyArn);
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: key.CiphertextBlob, EncryptionContext: { a: 'b' } }));
    expect(Buffer.from(dec.Plaintext!).equals(Buffer.from(key.Plaintext!))).toBe(true);
    const sixteen = await kms.send(new GenerateDataKeyCommand({ KeyId: keyArn, NumberOfBytes: 16 }));
    expect(sixteen.Plaintext).toHaveLength(16);
  });

  it('describes keys by id, ARN or alias and refuses unknown keys', async () => {
    const byAlias = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/payplane-fixture' }));
    expect(byAlias.KeyMetadata).toMatchObject({ Arn: keyArn, KeyId: keyArn.split('/')[1], Enabled: true, KeyUsage: 'ENCRYPT_DECRYPT', KeyState: 'Enabled' });
    await expect(kms.send(new DescribeKeyCommand({ KeyId: keyArn.split('/')[1] }))).resolves.toMatchObject({ KeyMetadata: { Arn: keyArn } });
    await expect(kms.send(new DescribeKeyCommand({ KeyId: 'alias/nope' }))).rejects.toBeInstanceOf(NotFoundException);
    await expect(kms.send(new EncryptCommand({ KeyId: 'arn:aws:kms:us-east-1:000000000000:key/00000000-0000-4000-8000-000000000000', Plaintext: Buffer.from('x') }))).rejects.toBeInstanceOf(
      NotFoundException,
    );
  });

  it('serves the AWS Encryption SDK (KmsKeyringNode + caching CMM), which reuses data keys', async () => {
    // Prepare
    endpoint.kms.resetStats();
    const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: () => new KMS(clientConfig(endpoint.url)) }),
      cache: getLocalCryptographicMaterialsCache(100),
      maxAge: 60_000,
      maxMessagesEncrypted: 100,
    });
    // Act
    const messages = [];
    for (let i = 0; i < 5; i++) messages.push((await encrypt(cmm, `secret ${i}`, { encryptionContext: { merchant: 'm1' } })).result);
    const opened = await decrypt(cmm, messages[3]!);
    // Assess
    expect(opened.plaintext.toString()).toBe('secret 3');
    expect(opened.messageHeader.encryptionContext).toMatchObject({ merchant: 'm1' });
    expect(endpoint.kms.stats().GenerateDataKey).toBe(1);
    expect(endpoint.kms.stats().Decrypt ?? 0).toBeLessThanOrEqual(1);
  });

  it('counts calls per operation, also over GET /__stats', async () => {
    endpoint.kms.resetStats();
    await kms.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('x') }));
    await kms.send(new DescribeKeyCommand({ KeyId: keyArn })).catch(() => {});
    const stats = (await (await fetch(`${endpoint.url}/__stats`)).json()) as Record<string, number>;
    expect(stats).toEqual({ DescribeKey: 1, Encrypt: 1 });
    // Without IAM the caller is the access key id (with it, the function's logical id).
    expect(endpoint.kms.statsByCaller()).toEqual({ local: { DescribeKey: 1, Encrypt: 1 } });
  });
});

describe('local KMS master secret', () => {
  it('persists the master secret, so a restarted persistent cloud still decrypts; in-memory runs do not', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'payplane-kms-'));
    const secretFile = join(dir, 'kms-master-secret');
    try {
      const first = await startKms(stack, { secretFile });
      const c1 = client(first.url);
      const enc = await c1.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('kept') }));
      c1.destroy();
      await first.stop();

      const second = await startKms(stack, { secretFile });
      const c2 = client(second.url);
      const dec = await c2.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).toString()).toBe('kept');
      c2.destroy();
      await second.stop();

      const fresh = await startKms(stack, { inMemory: true });
      const c3 = client(fresh.url);
      await expect(c3.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).rejects.toBeInstanceOf(InvalidCiphertextException);
      c3.destroy();
      await fresh.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
