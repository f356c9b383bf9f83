import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalIam } from '../../local/iam';
import { startS3, type S3Endpoint } from '../../local/s3';
import { LocalStack, type CfnTemplate } from '../../local/template';

/**
 * The local S3 through the real @aws-sdk/client-s3 (path-style), on buckets declared as CDK declares them, with
 * local IAM enforcing the template's grants: a writer function granted s3:PutObject/GetObject/ListBucket under
 * `heads/`, and a reader granted only s3:GetObject.
 */
const role = () => ({ Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: { Statement: [] } } });
const template: CfnTemplate = {
  Resources: {
    Locked: {
      Type: 'AWS::S3::Bucket',
      Properties: { ObjectLockEnabled: true, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 400 } } }, VersioningConfiguration: { Status: 'Enabled' } },
    },
    Governed: {
      Type: 'AWS::S3::Bucket',
      Properties: { ObjectLockEnabled: true, ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } }, VersioningConfiguration: { Status: 'Enabled' } },
    },
    WriterRole: role(),
    ReaderRole: role(),
    Writer: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['WriterRole', 'Arn'] } } },
    Reader: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['ReaderRole', 'Arn'] } } },
    WriterPolicy: {
      Type: 'AWS::IAM::Policy',
      Properties: {
        Roles: [{ Ref: 'WriterRole' }],
        PolicyDocument: {
          Statement: [
            { Effect: 'Allow', Action: ['s3:PutObject', 's3:PutObjectRetention', 's3:GetObject', 's3:GetObjectVersion', 's3:DeleteObject', 's3:DeleteObjectVersion'], Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Locked', 'Arn'] }, '/heads/*']] } },
            { Effect: 'Allow', Action: ['s3:DeleteObjectVersion', 's3:PutObject'], Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Governed', 'Arn'] }, '/*']] } },
            { Effect: 'Allow', Action: 's3:ListBucket', Resource: { 'Fn::GetAtt': ['Locked', 'Arn'] }, Condition: { StringLike: { 's3:prefix': ['heads/*'] } } },
          ],
        },
      },
    },
    ReaderPolicy: {
      Type: 'AWS::IAM::Policy',
      Properties: { Roles: [{ Ref: 'ReaderRole' }], PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': ['Locked', 'Arn'] }, '/heads/*']] } }] } },
    },
  },
};
const stack = new LocalStack(template, { stackName: 'Payplane-s3' });
const iam = new LocalIam(stack, { log: () => {} });
const bucket = stack.bucketName('Locked');

let root: string;
let endpoint: S3Endpoint;
let writer: S3Client;
let reader: S3Client;
const client = (fn: string) => new S3Client({ endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, credentials: iam.credentialsFor(fn) });
const put = (key: string, body: string, c = writer, b = bucket) => c.send(new PutObjectCommand({ Bucket: b, Key: key, Body: body, ContentType: 'application/json' }));
const denied = async (p: Promise<unknown>) => {
  const error = (await p.then(() => undefined, (e: unknown) => e)) as S3ServiceException | undefined;
  return { name: error?.name, status: error?.$metadata?.httpStatusCode, message: error?.message };
};

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'payplane-s3-test-'));
  endpoint = await startS3(stack, { root, iam });
  writer = client('Writer');
  reader = client('Reader');
});
afterAll(async () => {
  writer?.destroy();
  reader?.destroy();
  await endpoint?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('objects', () => {
  it('puts, gets, heads and lists (prefix, delimiter, continuation), locked by the bucket default', async () => {
    // Arrange
    for (const key of ['heads/2026-01-01/a.json', 'heads/2026-01-02/b.json', 'heads/2026-01-02/c.json', 'heads/2026-01-03/d.json']) await put(key, JSON.stringify({ key }));
    // Act
    const got = await writer.send(new GetObjectCommand({ Bucket: bucket, Key: 'heads/2026-01-02/b.json' }));
    const head = await reader.send(new HeadObjectCommand({ Bucket: bucket, Key: 'heads/2026-01-02/b.json' }));
    const days = await writer.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'heads/', Delimiter: '/' }));
    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await writer.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'heads/', MaxKeys: 3, ContinuationToken: token }));
      pages.push((page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    // Assess
    expect(JSON.parse(await got.Body!.transformToString())).toEqual({ key: 'heads/2026-01-02/b.json' });
    expect(got.ContentType).toBe('application/json');
    expect(got.ObjectLockMode).toBe('COMPLIANCE');
    expect(got.ObjectLockRetainUntilDate!.getTime() - got.LastModified!.getTime()).toBeGreaterThan(399 * 86_400_000);
    expect(head).toMatchObject({ ContentLength: JSON.stringify({ key: 'heads/2026-01-02/b.json' }).length, VersionId: got.VersionId, ETag: got.ETag });
    expect((days.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(['heads/2026-01-01/', 'heads/2026-01-02/', 'heads/2026-01-03/']);
    expect(pages).toEqual([['heads/2026-01-01/a.json', 'heads/2026-01-02/b.json', 'heads/2026-01-02/c.json'], ['heads/2026-01-03/d.json']]);
    // Persisted where it was written: the bucket's directory, the key as its path.
    expect(JSON.parse(readFileSync(join(root, bucket, 'heads/2026-01-03/d.json'), 'utf8'))).toEqual({ key: 'heads/2026-01-03/d.json' });
  });

  it('a COMPLIANCE-locked version cannot be deleted; a DELETE only hides it behind a marker, and a PUT adds a version', async () => {
    // Arrange
    const key = 'heads/locked.json';
    const first = await put(key, '{"v":1}');
    // Act
    const refused = await denied(writer.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, VersionId: first.VersionId })));
    const second = await put(key, '{"v":2}');
    const marker = await writer.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    const gone = await denied(writer.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
    const kept = await writer.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: first.VersionId }));
    const earlyRetention = await denied(
      writer.send(new PutObjectCommand({ Bucket: bucket, Key: 'heads/past.json', Body: '{}', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: new Date(Date.now() - 1000), ChecksumAlgorithm: 'SHA256' })),
    );
    // Assess
    expect(refused).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(refused.message).toMatch(/object lock \(COMPLIANCE until/);
    expect(second.VersionId).not.toBe(first.VersionId);
    expect(marker.DeleteMarker).toBe(true);
    expect(gone).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect(await kept.Body!.transformToString()).toBe('{"v":1}');
    expect(earlyRetention).toMatchObject({ name: 'InvalidArgument', status: 400 });
  });

  it('a GOVERNANCE-locked version goes only with x-amz-bypass-governance-retention and the grant for it', async () => {
    const governed = stack.bucketName('Governed');
    const { VersionId } = await put('x.json', '{}', writer, governed);
    // The writer has s3:DeleteObjectVersion here, not s3:BypassGovernanceRetention.
    expect(await denied(writer.send(new DeleteObjectCommand({ Bucket: governed, Key: 'x.json', VersionId })))).toMatchObject({ name: 'AccessDenied', status: 403 });
    const bypass = await denied(writer.send(new DeleteObjectCommand({ Bucket: governed, Key: 'x.json', VersionId, BypassGovernanceRetention: true })));
    expect(bypass).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(bypass.message).toMatch(/not authorized to perform: s3:BypassGovernanceRetention/);
  });
});

describe('IAM', () => {
  it("refuses what a principal's policies do not grant, in S3's words", async () => {
    const write = await denied(put('heads/reader.json', '{}', reader));
    const list = await denied(reader.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'heads/' })));
    const outside = await denied(put('other/x.json', '{}'));
    const listOutside = await denied(writer.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'other/' })));
    const stranger = new S3Client({ endpoint: endpoint.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'AKIANOBODY', secretAccessKey: 'x' } });
    const unknown = await denied(stranger.send(new GetObjectCommand({ Bucket: bucket, Key: 'heads/2026-01-01/a.json' })));
    stranger.destroy();
    expect(write).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(write.message).toMatch(new RegExp(`is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::${bucket}/heads/reader.json`));
    expect(list.message).toMatch(new RegExp(`s3:ListBucket on resource: arn:aws:s3:::${bucket} `));
    expect(outside).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(listOutside).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(unknown).toMatchObject({ name: 'InvalidAccessKeyId', status: 403 });
    expect(iam.report().principals.Reader!.refusals).toContain(`s3:PutObject arn:aws:s3:::${bucket}/heads/reader.json`);
  });
});
