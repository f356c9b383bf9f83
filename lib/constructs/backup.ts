import { Aws, Duration, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import { BackupPlan, BackupPlanRule, BackupResource, BackupVault, type BackupPlanCopyActionProps, type LockConfiguration } from 'aws-cdk-lib/aws-backup';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { AccountRootPrincipal, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledge } from './acknowledge';
import type { PayplaneTable } from './payplane-table';
import { STAGE_SETTINGS, type BackupSettings, type Stage } from '../stage-config';

/**
 * When the rules run (UTC). Sunday 03:00 and the 1st at 04:00: after the daily settlement run (00:30) and never at
 * the same time as each other. A backup reads the table without consuming its capacity, so the hour is about
 * keeping the jobs apart, not load.
 */
export const BACKUP_SCHEDULES = {
  weekly: 'cron(0 3 ? * SUN *)',
  monthly: 'cron(0 4 1 * ? *)',
} as const;
/** A job that has not started within the hour is skipped (the next run comes); one that started has 8 hours. */
export const START_WINDOW = Duration.hours(1);
export const COMPLETION_WINDOW = Duration.hours(8);

/** How long each rule keeps its recovery points (and their copies), from the stage's counts. */
export function retentionOf(settings: BackupSettings): { weekly: Duration; monthly?: Duration } {
  return {
    weekly: Duration.days(settings.weeklies * 7),
    monthly: settings.monthlies > 0 ? Duration.days(Math.round((settings.monthlies * 365) / 12)) : undefined,
  };
}

/** The vault lock of a stage: its minimum and maximum retention are the plan's shortest and longest. */
export function lockOf(settings: BackupSettings): LockConfiguration | undefined {
  if (!settings.vaultLock) return undefined;
  const retention = retentionOf(settings);
  const days = [retention.weekly, retention.monthly].filter((d): d is Duration => d !== undefined).map((d) => d.toDays());
  return {
    minRetention: Duration.days(Math.min(...days)),
    maxRetention: Duration.days(Math.max(...days)),
    changeableFor: settings.vaultLock.changeableFor,
  };
}

/** Names that the stage's stack and the copy stack share (no cross-region reference: the copy stack is in another region). */
export const backupNames = (stage: Stage) => ({
  vault: `payplane-${stage}`,
  keyAlias: `alias/payplane-${stage}-backup`,
  copyVault: `payplane-${stage}-copy`,
  copyKeyAlias: `alias/payplane-${stage}-backup-copy`,
  copyStack: `Payplane-${stage}-BackupCopy`,
});

interface EncryptedVaultProps {
  readonly stage: Stage;
  readonly vaultName: string;
  readonly keyAlias: string;
  readonly description: string;
}

/**
 * A backup vault encrypted with a customer-managed key of its own (rotated yearly), locked where the stage says.
 * The key policy gives the account administration of the key, and cryptographic use only through AWS Backup or
 * DynamoDB (kms:ViaService: DynamoDB reads and writes the recovery points of its advanced backups and restores), in
 * any region (a cross-region copy is made by the other region's AWS Backup): nobody decrypts a recovery point
 * directly, whatever IAM grants them.
 */
class EncryptedVault extends Construct {
  readonly key: Key;
  readonly vault: BackupVault;

  constructor(scope: Construct, id: string, props: EncryptedVaultProps) {
    super(scope, id);
    const settings = STAGE_SETTINGS[props.stage];
    const stack = Stack.of(this);
    const account = new AccountRootPrincipal();
    this.key = new Key(this, 'Key', {
      alias: props.keyAlias,
      description: props.description,
      enableKeyRotation: true,
      removalPolicy: settings.removalPolicy,
      pendingWindow: settings.keyPendingWindow,
      policy: new PolicyDocument({
        statements: [
          // Administration only (no kms:Create*: CreateGrant would hand out use): without it the key would become
          // unmanageable (KMS's lock-out check).
          new PolicyStatement({
            sid: 'AccountAdministersTheKey',
            principals: [account],
            actions: [
              'kms:CreateAlias', 'kms:Describe*', 'kms:Enable*', 'kms:List*', 'kms:Put*', 'kms:Update*', 'kms:Revoke*',
              'kms:Disable*', 'kms:Get*', 'kms:Delete*', 'kms:TagResource', 'kms:UntagResource', 'kms:ScheduleKeyDeletion',
              'kms:CancelKeyDeletion', 'kms:RotateKeyOnDemand',
            ],
            resources: ['*'],
          }),
          // Use: delegated to IAM (the backup role's policy), and only through AWS Backup or DynamoDB.
          new PolicyStatement({
            sid: 'UseOnlyThroughAwsBackup',
            principals: [account],
            actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey', 'kms:CreateGrant', 'kms:RetireGrant'],
            resources: ['*'],
            conditions: {
              StringLike: { 'kms:ViaService': ['backup.*.amazonaws.com', 'dynamodb.*.amazonaws.com'] },
              StringEquals: { 'kms:CallerAccount': stack.account },
            },
          }),
        ],
      }),
    });
    this.vault = new BackupVault(this, 'Vault', {
      backupVaultName: props.vaultName,
      encryptionKey: this.key,
      removalPolicy: settings.removalPolicy,
      lockConfiguration: lockOf(settings.backup),
    });
  }
}

export interface PayplaneBackupProps {
  readonly stage: Stage;
  /** Every table of the stack: the selection names each by ARN. */
  readonly tables: readonly PayplaneTable[];
}

/**
 * The AWS Backup plan of the stage's tables (issue 11 §1): weekly and monthly rules with the stage's retention,
 * into a vault encrypted with its own customer-managed key; in prod the vault is locked and every recovery point
 * is copied to the vault of `Payplane-<stage>-BackupCopy` in the stage's copy region. Point-in-time recovery stays
 * on for every table (PayplaneTable): it covers the last 35 days at the second, the plan what is older.
 *
 * The tables are selected by ARN, not by tag, so a table that loses its tags (a restored one does) is still backed
 * up. The plan needs AWS Backup's advanced features for DynamoDB (docs/operations.md): the role is allowed
 * `dynamodb:StartAwsBackupJob` and not the DynamoDB-native backup actions, which would need a wildcard on backup ARNs.
 */
export class PayplaneBackup extends Construct {
  readonly key: Key;
  readonly vault: BackupVault;
  readonly plan: BackupPlan;
  /** The role AWS Backup assumes for the selection's jobs (and the copies). */
  readonly role: Role;
  /** The copy region's vault (by ARN: it lives in another stack and region), if the stage copies. */
  readonly copyVaultArn?: string;

  constructor(scope: Construct, id: string, props: PayplaneBackupProps) {
    super(scope, id);
    const { stage } = props;
    const settings = STAGE_SETTINGS[stage].backup;
    const stack = Stack.of(this);
    const names = backupNames(stage);
    if (settings.copy && settings.copy.region === stack.region) {
      throw new Error(
        `${this.node.path}: the stage's backup copy region is ${settings.copy.region}, the stack's own region. ` +
          `A copy protects against the loss of a region only in another one: set STAGE_SETTINGS.${stage}.backup.copy.region to another region.`,
      );
    }

    const vault = new EncryptedVault(this, 'Vault', {
      stage,
      vaultName: names.vault,
      keyAlias: names.keyAlias,
      description: `Payplane ${stage}: encrypts the AWS Backup recovery points of the tables`,
    });
    this.key = vault.key;
    this.vault = vault.vault;

    const retention = retentionOf(settings);
    this.copyVaultArn = settings.copy
      ? `arn:${Aws.PARTITION}:backup:${settings.copy.region}:${stack.account}:backup-vault:${names.copyVault}`
      : undefined;
    const copyActions = (deleteAfter: Duration): BackupPlanCopyActionProps[] | undefined =>
      this.copyVaultArn
        ? [{ destinationBackupVault: BackupVault.fromBackupVaultArn(this, `CopyVault${deleteAfter.toDays()}`, this.copyVaultArn), deleteAfter }]
        : undefined;
    const rule = (ruleName: string, expression: string, deleteAfter: Duration) =>
      new BackupPlanRule({
        ruleName,
        scheduleExpression: Schedule.expression(expression),
        startWindow: START_WINDOW,
        completionWindow: COMPLETION_WINDOW,
        deleteAfter,
        // No cold storage: a cold DynamoDB recovery point must stay 90 days there, and restores from it are slower.
        copyActions: copyActions(deleteAfter),
      });
    const rules = [rule('Weekly', BACKUP_SCHEDULES.weekly, retention.weekly)];
    if (retention.monthly) rules.push(rule('Monthly', BACKUP_SCHEDULES.monthly, retention.monthly));
    const lock = lockOf(settings);
    for (const r of rules) {
      const days = r.props.deleteAfter!.toDays();
      if (lock && (days < lock.minRetention.toDays() || days > lock.maxRetention!.toDays())) {
        throw new Error(`${this.node.path}: rule ${r.props.ruleName} keeps ${days} days, outside the vault lock's ${lock.minRetention.toDays()}-${lock.maxRetention!.toDays()} days: the vault would refuse its jobs.`);
      }
    }
    this.plan = new BackupPlan(this, 'Plan', { backupPlanName: `payplane-${stage}`, backupVault: this.vault, backupPlanRules: rules });

    // Least privilege, inline: AWSBackupServiceRolePolicyForBackup covers every service AWS Backup knows, on every
    // resource; this role can back up these tables into these vaults, nothing else.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('backup.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Payplane ${stage}: AWS Backup backs up the tables with it (plan payplane-${stage})`,
    });
    const tableArns = props.tables.map((t) => t.tableArn);
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'BackUpTheTables',
        actions: ['dynamodb:DescribeTable', 'dynamodb:ListTagsOfResource', 'dynamodb:StartAwsBackupJob'],
        resources: tableArns,
      }),
    );
    // Reading a table encrypted with our key: DynamoDB uses it on the role's behalf (as for every caller).
    const tableKeys = [...new Set(props.tables.map((t) => t.tableKey))] as IKey[];
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'TableKeyThroughDynamoDb',
        actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'],
        resources: tableKeys.map((k) => k.keyArn),
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${stack.region}.amazonaws.com` } },
      }),
    );
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'TableKeyGrantsThroughDynamoDb',
        actions: ['kms:CreateGrant'],
        resources: tableKeys.map((k) => k.keyArn),
        conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${stack.region}.amazonaws.com` }, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      }),
    );
    const vaultArns = [this.vault.backupVaultArn, ...(this.copyVaultArn ? [this.copyVaultArn] : [])];
    this.role.addToPrincipalPolicy(new PolicyStatement({ sid: 'IntoTheVaults', actions: ['backup:DescribeBackupVault', 'backup:CopyIntoBackupVault'], resources: vaultArns }));
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'VaultKey',
        actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'],
        resources: [this.key.keyArn],
      }),
    );
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'VaultKeyGrantsForAwsBackup',
        actions: ['kms:CreateGrant'],
        resources: [this.key.keyArn],
        conditions: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      }),
    );
    if (settings.copy) {
      // The copy vault's key is in another stack and region, so its ARN is unknown here: it is named by its alias.
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'CopyVaultKeyByAlias',
          actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
          resources: [copyKeyArnPattern(stack, settings.copy.region)],
          conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': names.copyKeyAlias } },
        }),
      );
      this.role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'CopyVaultKeyGrantsForAwsBackup',
          actions: ['kms:CreateGrant'],
          resources: [copyKeyArnPattern(stack, settings.copy.region)],
          conditions: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': names.copyKeyAlias }, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
        }),
      );
      acknowledge(
        this.role,
        `AwsSolutions-IAM5[Resource::${copyKeyArnPattern(stack, settings.copy.region).replace(Aws.PARTITION, '<AWS::Partition>')}]`,
        `The copy vault's key lives in ${names.copyStack} (${settings.copy.region}), whose key ARN this stack cannot refer to across regions; ` +
          `the statement names every key of that region and account but applies only to the one with alias ${names.copyKeyAlias} (kms:ResourceAliases), ` +
          'whose own key policy allows use only through AWS Backup or DynamoDB.',
      );
    }

    this.plan.addSelection('Tables', {
      backupSelectionName: `payplane-${stage}-tables`,
      // By ARN (not tags): explicit, and unaffected by a restored table's missing tags.
      resources: tableArns.map((arn) => BackupResource.fromArn(arn)),
      role: this.role,
      disableDefaultBackupPolicy: true,
    });
  }
}

