import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { CfnKey } from 'aws-cdk-lib/aws-kms';
import { BUNDLING_STACKS, VALIDATE_AGAINST_DEFAULT_RULES, VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import type { IConstruct } from 'constructs';
import { afterAll, describe, expect, it } from 'vitest';
import { addComplianceChecks, buildApp, optionsFromContext, PLACEHOLDER_ACCOUNT, PLACEHOLDER_REGION } from '../../lib/app';
import { PayplaneFunction } from '../../lib/constructs/payplane-function';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { STAGE_SETTINGS, STAGES } from '../../lib/stage-config';
import { cleanUp, synth } from './template';

afterAll(cleanUp);

/**
 * Every acknowledged cdk-nag finding, by rule. A new suppression must be added here on purpose (with its
 * reason in the code), so none slips in unreviewed.
 */
const ACKNOWLEDGED = [
  'AwsSolutions-APIG2',
  'AwsSolutions-APIG4',
  'AwsSolutions-COG4',
  'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
  'AwsSolutions-IAM5[Resource::*]',
  'AwsSolutions-L1',
  // lib/constructs/audit-heads.ts: the access log bucket logs nothing of its own; the signer writes under one prefix.
  'AwsSolutions-S1',
  'AwsSolutions-IAM5[Resource::<AuditHeadsBucketE6DF1D3D.Arn>/audit-heads/*]',
  // lib/constructs/operator-api.ts: usage plans and their keys are created at run time, per merchant.
  `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:${PLACEHOLDER_REGION}::/usageplans/*]`,
  `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:${PLACEHOLDER_REGION}::/usageplans/*/keys]`,
  `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:apigateway:${PLACEHOLDER_REGION}::/usageplans/*/keys/*]`,
  // The stream publisher's on-failure queue is a dead-letter destination that no redrive policy names (lib/constructs/notifications.ts).
  'AwsSolutions-SQS3',
  // AWS CloudFormation Guard, Control Tower proactive controls (reasons in lib/constructs/guard.ts).
  'cloudwatch_alarm_action_check',
  'cloudwatch_log_group_encrypted_check',
  'lambda_inside_vpc_check',
  'sqs_dlq_check',
  // lib/constructs/audit-heads.ts (what S3 server access log delivery cannot have; no object event consumers).
  's3_bucket_default_encryption_kms_check',
  's3_bucket_logging_enabled_check',
  's3_bucket_object_lock_enabled_check',
  's3_event_notifications_enabled_check',
];
/** Acknowledged only in the stages that keep logs less than a year (dev, test). */
const SHORT_LOG_RETENTION = ['cloudwatch_log_group_retention_period_check'];
/** Acknowledged only in the stages that copy backups to another region (prod): the copy key, named by alias (lib/constructs/backup.ts). */
const backupCopyKey = (stage: (typeof STAGES)[number]) => {
  const copy = STAGE_SETTINGS[stage].backup.copy;
  return copy ? [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:${copy.region}:${PLACEHOLDER_ACCOUNT}:key/*]`] : [];
};

function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id: id.replace(/^[^:]+::/, ''),
          reason,
        })),
      ),
  );
}

describe.each(STAGES)('stage %s', (stage) => {
  it('cdk-nag AwsSolutions: zero unacknowledged findings (errors and warnings)', () => {
    // Prepare / Act: synth already ran the pack as a validation plugin (errors would have thrown).
    const { checks, stack } = synth(stage);
    // Assess: run it again directly to see warnings too.
    const report = checks.validateScope(stack);
    const findings = report.violations.map(
      (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
    expect(report.success).toBe(true);
  });

  it('the validation report of the synth lists no violation of any plugin', () => {
    const { assembly } = synth(stage);
    const report = JSON.parse(readFileSync(join(assembly.directory, VALIDATION_REPORT_FILE), 'utf8'));
    const violations = (report.pluginReports ?? []).flatMap((p: { violations?: unknown[] }) => p.violations ?? []);
    expect(violations).toEqual([]);
  });

  it('every acknowledgement is one of the reviewed set and carries a specific reason', () => {
    const acks = acknowledgements(synth(stage).stack);
    expect([...new Set(acks.map((a) => a.id))].sort()).toEqual(
      [...ACKNOWLEDGED, ...(STAGE_SETTINGS[stage].logRetention < RetentionDays.ONE_YEAR ? SHORT_LOG_RETENTION : []), ...backupCopyKey(stage)].sort(),
    );
    for (const ack of acks) expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThan(80);
  });

  it('acknowledgements are recorded in the template metadata (audit trail)', () => {
    const { template, stack } = synth(stage);
    const fnId = stack.getLogicalId(stack.functions.GetOrder.fn.node.defaultChild as never);
    const rules = template.toJSON().Resources[fnId].Metadata.cdk_nag.rules_to_suppress;
    expect(rules.map((r: { id: string }) => r.id)).toEqual(
      expect.arrayContaining(['AwsSolutions-IAM5[Resource::*]', 'AwsSolutions-L1']),
    );
  });

  it('synth ran with CloudFormation default-rule findings as errors, and found none', () => {
    const { app } = synth(stage);
    expect(app.node.tryGetContext(VALIDATE_AGAINST_DEFAULT_RULES)).toBe(true);
    expect(app.node.tryGetContext(BUNDLING_STACKS)).toEqual([]);
  });
});

describe('the checks have teeth (negative control)', () => {
  it('an invalid property and an unacknowledged cdk-nag error both fail synth', () => {
    // Prepare: the real dev stack, plus one CloudFormation schema error and one AwsSolutions-IAM4 finding.
    const { app, stack } = buildApp({ stage: 'dev', bundling: false });
    addComplianceChecks(app);
    (stack.key.node.defaultChild as CfnKey).addPropertyOverride('NotAKeyProperty', true);
    new iam.Role(stack, 'Offender', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('AdministratorAccess')],
    });
    // Act / Assess
    let message = '';
    try {
      app.synth();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/NotAKeyProperty/);
    expect(message).toMatch(/CloudFormation Validate/);
    expect(message).toMatch(/AwsSolutions-IAM4/);
  });
});

describe('PayplaneFunction guards', () => {
  it('refuses DEBUG logs in prod', () => {
    const { stack } = buildApp({ stage: 'prod', bundling: false });
    expect(
      () => new PayplaneFunction(stack, 'Noisy', { stage: 'prod', entry: 'functions/handlers/get-order.ts', logLevel: 'DEBUG' }),
    ).toThrow("Payplane-prod/Noisy: logLevel 'DEBUG' is not allowed in prod");
  });

  it('bindTable refuses an index the table does not have, and a binding that grants nothing', () => {
    const { stack } = buildApp({ stage: 'dev', bundling: false });
    const f = new PayplaneFunction(stack, 'Reader', { stage: 'dev', entry: 'functions/handlers/get-order.ts' });
    expect(() => f.bindTable(stack.mainTable, { indexes: ['gsi3'] })).toThrow(
      "Payplane-dev/Reader: bindTable(Payplane-dev/MainTable) names index 'gsi3', which the table does not have (it has 'gsi1', 'gsi2').",
    );
    expect(() => f.bindTable(stack.idempotencyTable, {})).toThrow('grants nothing. List the actions the function sends in `actions`');
  });
});

describe('app options', () => {
  it('stage defaults to dev; account and region fall back to CDK_DEFAULT_* then placeholders', () => {
    expect(optionsFromContext({}, {})).toEqual({ stage: 'dev', account: PLACEHOLDER_ACCOUNT, region: PLACEHOLDER_REGION });
    expect(optionsFromContext({ stage: 'prod' }, { CDK_DEFAULT_ACCOUNT: '111122223333', CDK_DEFAULT_REGION: 'eu-west-1' })).toEqual({
      stage: 'prod',
      account: '111122223333',
      region: 'eu-west-1',
    });
    expect(
      optionsFromContext({ stage: 'dev', account: '444455556666', region: 'eu-central-1' }, { CDK_DEFAULT_ACCOUNT: '111122223333' }),
    ).toEqual({ stage: 'dev', account: '444455556666', region: 'eu-central-1' });
  });

  it('refuses an unknown stage with a message naming the value and the fix', () => {
    expect(() => optionsFromContext({ stage: 'staging' }, {})).toThrow(
      'Unknown stage "staging": expected one of dev, prod, test. Pass it as CDK context, e.g. `npx cdk synth -c stage=dev`.',
    );
    expect(() => buildApp({ stage: 'Prod' as never })).toThrow(/Unknown stage "Prod"/);
  });

  it('stack id is Payplane-<stage> with a concrete environment', () => {
    for (const stage of STAGES) {
      const { stack } = synth(stage);
      expect(stack.artifactId).toBe(`Payplane-${stage}`);
      expect(stack.account).toBe(PLACEHOLDER_ACCOUNT);
      expect(stack.region).toBe(PLACEHOLDER_REGION);
    }
  });
});
