import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import canonicalize from 'canonicalize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalBytes,
  checkAgainstSignedHead,
  latestVerifiedSignedHeads,
  signAuditHeads,
  SignedHeadsError,
  verifySignedHeads,
  type SignedHeads,
  type SignerDeps,
} from '../../functions/audit/heads';
import { dynamo, s3 } from '../../functions/commons/clients';
import { useLocalServices } from './env';

/**
 * Signed audit heads against DynamoDB Local (the template's table), the KMS emulator (the template's
 * ECC_NIST_P256 signing key) and the local S3 (the template's Object Lock bucket). Chains are written as the
 * audit data model lays them out (COMMON: entries `AUDIT#<chain>`/`SEQ#…`, head `HEAD` in gsi2 `AUDIT_HEADS`),
 * each test on a chain of its own: other files of the tier may add chains, never touch these.
 */
const services = useLocalServices();
let kms: KMSClient;
let deps: SignerDeps;

beforeAll(() => {
  kms = new KMSClient({});
  deps = {
    db: dynamo(),
    kms,
    s3: s3(),
    tableName: services.tables.main,
    keyId: services.auditHeads.keyArn,
    bucket: services.auditHeads.bucket,
    lock: { mode: 'GOVERNANCE', retentionDays: 1 },
  };
});
afterAll(() => kms?.destroy());

const verifier = () => ({ s3: deps.s3, kms, bucket: deps.bucket, keyId: deps.keyId });
const seqKey = (seq: number) => `SEQ#${String(seq).padStart(12, '0')}`;

/** Appends `count` entries to `chain` and moves its head, as commitAudited does (without the transaction). */
async function append(chain: string, count: number, from = 0, prev = '0'.repeat(64)): Promise<{ seq: number; hash: string }[]> {
  const out: { seq: number; hash: string }[] = [];
  for (let seq = from + 1; seq <= from + count; seq++) {
    const entry = {
      object: 'audit_event',
      id: `aud_${randomUUID().replace(/-/g, '')}`,
      chain,
      seq,
      prev_hash: prev,
      action: 'merchant.fees_set',
      actor: { type: 'operator', principal: 'arn:aws:sts::000000000000:assumed-role/PayplaneOperator/test' },
      target: { type: 'merchant', id: chain.slice('merchant:'.length) },
      request_id: randomUUID(),
      created_at: new Date().toISOString(),
    };
    const hash = createHash('sha256').update(canonicalize(entry)!).digest('hex');
    await deps.db.send(new PutCommand({ TableName: deps.tableName, Item: { pk: `AUDIT#${chain}`, sk: seqKey(seq), ...entry, hash } }));
    out.push({ seq, hash });
    prev = hash;
  }
  await setHead(chain, out.at(-1)!);
  return out;
}

async function setHead(chain: string, head: { seq: number; hash: string }): Promise<void> {
  await deps.db.send(
    new PutCommand({
      TableName: deps.tableName,
      Item: { pk: `AUDIT#${chain}`, sk: 'HEAD', seq: head.seq, hash: head.hash, updated_at: new Date().toISOString(), gsi2pk: 'AUDIT_HEADS', gsi2sk: chain },
    }),
  );
}

async function entriesOf(chain: string): Promise<{ seq: number; hash: string }[]> {
  const out = await deps.db.send(
    new QueryCommand({ TableName: deps.tableName, KeyConditionExpression: 'pk = :pk AND begins_with(sk, :s)', ExpressionAttributeValues: { ':pk': `AUDIT#${chain}`, ':s': 'SEQ#' }, ConsistentRead: true }),
  );
  return (out.Items ?? []).map((i) => ({ seq: Number(i.seq), hash: String(i.hash) }));
}

const newChain = () => `merchant:mch_heads${randomUUID().replace(/-/g, '').slice(0, 16)}`;

