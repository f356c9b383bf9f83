import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { FilterCriteria, FilterRule, StartingPosition } from 'aws-cdk-lib/aws-lambda';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { LATENESS_METRIC } from '../../functions/notifications/schedule';
import { METRICS_NAMESPACE } from '../../functions/commons/metrics';
import type { Stage } from '../stage-config';
import { acknowledge } from './acknowledge';
import type { PayplaneApi } from './payplane-api';
import { PayplaneFunction, type PayplaneFunctionProps, type TableAccess } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

export interface NotificationsProps {
  readonly stage: Stage;
  /** The main table: its stream carries the event items; deliveries, attempts and endpoints live in it. */
  readonly table: PayplaneTable;
  /** The idempotency table of the POST routes (resend, recover). */
  readonly idempotencyTable: PayplaneTable;
  /** The stack's KMS key: webhook endpoint secrets and the platform signing key are sealed under it. */
  readonly key: IKey;
  /** The checkout's return-URL key (ECC_NIST_P256), published with the platform key in the JWKS. */
  readonly checkoutSigningKey: IKey;
  readonly api: PayplaneApi;
  /**
   * Where receipt-worthy events (order.succeeded, refund.succeeded) are announced as `{event_id, merchant_id}`.
   * @default - no receipts queue: the publisher sends none
   */
  readonly receiptsQueue?: IQueue;
}

/** The deliverers' timeout: a batch of 10 POSTs of at most 10 s each, in parallel, plus signing and writes. */
export const DELIVERER_TIMEOUT = Duration.seconds(30);
/** Shared-lane consumers: set for many merchants (Lambda's SQS default is 2). */
export const DELIVERY_CONCURRENCY = 100;
/** Slow-lane consumers: endpoints whose breaker is open share a few, so they cannot starve anyone else. */
export const SLOW_LANE_CONCURRENCY = 5;
/** Alarm when an attempt ran this many seconds after it was due (the schedule's own gaps are not lateness). */
export const OVERDUE_SECONDS = 300;

/**
 * Webhook notifications (issue 9 §3): the main table's stream → PublishEvents → the delivery queue (one message
 * per event and target) → DeliverWebhooks → merchants' endpoints and orders' notify_url, retried on WeChat Pay's
 * 24-hour schedule by re-enqueued hops; a slow lane with its own consumer for endpoints whose circuit breaker
 * is open; SweepEvents every minute for events the stream did not publish; the platform's public keys; resend
 * and recover. docs/webhooks.md describes the whole of it.
 */
export class Notifications extends Construct {
  /** The shared delivery queue (first attempts and retries of healthy endpoints). */
  readonly deliveries: Queue;
  /** Deliveries of endpoints whose breaker is open. */
  readonly slowDeliveries: Queue;
  /** Deliveries that failed their last attempt (and messages that crashed a deliverer 5 times). */
  readonly deliveriesDlq: Queue;
  /** The stream mapping's on-failure destination: descriptions of batches the publisher gave up on. */
  readonly publisherFailures: Queue;
  readonly functions: {
    PublishEvents: PayplaneFunction;
    SweepEvents: PayplaneFunction;
    DeliverWebhooks: PayplaneFunction;
    DeliverWebhooksSlow: PayplaneFunction;
    PlatformPublicKeys: PayplaneFunction;
    ResendEvent: PayplaneFunction;
    RecoverWebhookEndpoint: PayplaneFunction;
  };
  /** The functions behind api() (they need PUBLIC_BASE_URL). */
  readonly apiFunctions: PayplaneFunction[];

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    const { stage, table, key } = props;

