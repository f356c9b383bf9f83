import { afterAll, describe, expect, it } from 'vitest';
import { STAGE_SETTINGS } from '../../lib/stage-config';
import { actionsOf, cleanUp, logicalId, roleStatements, synth, type Statement } from './template';

/**
 * Issue 11 §4, signed heads (lib/constructs/audit-heads.ts): the signing key only the signer may use, the Object
 * Lock bucket (COMPLIANCE in prod), the daily schedule and the signer's least privilege, as synthesized.
 */
afterAll(cleanUp);
type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;
const resources = (stage: 'dev' | 'prod') => synth(stage).template.toJSON().Resources as Resources;
const heads = (stage: 'dev' | 'prod') => synth(stage).stack.auditHeads;

describe.each(['dev', 'prod'] as const)('stage %s', (stage) => {
  it('the signing key is ECC_NIST_P256 SIGN_VERIFY, and its policy denies kms:Sign to every principal but the signer role', () => {
    const key = resources(stage)[logicalId(heads(stage).key)]!;
    expect(key.Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    const statements = key.Properties.KeyPolicy.Statement as (Statement & { Principal?: unknown; Sid?: string })[];
    expect(statements).toContainEqual({
      Sid: 'SignOnlyByTheAuditHeadsSigner',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 'kms:Sign',
      Resource: '*',
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [logicalId(heads(stage).signer.role), 'Arn'] } } },
    });
    // No key policy statement allows Sign to anyone by name (the account root's kms:* is limited by the Deny).
    expect(statements.filter((st) => st.Effect === 'Allow' && actionsOf(st).some((a) => a === 'kms:Sign'))).toEqual([]);
  });

  it('no role but the signer is granted kms:Sign on the key; the signer signs with it and nothing else', () => {
    const keyArn = JSON.stringify({ 'Fn::GetAtt': [logicalId(heads(stage).key), 'Arn'] });
    const signers = Object.entries(resources(stage))
      .filter(([, r]) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
      .filter(([, r]) =>
        (r.Properties.PolicyDocument.Statement as Statement[]).some(
          (st) => st.Effect === 'Allow' && actionsOf(st).some((a) => a === 'kms:Sign' || a === 'kms:*') && (JSON.stringify(st.Resource) === keyArn || st.Resource === '*'),
        ),
      )
      .map(([, r]) => r.Properties.Roles);
    expect(signers).toEqual([[{ Ref: logicalId(heads(stage).signer.role) }]]);
  });

  it('the signer: gsi2 AUDIT_HEADS and BatchGetItem of AUDIT#*, Sign and GetPublicKey on its key, S3 under audit-heads/ only', () => {
    const statements = roleStatements(synth(stage), 'AuditHeadsSigner').filter((st) => !actionsOf(st).some((a) => a.startsWith('logs:') || a.startsWith('xray:')));
    const shown = statements.map((st) => `${actionsOf(st).join(',')} ${JSON.stringify(st.Resource)}${st.Condition ? ` ${JSON.stringify(st.Condition)}` : ''}`);
    const bucket = logicalId(heads(stage).bucket);
    const table = logicalId(synth(stage).stack.mainTable);
    const key = logicalId(heads(stage).key);
    const sse = logicalId(synth(stage).stack.key);
    expect(shown).toEqual([
      `dynamodb:Query {"Fn::Join":["",[{"Fn::GetAtt":["${table}","Arn"]},"/index/gsi2"]]} {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["AUDIT_HEADS"]}}`,
      `kms:Decrypt,kms:DescribeKey {"Fn::GetAtt":["${sse}","Arn"]} {"StringEquals":{"kms:ViaService":{"Fn::Join":["",["dynamodb.us-east-1.",{"Ref":"AWS::URLSuffix"}]]}}}`,
      `dynamodb:BatchGetItem {"Fn::GetAtt":["${table}","Arn"]} {"ForAllValues:StringLike":{"dynamodb:LeadingKeys":["AUDIT#*"]}}`,
      `kms:Sign {"Fn::GetAtt":["${key}","Arn"]}`,
      `kms:GetPublicKey {"Fn::GetAtt":["${key}","Arn"]}`,
      `s3:ListBucket {"Fn::GetAtt":["${bucket}","Arn"]} {"StringLike":{"s3:prefix":["audit-heads/*"]}}`,
      `s3:GetObject {"Fn::Join":["",[{"Fn::GetAtt":["${bucket}","Arn"]},"/audit-heads/*"]]}`,
      `s3:PutObject,s3:PutObjectRetention {"Fn::Join":["",[{"Fn::GetAtt":["${bucket}","Arn"]},"/audit-heads/*"]]}`,
      `kms:GenerateDataKey,kms:Decrypt {"Fn::GetAtt":["${sse}","Arn"]} {"StringEquals":{"kms:ViaService":{"Fn::Join":["",["s3.us-east-1.",{"Ref":"AWS::URLSuffix"}]]}}}`,
    ]);
  });

  it('the bucket: Object Lock with the stage default (COMPLIANCE ≥ 12 months in prod), versioned, SSE-KMS, no public access, TLS only, access logs', () => {
    const r = resources(stage);
    const bucket = r[logicalId(heads(stage).bucket)]!.Properties;
    const { lockMode, retention } = STAGE_SETTINGS[stage].auditHeads;
    expect(bucket.ObjectLockEnabled).toBe(true);
    expect(bucket.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: lockMode, Days: retention.toDays() } } });
    if (stage === 'prod') {
      expect(lockMode).toBe('COMPLIANCE');
      expect(retention.toDays()).toBeGreaterThanOrEqual(365 + 30); // PCI DSS v4 10.5.1: 12 months, and a margin
    } else expect(lockMode).toBe('GOVERNANCE');
    expect(bucket.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(bucket.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      { BucketKeyEnabled: true, ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: { 'Fn::GetAtt': [logicalId(synth(stage).stack.key), 'Arn'] } } },
    ]);
    expect(bucket.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.LoggingConfiguration).toEqual({ DestinationBucketName: { Ref: logicalId(heads(stage).accessLogs) }, LogFilePrefix: 'audit-heads-bucket/' });
    const policy = Object.values(r).find((p) => p.Type === 'AWS::S3::BucketPolicy' && p.Properties.Bucket.Ref === logicalId(heads(stage).bucket))!;
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Action: 's3:*', Principal: { AWS: '*' }, Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('the schedule invokes the signer daily, with a role that may invoke only it', () => {
    const r = resources(stage);
    const schedule = r[logicalId(heads(stage).schedule)]!.Properties;
    expect(schedule).toMatchObject({
      ScheduleExpression: STAGE_SETTINGS[stage].auditHeads.schedule.expression,
      ScheduleExpressionTimezone: 'UTC',
      State: 'ENABLED',
      Target: { Arn: { 'Fn::GetAtt': [logicalId(heads(stage).signer.fn), 'Arn'] }, RoleArn: { 'Fn::GetAtt': [logicalId(heads(stage).scheduleRole), 'Arn'] } },
    });
    expect(schedule.ScheduleExpression).toMatch(/^cron\(\d+ \d+ \* \* \? \*\)$/); // once a day
    const roleStatements = Object.values(r)
      .filter((p) => p.Type === 'AWS::IAM::Policy' && JSON.stringify(p.Properties.Roles).includes(`"${logicalId(heads(stage).scheduleRole)}"`))
      .flatMap((p) => p.Properties.PolicyDocument.Statement);
    expect(roleStatements).toEqual([{ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: { 'Fn::GetAtt': [logicalId(heads(stage).signer.fn), 'Arn'] } }]);
  });
});
