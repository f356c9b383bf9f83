import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { checkAgainstSignedHead, latestVerifiedSignedHeads } from '../../functions/audit/heads';
import { cloud } from './support';

/**
 * The signed heads as deployed: the daily schedule fired through the local cloud's admin route runs the bundled
 * signer under its own role (IAM enforced: gsi2, BatchGetItem, kms:Sign, the S3 prefix, SSE-KMS through S3); the
 * operator then reads and verifies the newest document with docs/operator-policy.json's grants only, as
 * `payplane audit verify` does.
 */
const c = cloud();
const local = { region: c.region };
// The chain is written behind the product's back (the administrator), the way an audit entry lands.
const admin = DynamoDBDocumentClient.from(new DynamoDBClient({ ...local, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
const operator = { ...local, credentials: c.operatorCredentials };
const s3 = new S3Client({ ...operator, endpoint: c.endpoints.s3, forcePathStyle: true });
const kms = new KMSClient({ ...operator, endpoint: c.endpoints.kms });
afterAll(() => {
  admin.destroy();
  s3.destroy();
  kms.destroy();
});

describe('signed audit heads', () => {
  it('the schedule signs every chain head; the operator verifies the newest document with the public key', async () => {
    // Arrange
    const chain = `merchant:mch_e2eheads${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    const hash = 'ab'.repeat(32);
    await admin.send(new PutCommand({ TableName: c.tables.main!, Item: { pk: `AUDIT#${chain}`, sk: 'SEQ#000000000001', object: 'audit_event', chain, seq: 1, prev_hash: '0'.repeat(64), hash } }));
    await admin.send(
      new PutCommand({ TableName: c.tables.main!, Item: { pk: `AUDIT#${chain}`, sk: 'HEAD', seq: 1, hash, updated_at: new Date().toISOString(), gsi2pk: 'AUDIT_HEADS', gsi2sk: chain } }),
    );
    const { rules } = (await (await fetch(`${c.endpoints.admin}/__schedules`)).json()) as { rules: { logicalId: string }[] };
    const schedule = rules.find((r) => r.logicalId.startsWith('AuditHeadsSchedule'));
    const sign = async () => {
      const trigger = await fetch(`${c.endpoints.admin}/__schedules/${schedule!.logicalId}/trigger`, { method: 'POST' });
      return { trigger, run: (await trigger.json()) as { results: { ok: boolean; error?: string; payload?: { key: string; chains: number } }[] } };
    };
    // Act: twice, so the second run reads and verifies the first document before it holds the chains to it
    const first = await sign();
    const { trigger, run } = await sign();
    const latest = await latestVerifiedSignedHeads({ s3, kms, bucket: c.auditHeads!.bucket, keyId: c.auditHeads!.keyArn });
    // Assess
    expect(first.run.results[0]!.error).toBeUndefined();
    expect(trigger.status).toBe(200);
    expect(run.results).toHaveLength(1);
    expect(run.results[0]!.error).toBeUndefined();
    expect(latest?.key).toBe(run.results[0]!.payload!.key);
    expect(latest!.key > first.run.results[0]!.payload!.key).toBe(true);
    // Other e2e files cut chains on purpose in the same cloud (their breaks are reported): this chain is intact.
    expect((latest!.document.breaks ?? []).map((b) => b.chain)).not.toContain(chain);
    expect(latest!.document.chains).toContainEqual({ chain, seq: 1, hash });
    expect(checkAgainstSignedHead(chain, [{ seq: 1, hash }], latest!.document)).toEqual({ ok: true, signed: true });
    expect(checkAgainstSignedHead(chain, [], latest!.document)).toMatchObject({ ok: false, broken: 'tail_cut', lastSignedSeq: 1, found: 0 });
  });
});