    // ── Queues (SQS-managed encryption, TLS only) ─────────────────────────────────────────────────────
    const queue = (qid: string, extra: Partial<ConstructorParameters<typeof Queue>[2]> = {}) =>
      new Queue(this, qid, { encryption: QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14), ...extra });
    this.deliveriesDlq = queue('DeliveriesDlq');
    this.publisherFailures = queue('PublisherFailures');
    const onFailureReason =
      'This queue is itself a dead-letter destination: the stream event source mapping\'s on-failure destination ' +
      '(OnFailure), which receives descriptions of batches the publisher gave up on. Nothing consumes it, so a ' +
      'dead-letter queue of its own would never receive anything; its depth alarms, and the sweeper publishes the events.';
    acknowledge(this.publisherFailures, 'cdk-validator-cfnguard::sqs_dlq_check', `CT.SQS.PR.1: ${onFailureReason}`);
    acknowledge(
      this.publisherFailures,
      'AwsSolutions-SQS3',
      'This queue is itself a dead-letter destination: the stream event source mapping\'s on-failure destination ' +
        '(OnFailure), which receives descriptions of batches the publisher gave up on. Nothing consumes it; its ' +
        'depth alarms, and the sweeper publishes the events those batches held.',
    );
    // AWS's advice for an SQS event source: a visibility timeout of at least 6× the function's timeout. A message
    // that crashes a deliverer 5 times (not an HTTP failure: those are scheduled) goes to the DLQ.
    const lane = (qid: string) =>
      queue(qid, {
        retentionPeriod: Duration.days(4),
        visibilityTimeout: Duration.seconds(DELIVERER_TIMEOUT.toSeconds() * 6),
        deadLetterQueue: { queue: this.deliveriesDlq, maxReceiveCount: 5 },
      });
    this.deliveries = lane('Deliveries');
    this.slowDeliveries = lane('SlowDeliveries');

    // ── Functions ─────────────────────────────────────────────────────────────────────────────────────
    const env = {
      TABLE_NAME: table.tableName,
      DELIVERY_QUEUE_URL: this.deliveries.queueUrl,
      DELIVERY_SLOW_QUEUE_URL: this.slowDeliveries.queueUrl,
    };
    /** For whoever seals or opens (endpoint secrets, the platform key, idempotent responses). */
    const keyEnv = { KMS_KEY_ARN: key.keyArn };
    const fn = (fid: string, entry: string, description: string, environment: Record<string, string>, extra: Partial<PayplaneFunctionProps> = {}) =>
      new PayplaneFunction(this, fid, { stage, entry: `functions/handlers/${entry}`, description, environment, ...extra });
    /** Publishing: endpoints by merchant (gsi1), the delivery items (conditional put), the event marked published. */
    const publishes: TableAccess = { actions: ['PutItem', 'UpdateItem'], indexes: ['gsi1'] };
    const receipts: Record<string, string> = props.receiptsQueue ? { RECEIPTS_QUEUE_URL: props.receiptsQueue.queueUrl } : {};
    const sendsDeliveries = (f: PayplaneFunction) => f.bindQueue(this.deliveries, 'send').bindQueue(this.slowDeliveries, 'send');

    const publishEvents = sendsDeliveries(
      fn('PublishEvents', 'publish-events.ts', 'Main table stream → webhook deliveries', { ...env, ...receipts }, { timeout: Duration.seconds(60) }).bindTable(table, publishes),
    );
    const sweepEvents = sendsDeliveries(
      fn('SweepEvents', 'sweep-events.ts', 'Publishes events left unpublished for 2 minutes, every minute', { ...env, ...receipts }, { timeout: Duration.seconds(50), retryAttempts: 0 }) //
        .bindTable(table, { actions: ['GetItem', 'PutItem', 'UpdateItem'], indexes: ['gsi1', 'gsi2'] }),
    );
    if (props.receiptsQueue) {
      publishEvents.bindQueue(props.receiptsQueue, 'send');
      sweepEvents.bindQueue(props.receiptsQueue, 'send');
    }

    const deliverer = (fid: 'DeliverWebhooks' | 'DeliverWebhooksSlow', laneName: 'main' | 'slow', source: Queue, concurrency: number) =>
      sendsDeliveries(
        fn(fid, 'deliver-webhooks.ts', `Webhook deliveries (${laneName} lane): sign, POST, schedule the next attempt`, {
          ...env,
          ...keyEnv,
          DELIVERY_DLQ_URL: this.deliveriesDlq.queueUrl,
          DELIVERY_LANE: laneName,
        }, { timeout: DELIVERER_TIMEOUT }),
      )
        // The event, the delivery and the endpoint in one BatchGetItem; the attempt (TransactWriteItems: Put +
        // Update), the breaker and 410's disable (UpdateItem); the platform key (GetItem, first-writer PutItem).
        .bindTable(table, { actions: ['BatchGetItem', 'GetItem', 'PutItem', 'UpdateItem'] })
        // Opens endpoint secrets and the platform key; seals the platform key if it is the first to need one.
        .bindKey(key, 'decrypt', ['webhook_secret', 'platform_signing_key'])
        .bindKey(key, 'encrypt', ['platform_signing_key'])
        .bindQueue(this.deliveriesDlq, 'send')
        .consumeQueue(source, { batchSize: 10, maxConcurrency: concurrency });
    const deliverWebhooks = deliverer('DeliverWebhooks', 'main', this.deliveries, DELIVERY_CONCURRENCY);
    const deliverWebhooksSlow = deliverer('DeliverWebhooksSlow', 'slow', this.slowDeliveries, SLOW_LANE_CONCURRENCY);

    // Public: only the platform key's partition, and only sealing it (never opening anything).
    const platformPublicKeys = fn('PlatformPublicKeys', 'platform-public-keys.ts', 'GET /v1/platform/public_keys', {
      TABLE_NAME: table.tableName,
      KMS_KEY_ARN: key.keyArn,
      CHECKOUT_SIGNING_KEY_ARN: props.checkoutSigningKey.keyArn,
    })
      .bindTable(table, { actions: ['GetItem', 'PutItem'], onlyPartitions: ['PLATFORMKEY'] })
      .bindKey(key, 'encrypt', ['platform_signing_key'])
      .bindPublicKey(props.checkoutSigningKey);

    const postEnv = { ...env, ...keyEnv, IDEMPOTENCY_TABLE_NAME: props.idempotencyTable.tableName };
    const idempotencyKeys: TableAccess = { actions: ['PutItem', 'UpdateItem', 'DeleteItem'] };
    const resendEvent = sendsDeliveries(fn('ResendEvent', 'resend-event.ts', 'POST /v1/events/{id}/resend', postEnv))
      .bindTable(table, { actions: ['GetItem', 'UpdateItem'], indexes: ['gsi1'] })
      .bindTable(props.idempotencyTable, idempotencyKeys)
      .bindKey(key, 'both', ['idempotent-response']);
    const recoverEndpoint = sendsDeliveries(fn('RecoverWebhookEndpoint', 'recover-webhook-endpoint.ts', 'POST /v1/webhook_endpoints/{id}/recover', postEnv))
      .bindTable(table, { actions: ['GetItem', 'UpdateItem'], indexes: ['gsi1'] })
      .bindTable(props.idempotencyTable, idempotencyKeys)
      .bindKey(key, 'both', ['idempotent-response']);

    // ── Triggers ──────────────────────────────────────────────────────────────────────────────────────
    // Not DynamoEventSource: its grantStreamRead also grants kms:Decrypt on the table's key directly, which would let
    // the publisher open any sealed value. Reading the stream needs the key only through DynamoDB (kms:ViaService),
    // which bindTable grants already.
    publishEvents.fn.addEventSourceMapping('TableStream', {
      eventSourceArn: table.tableStreamArn!,
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      maxBatchingWindow: Duration.seconds(0),
      bisectBatchOnError: true,
      reportBatchItemFailures: true,
      // A bad batch is retried, halved, then described to the on-failure queue; the sweeper publishes its events.
      retryAttempts: 5,
      onFailure: new SqsDlq(this.publisherFailures),
      filters: [FilterCriteria.filter({ eventName: FilterRule.isEqual('INSERT'), dynamodb: { NewImage: { type: { S: FilterRule.isEqual('event') } } } })],
    });
    publishEvents.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams'],
        resources: [table.tableStreamArn!],
      }),
    );

    new Rule(this, 'SweepEventsSchedule', {
      description: 'Runs SweepEvents every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(sweepEvents.fn, { retryAttempts: 0 })],
    });

    // ── Routes ────────────────────────────────────────────────────────────────────────────────────────
    props.api.addRoute('POST', '/v1/events/{id}/resend', resendEvent);
    props.api.addRoute('POST', '/v1/webhook_endpoints/{id}/recover', recoverEndpoint);
    props.api.addPublicRoute(
      'GET',
      '/v1/platform/public_keys',
      platformPublicKeys,
      'Receivers verify Payplane-Platform-Signature and the checkout\'s return_url signature with these public keys, ' +
        'so anyone may read them (a JWKS is public by nature). The route only reads public keys: its function may ' +
        'touch the PLATFORMKEY partition alone (dynamodb:LeadingKeys) and never decrypts anything.',
    );

    // ── Alarms ────────────────────────────────────────────────────────────────────────────────────────
    const depth = (aid: string, q: Queue, what: string) =>
      new Alarm(this, aid, {
        alarmDescription: what,
        metric: q.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    depth('DeliveriesDlqAlarm', this.deliveriesDlq, 'Webhook deliveries failed all 16 attempts (or crashed a deliverer 5 times). Merchants can recover them (POST /v1/webhook_endpoints/{id}/recover); docs/webhooks.md.');
    depth('PublisherFailuresAlarm', this.publisherFailures, 'The stream publisher gave up on a batch. The sweeper publishes its events; look at PublishEvents\' logs for the cause (docs/webhooks.md).');
    // The oldest message's age is high by design (hops of long gaps wait in the queue): lateness against due_at
    // is what says deliveries are behind their schedule.
    new Alarm(this, 'DeliveriesOverdueAlarm', {
      alarmDescription: `Webhook attempts ran more than ${OVERDUE_SECONDS} s after they were due: the deliverers are behind (throttling, too little concurrency, a stuck lane). docs/webhooks.md.`,
      metric: new Metric({ namespace: METRICS_NAMESPACE, metricName: LATENESS_METRIC, dimensionsMap: { service: 'payplane', stage }, statistic: 'Maximum', period: Duration.minutes(5) }),
      threshold: OVERDUE_SECONDS,
      evaluationPeriods: 2,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    this.functions = {
      PublishEvents: publishEvents,
      SweepEvents: sweepEvents,
      DeliverWebhooks: deliverWebhooks,
      DeliverWebhooksSlow: deliverWebhooksSlow,
      PlatformPublicKeys: platformPublicKeys,
      ResendEvent: resendEvent,
      RecoverWebhookEndpoint: recoverEndpoint,
    };
    this.apiFunctions = [resendEvent, recoverEndpoint];
  }
}
