import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Key, KeySpec, KeyUsage, type IKey } from 'aws-cdk-lib/aws-kms';
import { BlockPublicAccess, Bucket, BucketEncryption, CfnBucket, ObjectLockRetention, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
import { AUDIT_HEADS_PREFIX } from '../../functions/audit/heads';
import { STAGE_SETTINGS, type Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import { PayplaneFunction, withVariable } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

/** Where the audit heads bucket's server access logs go in AccessLogs. */
const ACCESS_LOG_PREFIX = 'audit-heads-bucket/';

export interface AuditHeadsProps {
  readonly stage: Stage;
  /** The main table: the chain heads are its `AUDIT#<chain>`/`HEAD` items, listed through gsi2 `AUDIT_HEADS`. */
  readonly table: PayplaneTable;
  /** Encrypts the signed documents at rest (SSE-KMS). */
  readonly encryptionKey: IKey;
}

/**
 * Signed audit chain heads (issue 11 §4, docs/audit.md § Signed heads). A hash chain alone does not stop someone
 * who can write the table: they can rewrite from an edit onwards or cut the tail. So once a day the signer lists
 * every chain's head, signs the list with a key only it may use, and writes it where nobody can change it:
 *
 * - `Key`: ECC_NIST_P256 SIGN_VERIFY. Its key policy denies kms:Sign to every principal but the signer's role, so
 *   no IAM policy (an administrator's included) can sign a forged document; verifiers need only GetPublicKey.
 * - `Bucket`: versioned, Object Lock with the stage's default retention (COMPLIANCE, 400 days in prod), SSE-KMS,
 *   TLS only, no public access, server access logs to `AccessLogs`.
 * - `Signer` (functions/handlers/sign-audit-heads.ts) and its daily EventBridge Scheduler `Schedule`.
 *
 * Construct ids are a contract (logical ids).
 */
export class AuditHeads extends Construct {
  readonly key: Key;
  readonly bucket: Bucket;
  readonly accessLogs: Bucket;
  readonly signer: PayplaneFunction;
  readonly schedule: scheduler.Schedule;
  readonly scheduleRole: iam.Role;
  readonly functions: { AuditHeadsSigner: PayplaneFunction };

  constructor(scope: Construct, id: string, props: AuditHeadsProps) {
    super(scope, id);
    const { stage } = props;
    const settings = STAGE_SETTINGS[stage];
    const heads = settings.auditHeads;
    const stack = Stack.of(this);

    this.signer = new PayplaneFunction(this, 'Signer', {
      stage,
      entry: 'functions/handlers/sign-audit-heads.ts',
      description: 'Signs every audit chain head (KMS ECDSA P-256) and writes the document to the Object Lock bucket, daily',
      // Thousands of chains are a few pages of gsi2 and BatchGetItem; a failed run is redone by the next call.
      timeout: Duration.minutes(2),
      retryAttempts: 0,
      environment: { AUDIT_HEADS_LOCK_MODE: heads.lockMode, AUDIT_HEADS_RETENTION_DAYS: String(heads.retention.toDays()) },
    })
      // The index lists the chains (its projection carries keys only); the heads' seq and hash, and the entries at
      // the previously signed seqs, are read from the table itself, consistently.
      .bindTable(props.table, { indexes: ['gsi2'], onlyPartitions: ['AUDIT_HEADS'] })
      .bindTable(props.table, { actions: ['BatchGetItem'], onlyPartitions: ['AUDIT#*'] });

    // Asymmetric keys do not rotate (and verifiers pin the public key): kept for the life of the stage.
    this.key = withVariable(
      new Key(this, 'Key', {
        alias: `alias/payplane-${stage}-audit-heads`,
        description: `Payplane ${stage}: signs the daily audit chain heads (ECDSA P-256); only the AuditHeads signer may Sign`,
        keySpec: KeySpec.ECC_NIST_P256,
        keyUsage: KeyUsage.SIGN_VERIFY,
        removalPolicy: settings.removalPolicy,
        pendingWindow: settings.keyPendingWindow,
      }),
      'AUDIT_HEADS_KEY_ARN',
    );
    // The default key policy lets the account's IAM policies grant anything on the key; this takes Sign out of
    // that, for everyone but the signer (changing the policy back is a PutKeyPolicy that CloudTrail records).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'SignOnlyByTheAuditHeadsSigner',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['kms:Sign'],
        resources: ['*'],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': this.signer.role.roleArn } },
      }),
    );
    // Sign; GetPublicKey to verify the previous document before holding the chains to it.
    this.signer.bindSignKey(this.key).bindPublicKey(this.key);

    this.bucket = new Bucket(this, 'Bucket', {
      objectLockEnabled: true,
      objectLockDefaultRetention:
        heads.lockMode === 'COMPLIANCE' ? ObjectLockRetention.compliance(heads.retention) : ObjectLockRetention.governance(heads.retention),
      versioned: true,
      encryption: BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      // Current documents are kept (a few KB a day). A version someone hid behind a delete marker stays until its
      // lock ends (S3 refuses to expire it sooner), then goes.
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1), noncurrentVersionExpiration: heads.retention }],
      removalPolicy: settings.removalPolicy,
    });

    // Server access logs: who read or tried to write a signed head (PCI DSS v4 10.2.1.3 asks for access to audit
    // trails to be logged). Delivered under a bucket policy, not an ACL (CT.S3.PR.5).
    this.accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(stage === 'prod' ? 400 : 30), noncurrentVersionExpiration: Duration.days(1) }],
      removalPolicy: settings.removalPolicy,
    });
    this.accessLogs.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'ServerAccessLogsOfTheAuditHeadsBucket',
        principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [this.accessLogs.arnForObjects(`${ACCESS_LOG_PREFIX}*`)],
        conditions: { ArnLike: { 'aws:SourceArn': this.bucket.bucketArn }, StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    (this.bucket.node.defaultChild as CfnBucket).loggingConfiguration = { destinationBucketName: this.accessLogs.bucketName, logFilePrefix: ACCESS_LOG_PREFIX };
    acknowledge(this.accessLogs, 'AwsSolutions-S1', 'This is the access log bucket of the signed audit heads bucket: logging its own access would loop.');
    acknowledge(this.accessLogs, 'cdk-validator-cfnguard::s3_bucket_logging_enabled_check', 'CT.S3.PR.2: this is the access log bucket of the signed audit heads bucket: logging its own access would loop.');
    acknowledge(
      this.accessLogs,
      'cdk-validator-cfnguard::s3_bucket_default_encryption_kms_check',
      'CT.S3.PR.10: S3 server access log delivery writes only to buckets encrypted with SSE-S3 (AES256), not SSE-KMS.',
    );
    acknowledge(
      this.accessLogs,
      'cdk-validator-cfnguard::s3_bucket_object_lock_enabled_check',
      'CT.S3.PR.9: S3 server access logging does not deliver to a bucket with an Object Lock default retention; the logs are versioned and kept 400 days in prod.',
    );
    for (const b of [this.bucket, this.accessLogs]) {
      acknowledge(b, 'cdk-validator-cfnguard::s3_event_notifications_enabled_check', 'CT.S3.PR.4: nothing consumes object events here: the signer writes one object a day and verifiers read on demand.');
    }

    this.signer.fn.addEnvironment('AUDIT_HEADS_BUCKET', this.bucket.bucketName);
    // Reads the previous documents (the newest that verifies): list the prefix, get an object.
    this.signer.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${AUDIT_HEADS_PREFIX}*`] } } }),
    );
    this.signer.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [this.bucket.arnForObjects(`${AUDIT_HEADS_PREFIX}*`)] }));
    // PutObjectRetention: S3 asks for it when PutObject carries x-amz-object-lock-* headers (the signer states the
    // bucket's default retention on every object, so the document says how long it is kept).
    this.signer.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject', 's3:PutObjectRetention'], resources: [this.bucket.arnForObjects(`${AUDIT_HEADS_PREFIX}*`)] }),
    );
    // S3 asks KMS for the object's data key (writes) or to open it (reads) in the caller's name; only through S3.
    this.signer.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
        resources: [props.encryptionKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.${stack.urlSuffix}` } },
      }),
    );
    acknowledge(
      this.signer,
      `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/${AUDIT_HEADS_PREFIX}*]`,
      `Each run writes a new object named by its timestamp under ${AUDIT_HEADS_PREFIX}; the prefix is the narrowest resource that names them all (nothing else of the bucket).`,
    );
    this.functions = { AuditHeadsSigner: this.signer };

    // ── The daily schedule: after the settlement run (00:30), so the day's run is in that day's document ───
    this.scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Invokes the ${stage} audit heads signer on its schedule (lambda:InvokeFunction on it only)`,
    });
    this.scheduleRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.signer.fn.functionArn] }));
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: `Signs the audit chain heads daily (${heads.schedule.expression}, ${heads.schedule.timeZone})`,
      schedule: scheduler.ScheduleExpression.expression(heads.schedule.expression, TimeZone.of(heads.schedule.timeZone)),
      // The role's one grant is below: LambdaInvoke's own adds `<function>:*` too (versions and aliases: none here).
      target: new targets.LambdaInvoke(this.signer.fn, {
        role: this.scheduleRole.withoutPolicyUpdates(),
        input: scheduler.ScheduleTargetInput.fromObject({ source: 'schedule' }),
        maxEventAge: Duration.hours(1),
        retryAttempts: 10,
      }),
    });
  }
}