/** Every key of the copy region (narrowed by the `kms:ResourceAliases` condition to the copy vault's key). */
export const copyKeyArnPattern = (stack: Stack, region: string) => `arn:${Aws.PARTITION}:kms:${region}:${stack.account}:key/*`;

export interface BackupCopyStackProps extends StackProps {
  readonly stage: Stage;
}

/**
 * The copy region's half of the plan: a vault (own key, same lock as the stage's vault) that the stage's rules copy
 * every recovery point into. A stack of its own because a stack lives in one region; deployed before the stage's
 * stack (which depends on it). Both sides name the vault and the key alias (backupNames) instead of referring to
 * each other across regions.
 */
export class BackupCopyStack extends Stack {
  readonly key: Key;
  readonly vault: BackupVault;

  constructor(scope: Construct, id: string, props: BackupCopyStackProps) {
    const settings = STAGE_SETTINGS[props.stage];
    super(scope, id, {
      description: `Payplane ${props.stage}: the cross-region copies of the tables' backups`,
      terminationProtection: settings.terminationProtection,
      ...props,
    });
    Tags.of(this).add('app', 'payplane');
    Tags.of(this).add('stage', props.stage);
    const names = backupNames(props.stage);
    const vault = new EncryptedVault(this, 'Vault', {
      stage: props.stage,
      vaultName: names.copyVault,
      keyAlias: names.copyKeyAlias,
      description: `Payplane ${props.stage}: encrypts the copies of the tables' recovery points (copied from ${names.vault})`,
    });
    this.key = vault.key;
    this.vault = vault.vault;
  }
}
