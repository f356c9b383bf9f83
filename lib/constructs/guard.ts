import { Aspects, Stack, type IAspect } from 'aws-cdk-lib';
import { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { AnyPrincipal, Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { CfnPermission } from 'aws-cdk-lib/aws-lambda';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { acknowledge } from './acknowledge';
import type { StageSettings } from '../stage-config';

/**
 * What the AWS Control Tower proactive controls (cdk-validator-cfnguard, run at synth by
 * `addComplianceChecks`) ask of the stack: the controls it meets, and the ones it acknowledges, each
 * with its reason. A new finding fails `cdk synth` and the infra tier.
 */
export function applyGuardControls(stack: Stack, settings: StageSettings): void {
  // CT.LAMBDA.PR.2: a service principal may invoke a function only on behalf of this account (the
  // SourceArn CDK sets is a Fn::Join, which the control cannot read; SourceAccount also closes the
  // confused-deputy gap for any other account's API or rule).
  Aspects.of(stack).add(new SourceAccountOnPermissions(stack.account));

  // CT.KMS.PR.3: grants on our keys only for AWS resources (DynamoDB's table encryption makes them).
  for (const key of stack.node.findAll().filter((c): c is Key => c instanceof Key)) {
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'GrantsOnlyForAwsResources',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['kms:CreateGrant'],
        resources: ['*'],
        conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
      }),
    );
  }

  acknowledge(
    stack,
    'cdk-validator-cfnguard::lambda_inside_vpc_check',
    'CT.LAMBDA.PR.3: the functions reach only AWS public endpoints (DynamoDB, KMS, SQS) and the payment channel over TLS; there is nothing in a VPC to reach, and a VPC would add NAT gateways or one interface endpoint per service for no isolation gain.',
  );
  acknowledge(
    stack,
    'cdk-validator-cfnguard::cloudwatch_log_group_encrypted_check',
    'CT.CLOUDWATCH.PR.3: CloudWatch Logs encrypts every log group at rest with AWS-owned keys; our logs carry no card number, secret or payer data (test/e2e/at-rest.test.ts, the logger redaction), so a customer-managed key would add cost and a key policy for logs.<region>.amazonaws.com without protecting anything we log.',
  );
  for (const queue of stack.node.findAll().filter((c): c is Queue => c instanceof Queue)) {
    if (!queue.deadLetterQueue) continue;
    acknowledge(
      queue.deadLetterQueue.queue,
      'cdk-validator-cfnguard::sqs_dlq_check',
      `CT.SQS.PR.1: this queue is the dead-letter queue of ${queue.node.id}; a dead-letter queue of its own would only move the same messages again (they stay 14 days for an operator to inspect and redrive).`,
    );
  }
  // CT.CLOUDWATCH.PR.1, alarm by alarm (a new alarm without an action fails synth until it is listed here).
  for (const alarm of stack.node.findAll().filter((c): c is Alarm => c instanceof Alarm)) {
    if (!ALARMS_WITHOUT_ACTIONS.includes(alarm.node.id)) continue;
    acknowledge(
      alarm,
      'cdk-validator-cfnguard::cloudwatch_alarm_action_check',
      `CT.CLOUDWATCH.PR.1: ${alarm.node.id} has no alarm action yet because the stack has no on-call channel (SNS topic) to send it to; operators watch it in the CloudWatch console (docs/operations.md). Not a justification to keep: give the stack an alarm topic.`,
    );
  }
  if (settings.logRetention < RetentionDays.ONE_YEAR) {
    acknowledge(
      stack,
      'cdk-validator-cfnguard::cloudwatch_log_group_retention_period_check',
      'CT.CLOUDWATCH.PR.2: only in the stages that keep logs one week (dev, test: no real card data, cheap to debug); prod keeps one year (PCI DSS 10.5.1), see lib/stage-config.ts.',
    );
  }
}

/** Alarms acknowledged to have no action (see CT.CLOUDWATCH.PR.1 above). */
const ALARMS_WITHOUT_ACTIONS = [
  'ChannelResultMismatchAlarm',
  'DeliveriesDlqAlarm',
  'PublisherFailuresAlarm',
  'DeliveriesOverdueAlarm',
  // lib/constructs/settlement.ts
  'ExecutionsFailedAlarm',
  'ExecutionsTimedOutAlarm',
  'MerchantNegativeBalanceAlarm',
];

/** Sets `SourceAccount` on every AWS::Lambda::Permission that has none. */
class SourceAccountOnPermissions implements IAspect {
  constructor(private readonly account: string) {}

  visit(node: IConstruct): void {
    if (node instanceof CfnPermission && node.sourceAccount === undefined && node.principal.endsWith('.amazonaws.com')) {
      node.sourceAccount = this.account;
    }
  }
}