describe('the daily signer', () => {
  it('writes a document listing every chain head, signed over its RFC 8785 JSON, that node:crypto verifies with the KMS public key', async () => {
    // Arrange
    const chain = newChain();
    const written = await append(chain, 3);
    // Act
    const { key, signed } = await signAuditHeads(deps);
    // Assess: the object, read back from S3, verifies against GetPublicKey's DER key alone
    expect(key).toMatch(/^audit-heads\/\d{4}-\d{2}-\d{2}\/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\.json$/);
    expect(key.slice('audit-heads/'.length, 'audit-heads/'.length + 10)).toBe(signed.document.signed_at.slice(0, 10));
    const object = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: key }));
    expect(object.ObjectLockMode).toBe('GOVERNANCE');
    expect(object.ObjectLockRetainUntilDate!.getTime() - Date.parse(signed.document.signed_at)).toBe(86_400_000);
    const stored = JSON.parse(await object.Body!.transformToString()) as SignedHeads;
    const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: deps.keyId }));
    const publicKey = createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
    expect(verify('sha256', Buffer.from(canonicalize(stored.document)!), publicKey, Buffer.from(stored.signature, 'base64'))).toBe(true);
    expect(stored.document).toMatchObject({ format: 'payplane.audit-heads.v1', key_id: deps.keyId });
    expect(stored.document.chains).toContainEqual({ chain, seq: 3, hash: written[2]!.hash });
    expect(stored.document.breaks).toBeUndefined();
    const latest = await latestVerifiedSignedHeads(verifier());
    expect(latest!.document.signed_at >= stored.document.signed_at).toBe(true);
  });

  it('a document altered after signing, or signed with another key, fails verification', async () => {
    // Arrange
    await append(newChain(), 1);
    const { signed } = await signAuditHeads(deps);
    const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: deps.keyId }));
    const publicKey = createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
    const tampered: SignedHeads = structuredClone(signed);
    tampered.document.chains[0]!.seq += 1;
    const otherKey: SignedHeads = { ...structuredClone(signed), document: { ...signed.document, key_id: services.kmsKeyArn } };
    // Act + Assess
    expect(verifySignedHeads(JSON.stringify(signed), publicKey, deps.keyId).chains).toEqual(signed.document.chains);
    expect(verify('sha256', canonicalBytes(tampered.document), publicKey, Buffer.from(tampered.signature, 'base64'))).toBe(false);
    expect(() => verifySignedHeads(JSON.stringify(tampered), publicKey, deps.keyId, 'x.json')).toThrow(SignedHeadsError);
    expect(() => verifySignedHeads(JSON.stringify(tampered), publicKey, deps.keyId, 'x.json')).toThrow(/signature does not match/);
    expect(() => verifySignedHeads(JSON.stringify(otherKey), publicKey, deps.keyId)).toThrow(/not the audit heads key/);
  });

  it('a newer object in the prefix that is not signed by the key fails audit verify, and the next signing skips it', async () => {
    // Arrange: someone with s3:PutObject writes a "newer" document of their own
    const chain = newChain();
    const written = await append(chain, 2);
    const { signed } = await signAuditHeads(deps);
    const forgedAt = new Date(Date.parse(signed.document.signed_at) + 1).toISOString();
    const forged: SignedHeads = { ...signed, document: { ...signed.document, signed_at: forgedAt, chains: [] } };
    const forgedKey = `audit-heads/${forgedAt.slice(0, 10)}/${forgedAt}.json`;
    await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: forgedKey, Body: JSON.stringify(forged) }));
    // Act + Assess
    await expect(latestVerifiedSignedHeads(verifier())).rejects.toThrow(new RegExp(`${forgedKey.replace(/[.]/g, '\\.')}: the signature does not match`));
    const skipped: string[] = [];
    const next = await signAuditHeads({ ...deps, log: (message, fields) => skipped.push(`${message} ${String(fields.key)}`), now: () => new Date(Date.parse(forgedAt) + 1) });
    expect(skipped).toEqual([`signed audit heads document fails verification; skipped ${forgedKey}`]);
    expect(next.signed.document.chains).toContainEqual({ chain, seq: 2, hash: written[1]!.hash });
    expect((await latestVerifiedSignedHeads(verifier()))?.key).toBe(next.key);
  });
});

