import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, CfnOutput, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AttributeType, StreamViewType } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { afterAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION } from '../../lib/app';
import { BACKUP_SCHEDULES, backupNames, COMPLETION_WINDOW, START_WINDOW } from '../../lib/constructs/backup';
import { PayplaneTable } from '../../lib/constructs/payplane-table';
import { PayplaneStack } from '../../lib/payplane-stack';
import { STAGE_SETTINGS, STAGES, type RestoredTable, type Stage } from '../../lib/stage-config';
import { actionsOf, cleanUp, logicalId, synth, type Statement } from './template';

/**
 * Issue 11 §1: the AWS Backup plan of the tables, as synthesized for every stage (the stages synthesized once, shared
 * with the other infra files), and the adoption of a restored table (§2: restoredTables, a resource import).
 */
afterAll(cleanUp);

type Resource = { Type: string; Properties: Record<string, any>; DeletionPolicy?: string };
const resources = (stage: Stage) => synth(stage).template.toJSON().Resources as Record<string, Resource>;
const ofType = (stage: Stage, type: string) => Object.entries(resources(stage)).filter(([, r]) => r.Type === type);
const only = (stage: Stage, type: string): [string, Resource] => {
  const found = ofType(stage, type);
  expect(found, type).toHaveLength(1);
  return found[0]!;
};
const plan = (stage: Stage) => only(stage, 'AWS::Backup::BackupPlan')[1].Properties.BackupPlan;
const rules = (stage: Stage) => plan(stage).BackupPlanRule as Record<string, any>[];
const vault = (stage: Stage) => only(stage, 'AWS::Backup::BackupVault');
const getAtt = (id: string, attribute: string) => ({ 'Fn::GetAtt': [id, attribute] });
const copyStackTemplate = (stage: Stage) => synth(stage).assembly.getStackByName(backupNames(stage).copyStack).template as { Resources: Record<string, Resource> };
const copyVaultArn = (region: string, stage: Stage) => ({
  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:backup:${region}:${PLACEHOLDER_ACCOUNT}:backup-vault:${backupNames(stage).copyVault}`]],
});
/** What the stage's settings ask for, written out (8 weeklies = 56 days, 12 monthlies = 365 days). */
const EXPECTED: Record<Stage, { weekly: number; monthly?: number; lock?: { min: number; max: number; changeable: number }; copyRegion?: string }> = {
  prod: { weekly: 56, monthly: 365, lock: { min: 56, max: 365, changeable: 7 }, copyRegion: 'us-west-2' },
  dev: { weekly: 14 },
  test: { weekly: 14 },
};

describe.each(STAGES)('stage %s: the backup plan', (stage) => {
  const expected = EXPECTED[stage];

  it('the settings are the issue\'s: prod 8 weeklies and 12 monthlies, locked and copied; dev and test 2 weeklies', () => {
    const b = STAGE_SETTINGS[stage].backup;
    expect({ weeklies: b.weeklies, monthlies: b.monthlies }).toEqual(stage === 'prod' ? { weeklies: 8, monthlies: 12 } : { weeklies: 2, monthlies: 0 });
    expect(b.vaultLock !== undefined).toBe(stage === 'prod');
    expect(b.copy?.region).toBe(expected.copyRegion);
  });

  it('rules: weekly on Sundays 03:00 UTC (and monthly on the 1st 04:00 in prod), retention by stage, no cold storage', () => {
    const got = rules(stage);
    expect(got.map((r) => r.RuleName)).toEqual(expected.monthly ? ['Weekly', 'Monthly'] : ['Weekly']);
    const [weekly, monthly] = got;
    expect(weekly).toMatchObject({ ScheduleExpression: BACKUP_SCHEDULES.weekly, Lifecycle: { DeleteAfterDays: expected.weekly } });
    expect(BACKUP_SCHEDULES.weekly).toBe('cron(0 3 ? * SUN *)');
    if (expected.monthly) {
      expect(monthly).toMatchObject({ ScheduleExpression: BACKUP_SCHEDULES.monthly, Lifecycle: { DeleteAfterDays: expected.monthly } });
      expect(BACKUP_SCHEDULES.monthly).toBe('cron(0 4 1 * ? *)');
    }
    for (const rule of got) {
      expect(rule.Lifecycle.MoveToColdStorageAfterDays, rule.RuleName).toBeUndefined();
      expect(rule.EnableContinuousBackup, `${rule.RuleName}: PITR is the tables' own, not the plan's`).toBeUndefined();
      expect(rule.StartWindowMinutes).toBe(START_WINDOW.toMinutes());
      expect(rule.CompletionWindowMinutes).toBe(COMPLETION_WINDOW.toMinutes());
      expect(rule.TargetBackupVault).toEqual(getAtt(vault(stage)[0], 'BackupVaultName'));
    }
  });

  it('the vault is encrypted with a customer-managed key of its own, rotated, usable only through AWS Backup or DynamoDB', () => {
    const [, v] = vault(stage);
    expect(v.Properties.BackupVaultName).toBe(`payplane-${stage}`);
    const keyId = v.Properties.EncryptionKeyArn['Fn::GetAtt'][0] as string;
    expect(v.Properties.EncryptionKeyArn).toEqual(getAtt(keyId, 'Arn'));
    const key = resources(stage)[keyId]!;
    expect(key.Type).toBe('AWS::KMS::Key');
    expect(keyId, 'not the tables\' key').not.toBe(logicalId(synth(stage).stack.key));
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT');
    expect(v.DeletionPolicy).toBe(stage === 'prod' ? 'Retain' : 'Delete');
    // Least privilege: every Allow that grants a cryptographic action is conditioned on AWS Backup or DynamoDB.
    const crypto = /^kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey|CreateGrant|RetireGrant|\*)/;
    for (const st of key.Properties.KeyPolicy.Statement as Statement[]) {
      if (st.Effect !== 'Allow' || !actionsOf(st).some((a) => crypto.test(a))) continue;
      expect(st.Condition?.StringLike?.['kms:ViaService'], JSON.stringify(st)).toEqual(['backup.*.amazonaws.com', 'dynamodb.*.amazonaws.com']);
      expect(st.Condition?.StringEquals?.['kms:CallerAccount']).toBe(PLACEHOLDER_ACCOUNT);
    }
    expect(JSON.stringify(key.Properties.KeyPolicy)).not.toContain('"kms:*"');
    expect(JSON.stringify(key.Properties.KeyPolicy), 'no kms:Create* (CreateGrant) for the administrators').not.toContain('"kms:Create*"');
    const alias = ofType(stage, 'AWS::KMS::Alias').find(([, a]) => JSON.stringify(a.Properties.TargetKeyId).includes(`"${keyId}"`))!;
    expect(alias[1].Properties.AliasName).toBe(`alias/payplane-${stage}-backup`);
  });

  it(`vault lock: ${stage === 'prod' ? 'min/max retention = the rules\' shortest/longest, changeable 7 days' : 'none'}`, () => {
    const lock = vault(stage)[1].Properties.LockConfiguration;
    if (!expected.lock) return expect(lock).toBeUndefined();
    expect(lock).toEqual({ MinRetentionDays: expected.lock.min, MaxRetentionDays: expected.lock.max, ChangeableForDays: expected.lock.changeable });
    // Every rule (and copy) keeps its recovery points within the lock, or the vault would refuse its jobs.
    for (const rule of rules(stage)) {
      for (const days of [rule.Lifecycle.DeleteAfterDays, ...(rule.CopyActions ?? []).map((c: any) => c.Lifecycle.DeleteAfterDays)]) {
        expect(days).toBeGreaterThanOrEqual(lock.MinRetentionDays);
        expect(days).toBeLessThanOrEqual(lock.MaxRetentionDays);
      }
    }
    expect(lock.ChangeableForDays, 'AWS\'s minimum cooling-off period is 3 days').toBeGreaterThanOrEqual(3);
  });

  it(`copy: ${stage === 'prod' ? 'every rule copies to the copy vault in us-west-2, kept as long' : 'none, and no copy stack'}`, () => {
    for (const rule of rules(stage)) {
      if (!expected.copyRegion) {
        expect(rule.CopyActions).toBeUndefined();
        continue;
      }
      expect(rule.CopyActions).toEqual([{ DestinationBackupVaultArn: copyVaultArn(expected.copyRegion, stage), Lifecycle: { DeleteAfterDays: rule.Lifecycle.DeleteAfterDays } }]);
    }
    const stacks = synth(stage).assembly.stacks.map((a) => a.stackName).sort();
    expect(stacks).toEqual(expected.copyRegion ? [`Payplane-${stage}`, backupNames(stage).copyStack].sort() : [`Payplane-${stage}`]);
  });

  it('the selection names every table of the stack by ARN (no tag condition), with the plan\'s own role', () => {
    const [, selection] = only(stage, 'AWS::Backup::BackupSelection');
    const tables = ofType(stage, 'AWS::DynamoDB::GlobalTable').map(([id]) => id);
    expect([...tables].sort()).toEqual([logicalId(synth(stage).stack.mainTable), logicalId(synth(stage).stack.idempotencyTable)].sort());
    const selected = selection.Properties.BackupSelection.Resources as unknown[];
    expect(selected).toHaveLength(tables.length);
    expect(selected).toEqual(expect.arrayContaining(tables.map((id) => getAtt(id, 'Arn'))));
    expect(selection.Properties.BackupSelection.ListOfTags).toBeUndefined();
    expect(selection.Properties.BackupSelection.Conditions).toBeUndefined();
    expect(selection.Properties.BackupSelection.IamRoleArn).toEqual(getAtt(logicalId(synth(stage).stack.backup.role), 'Arn'));
  });

  it('point-in-time recovery stays on for every table', () => {
    const tables = ofType(stage, 'AWS::DynamoDB::GlobalTable');
    expect(tables.length).toBeGreaterThanOrEqual(2);
    for (const [id, t] of tables) {
      for (const replica of t.Properties.Replicas) expect(replica.PointInTimeRecoverySpecification, id).toEqual({ PointInTimeRecoveryEnabled: true });
    }
  });

  it('the role: assumed by AWS Backup of this account only, no managed policy, least privilege on named resources', () => {
    const s = synth(stage);
    const roleId = logicalId(s.stack.backup.role);
    const role = resources(stage)[roleId]!;
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'backup.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': PLACEHOLDER_ACCOUNT } } },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const statements = ofType(stage, 'AWS::IAM::Policy')
      .filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(`"${roleId}"`))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as (Statement & { Sid: string })[]);
    const bySid = Object.fromEntries(statements.map((st) => [st.Sid, st]));
    const tables = [getAtt(logicalId(s.stack.mainTable), 'Arn'), getAtt(logicalId(s.stack.idempotencyTable), 'Arn')];
    expect(bySid.BackUpTheTables).toMatchObject({ Action: ['dynamodb:DescribeTable', 'dynamodb:ListTagsOfResource', 'dynamodb:StartAwsBackupJob'], Resource: tables });
    expect(bySid.TableKeyThroughDynamoDb).toMatchObject({
      Resource: getAtt(logicalId(s.stack.key), 'Arn'),
      Condition: { StringEquals: { 'kms:ViaService': `dynamodb.${PLACEHOLDER_REGION}.amazonaws.com` } },
    });
    const vaultArns = [getAtt(vault(stage)[0], 'BackupVaultArn'), ...(expected.copyRegion ? [copyVaultArn(expected.copyRegion, stage)] : [])];
    expect(bySid.IntoTheVaults).toMatchObject({ Action: ['backup:DescribeBackupVault', 'backup:CopyIntoBackupVault'], Resource: vaultArns.length === 1 ? vaultArns[0] : vaultArns });
    expect(bySid.VaultKeyGrantsForAwsBackup).toMatchObject({ Action: 'kms:CreateGrant', Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } } });
    // Never a DynamoDB-native backup action (they need a wildcard on backup ARNs: the plan relies on advanced features).
    const actions = statements.flatMap(actionsOf);
    expect(actions.filter((a) => /^dynamodb:(CreateBackup|DeleteBackup|DescribeBackup|Restore)/.test(a))).toEqual([]);
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    for (const st of statements) expect(st.Resource, st.Sid).not.toBe('*');
    if (expected.copyRegion) {
      expect(bySid.CopyVaultKeyByAlias).toMatchObject({ Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': backupNames(stage).copyKeyAlias } } });
      expect(JSON.stringify(bySid.CopyVaultKeyByAlias!.Resource)).toContain(`:kms:${expected.copyRegion}:${PLACEHOLDER_ACCOUNT}:key/*`);
      expect(actionsOf(bySid.CopyVaultKeyByAlias!)).not.toContain('kms:CreateGrant');
      expect(bySid.CopyVaultKeyGrantsForAwsBackup).toMatchObject({
        Action: 'kms:CreateGrant',
        Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': backupNames(stage).copyKeyAlias }, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      });
    } else {
      expect(bySid.CopyVaultKeyByAlias).toBeUndefined();
      expect(bySid.CopyVaultKeyGrantsForAwsBackup).toBeUndefined();
    }
    // kms:CreateGrant only for AWS resources (AWS Backup's and DynamoDB's own grants), wherever it is allowed.
    for (const st of statements.filter((x) => actionsOf(x).includes('kms:CreateGrant'))) {
      expect(st.Condition?.Bool?.['kms:GrantIsForAWSResource'], st.Sid).toBe('true');
    }
  });
});

describe('prod: the copy stack in the copy region', () => {
  it('a vault named as the plan copies to, its own rotated key with the alias the role names, the same lock', () => {
    const t = copyStackTemplate('prod');
    const s = synth('prod');
    const copyStack = s.assembly.getStackByName(backupNames('prod').copyStack);
    expect(copyStack.environment).toMatchObject({ account: PLACEHOLDER_ACCOUNT, region: 'us-west-2' });
    expect(s.assembly.getStackByName('Payplane-prod').dependencies.map((d) => d.id)).toContain(copyStack.id);
    const vaults = Object.values(t.Resources).filter((r) => r.Type === 'AWS::Backup::BackupVault');
    expect(vaults).toHaveLength(1);
    expect(vaults[0]!.Properties).toMatchObject({ BackupVaultName: 'payplane-prod-copy', LockConfiguration: vault('prod')[1].Properties.LockConfiguration });
    expect(vaults[0]!.DeletionPolicy).toBe('Retain');
    const keyId = vaults[0]!.Properties.EncryptionKeyArn['Fn::GetAtt'][0];
    expect(t.Resources[keyId]!.Properties.EnableKeyRotation).toBe(true);
    const alias = Object.values(t.Resources).find((r) => r.Type === 'AWS::KMS::Alias')!;
    expect(alias.Properties).toEqual({ AliasName: backupNames('prod').copyKeyAlias, TargetKeyId: getAtt(keyId, 'Arn') });
  });

  it('the copy stack is checked like the stage\'s: cdk-nag finds nothing', () => {
    const { checks, app } = synth('prod');
    const report = checks.validateScope(app.node.findChild(backupNames('prod').copyStack));
    expect(report.violations.map((v) => v.ruleName)).toEqual([]);
  });
});

// ── Adopting a restored table (docs/operations.md § Adopting a restored table) ────────────────────────────────────

const RESTORED = 'Payplane-prod-MainTable-restored-20261202';
const STREAM = `arn:aws:dynamodb:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:table/${RESTORED}/stream/2026-12-02T07:00:00.000`;

/** A bare stack with one PayplaneTable and a consumer of its name, ARN and stream ARN. */
function tableStack(restored?: RestoredTable) {
  const stack = new Stack(new App(), 'Tables', { env: { account: PLACEHOLDER_ACCOUNT, region: PLACEHOLDER_REGION } });
  const table = new PayplaneTable(stack, 'MainTable', {
    stage: 'prod',
    restored,
    encryptionKey: new Key(stack, 'Key'),
    partitionKey: { name: 'pk', type: AttributeType.STRING },
    dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES,
  });
  new CfnOutput(stack, 'Uses', { value: [table.tableName, table.tableArn, table.tableStreamArn!].join(' ') });
  const template = Template.fromStack(stack).toJSON();
  return { table, template, id: logicalId(table) };
}

describe('restoredTables: a restored table adopted through a resource import', () => {
  it('adopted (no step): the same resource, now naming the restored table; references as usual', () => {
    const before = tableStack();
    const after = tableStack({ tableName: RESTORED });
    expect(after.id).toBe(before.id);
    expect(after.template.Resources[after.id].Properties.TableName).toBe(RESTORED);
    expect(before.template.Resources[before.id].Properties.TableName).toBeUndefined();
    expect(JSON.stringify(after.template.Outputs.Uses)).toContain(`{"Ref":"${after.id}"}`);
  });

  it('import: the resource (same logical id, the restored name, RETAIN in prod) and only literal uses of it', () => {
    const { template, id } = tableStack({ tableName: RESTORED, step: 'import', streamArn: STREAM });
    expect(template.Resources[id]).toMatchObject({ Type: 'AWS::DynamoDB::GlobalTable', DeletionPolicy: 'Retain', Properties: { TableName: RESTORED } });
    expect(template.Outputs.Uses.Value).toEqual({
      'Fn::Join': ['', [`${RESTORED} arn:`, { Ref: 'AWS::Partition' }, `:dynamodb:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:table/${RESTORED} ${STREAM}`]],
    });
  });

  it('detach: no table resource at all, and the uses name the restored table', () => {
    const { template, id } = tableStack({ tableName: RESTORED, step: 'detach', streamArn: STREAM });
    expect(template.Resources[id]).toBeUndefined();
    expect(Object.values(template.Resources as Record<string, Resource>).filter((r) => r.Type.startsWith('AWS::DynamoDB::'))).toEqual([]);
    expect(JSON.stringify(template.Outputs.Uses)).toContain(STREAM);
  });

  it('refuses a step without the stream ARN of a table with a stream, naming the setting and the command that gives it', () => {
    expect(() => tableStack({ tableName: RESTORED, step: 'detach' })).toThrow(
      `Tables/MainTable: restoredTables names '${RESTORED}' at step 'detach' without its streamArn. This table has a stream, which the publisher reads: ` +
        `enable it on the restored table and set streamArn to \`aws dynamodb describe-table --table-name ${RESTORED} --query Table.LatestStreamArn\`.`,
    );
  });

  it('the whole stack: detach refers to the main table nowhere; import adds exactly the table resource and changes nothing else', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'payplane-restored-'));
    try {
      const build = (step: 'detach' | 'import') => {
        const app = new App({ outdir: join(outdir, step), postCliContext: { [BUNDLING_STACKS]: [] } });
        const stack = new PayplaneStack(app, 'Payplane-prod', {
          stage: 'prod',
          restoredTables: { main: { tableName: RESTORED, step, streamArn: STREAM } },
          env: { account: PLACEHOLDER_ACCOUNT, region: PLACEHOLDER_REGION },
        });
        return { stack, template: Template.fromStack(stack).toJSON() as { Resources: Record<string, Resource>; Outputs: Record<string, unknown> } };
      };
      const detach = build('detach');
      const imported = build('import');
      const mainId = logicalId(imported.stack.mainTable);
      const text = JSON.stringify(detach.template);
      expect(detach.template.Resources[mainId]).toBeUndefined();
      expect(text).not.toContain(`"${mainId}"`);
      // The publisher's mapping reads the restored table's stream; the plan backs the restored table up.
      const mapping = Object.values(detach.template.Resources).find((r) => r.Type === 'AWS::Lambda::EventSourceMapping' && JSON.stringify(r.Properties.EventSourceArn).includes('stream'))!;
      expect(mapping.Properties.EventSourceArn).toBe(STREAM);
      const selection = Object.values(detach.template.Resources).find((r) => r.Type === 'AWS::Backup::BackupSelection')!;
      expect(JSON.stringify(selection.Properties.BackupSelection.Resources)).toContain(`:table/${RESTORED}`);
      // import = detach + the table resource: an import change set may contain nothing else.
      const { [mainId]: table, ...rest } = imported.template.Resources;
      expect(table).toMatchObject({ Type: 'AWS::DynamoDB::GlobalTable', Properties: { TableName: RESTORED } });
      expect(rest).toEqual(detach.template.Resources);
      expect(imported.template.Outputs).toEqual(detach.template.Outputs);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
