import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { ConfigurationSet, ConfigurationSetTlsPolicy, EmailIdentity, Identity, SuppressionReasons } from 'aws-cdk-lib/aws-ses';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SENDER_TIMEOUT_SECONDS } from '../../functions/receipts/config';
import type { Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import { PayplaneFunction } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

export interface ReceiptsProps {
  readonly stage: Stage;
  /** The main table: events, merchants, orders, refunds, and the receipts' claims. */
  readonly table: PayplaneTable;
  /** The key the payer is sealed under (opened with purpose 'payer' only). */
  readonly key: IKey;
  /**
   * The domain receipts are sent from: an SES domain identity (DKIM) is created for it, and its DNS records must
   * be published before SES sends (docs/operations.md, Receipts).
   */
  readonly senderDomain: string;
  /**
   * The From header, an address of `senderDomain`.
   * @default `Payplane receipts <receipts@${senderDomain}>`
   */
  readonly fromAddress?: string;
  /**
   * Deliveries of one message before it waits in the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/**
 * Payer receipts (issue 9 §5): the receipts queue (and its dead-letter queue), the sender function that consumes
 * it (functions/handlers/send-receipts.ts), the SES sending identity and the configuration set whose bounces and
 * complaints suppress the address.
 *
 *   publisher ──SendMessage {"event_id","merchant_id"}──▶ queue ──▶ Sender ──▶ SES SendEmail / SNS Publish (SMS)
 *
 * The notification pipeline's publisher and sweeper are granted the queue (Notifications' `receiptsQueue`).
 * Construct ids are a contract: renaming one replaces the resource (and a new identity needs new DNS records).
 */
export class Receipts extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly sender: PayplaneFunction;
  readonly identity: EmailIdentity;
  readonly configurationSet: ConfigurationSet;
  readonly fromAddress: string;

  constructor(scope: Construct, id: string, props: ReceiptsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const timeout = Duration.seconds(SENDER_TIMEOUT_SECONDS);

    this.deadLetterQueue = new Queue(this, 'Dlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's advice for an SQS event source: at least 6× the function's timeout. It is also what makes a claim
      // whose run died free again before the message comes back (functions/receipts/config.ts).
      visibilityTimeout: Duration.seconds(SENDER_TIMEOUT_SECONDS * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
    });

    // Bounces and complaints put the address on the account-level suppression list, and SES then drops later
    // sends to it for this configuration set: a payer who bounced once is not mailed again (docs/operations.md).
    this.configurationSet = new ConfigurationSet(this, 'ConfigurationSet', {
      suppressionReasons: SuppressionReasons.BOUNCES_AND_COMPLAINTS,
      reputationMetrics: true,
      tlsPolicy: ConfigurationSetTlsPolicy.REQUIRE,
      sendingEnabled: true,
    });
    this.identity = new EmailIdentity(this, 'Identity', {
      identity: Identity.domain(props.senderDomain),
      configurationSet: this.configurationSet,
    });
    this.fromAddress = props.fromAddress ?? `Payplane receipts <receipts@${props.senderDomain}>`;

    this.sender = new PayplaneFunction(this, 'Sender', {
      stage: props.stage,
      entry: 'functions/handlers/send-receipts.ts',
      description: 'Sends payer receipts (SES email, SNS SMS) for order.succeeded and refund.succeeded',
      timeout,
      environment: {
        TABLE_NAME: props.table.tableName,
        KMS_KEY_ARN: props.key.keyArn,
        RECEIPTS_EMAIL_FROM: this.fromAddress,
        RECEIPTS_CONFIGURATION_SET: this.configurationSet.configurationSetName,
      },
    })
      // Reads the event, merchant, order and refund; claims and marks its receipt items (conditional updates).
      .bindTable(props.table, { actions: ['GetItem', 'UpdateItem'] })
      // Opens the payer's contact details, and nothing else sealed under the key.
      .bindKey(props.key, 'decrypt', ['payer'])
      .consumeQueue(this.queue, { batchSize: 10, maxConcurrency: 5 });

    // SES v2 SendEmail authorizes the identity, and the configuration set the request names.
    this.sender.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ses:SendEmail'],
        resources: [
          stack.formatArn({ service: 'ses', resource: 'identity', resourceName: props.senderDomain }),
          stack.formatArn({ service: 'ses', resource: 'configuration-set', resourceName: this.configurationSet.configurationSetName }),
        ],
      }),
    );
    // An SMS straight to a phone number names no topic: SNS authorizes it on "*".
    this.sender.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: ['*'] }));
    acknowledge(
      this.sender,
      'AwsSolutions-IAM5[Resource::*]',
      'sns:Publish on "*": a Publish with PhoneNumber (a direct SMS) has no resource to name (AWS documents "*" for it); ' +
        'the function publishes to no topic. Also xray:PutTraceSegments / PutTelemetryRecords (active tracing), which X-Ray allows only on "*".',
    );
  }
}