describe('a cut tail', () => {
  it('is reported against the last signed head, and the next signing does not sign it away', async () => {
    // Arrange: 4 entries, signed; then the last two deleted and the head rolled back to seq 2
    const chain = newChain();
    const written = await append(chain, 4);
    await signAuditHeads(deps);
    expect(checkAgainstSignedHead(chain, await entriesOf(chain), (await latestVerifiedSignedHeads(verifier()))!.document)).toEqual({ ok: true, signed: true });
    for (const seq of [3, 4]) await deps.db.send(new DeleteCommand({ TableName: deps.tableName, Key: { pk: `AUDIT#${chain}`, sk: seqKey(seq) } }));
    await setHead(chain, written[1]!);
    // Act
    const latest = (await latestVerifiedSignedHeads(verifier()))!;
    const cut = checkAgainstSignedHead(chain, await entriesOf(chain), latest.document);
    const logged: unknown[] = [];
    const resigned = await signAuditHeads({ ...deps, log: (message, fields) => logged.push({ message, ...fields }) });
    // Assess
    expect(cut).toEqual({ ok: false, broken: 'tail_cut', chain, lastSignedSeq: 4, lastSignedHash: written[3]!.hash, found: 2, signedAt: latest.document.signed_at });
    expect(resigned.signed.document.chains).toContainEqual({ chain, seq: 4, hash: written[3]!.hash });
    expect(resigned.signed.document.breaks).toContainEqual({ chain, signed_seq: 4, signed_hash: written[3]!.hash, head_seq: 2 });
    expect(logged).toContainEqual(expect.objectContaining({ message: 'audit chain no longer holds its signed head', chain, signed_seq: 4, head_seq: 2 }));
    expect(checkAgainstSignedHead(chain, await entriesOf(chain), (await latestVerifiedSignedHeads(verifier()))!.document)).toMatchObject({ broken: 'tail_cut', lastSignedSeq: 4, found: 2 });
  });

  it('a chain rewritten from a signed entry on (hashes recomputed, extended past it) is a signed_hash_mismatch', async () => {
    // Arrange: 2 entries signed; then rewritten from seq 2 and extended to 3
    const chain = newChain();
    const written = await append(chain, 2);
    await signAuditHeads(deps);
    await deps.db.send(new DeleteCommand({ TableName: deps.tableName, Key: { pk: `AUDIT#${chain}`, sk: seqKey(2) } }));
    const rewritten = await append(chain, 2, 1, written[0]!.hash);
    // Act
    const latest = (await latestVerifiedSignedHeads(verifier()))!;
    const check = checkAgainstSignedHead(chain, await entriesOf(chain), latest.document);
    const resigned = await signAuditHeads(deps);
    // Assess
    expect(check).toMatchObject({ ok: false, broken: 'signed_hash_mismatch', chain, lastSignedSeq: 2, lastSignedHash: written[1]!.hash, foundHash: rewritten[0]!.hash });
    expect(resigned.signed.document.chains).toContainEqual({ chain, seq: 2, hash: written[1]!.hash });
    expect(resigned.signed.document.breaks).toContainEqual({ chain, signed_seq: 2, signed_hash: written[1]!.hash, head_seq: 3 });
  });

  it('a chain the document does not name yet (created since) passes, a grown one too', async () => {
    const chain = newChain();
    const written = await append(chain, 1);
    const { signed } = await signAuditHeads(deps);
    expect(checkAgainstSignedHead(newChain(), [], signed.document)).toEqual({ ok: true, signed: false });
    await append(chain, 2, 1, written[0]!.hash);
    expect(checkAgainstSignedHead(chain, await entriesOf(chain), signed.document)).toEqual({ ok: true, signed: true });
  });
});
