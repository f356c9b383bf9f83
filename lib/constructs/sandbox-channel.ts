import { Duration } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Stage } from '../stage-config';
import type { PayplaneApi } from './payplane-api';
import { PayplaneFunction, withVariable, type TableAccess, type TableAction } from './payplane-function';
import type { PayplaneTable } from './payplane-table';

export interface SandboxChannelProps {
  readonly stage: Stage;
  /** The main table: the sandbox bank keeps its trades there, and the notify route applies results to orders. */
  readonly table: PayplaneTable;
  /** HMAC_256 key: the notifier signs notifications with it (GenerateMac), the notify route verifies them (VerifyMac). */
  readonly signingKey: IKey;
  /** The API that serves `POST /channels/sandbox/notify`. */
  readonly api: PayplaneApi;
  /** What a function that applies channel results sends to the main table. */
  readonly movesRecords: TableAction[];
  /** What keeps public functions (no API key in front of them) away from the API key records. */
  readonly publicTableAccess: Pick<TableAccess, 'excludePartitions'>;
  /** Settings of the functions that charge fees (`FEE_SCHEDULE`), given to the notify route. */
  readonly feeEnvironment: Record<string, string>;
}

/** The sandbox notifier's timeout: a batch of POSTs of at most 10 s each, in parallel. */
const NOTIFIER_TIMEOUT = Duration.seconds(30);

/**
 * The sandbox payment channel's asynchronous side, as a PSP runs it: the callbacks queue (and its dead-letter
 * queue) where the sandbox bank schedules results with a delay, the notifier that signs each result and POSTs it
 * to the order's notify URL, and the platform's public route that verifies and applies it
 * (`POST /channels/sandbox/notify`).
 *
 * Whoever authorizes payments at the channel sends to `callbacks` with `bindQueue(channel.callbacks, 'send')`,
 * which also sets `SANDBOX_CALLBACK_QUEUE_URL`.
 *
 * Its resources keep the logical ids they had at the stack's top level when the stack creates it with the id
 * 'Default' (CDK leaves that id out of logical ids): a new id would replace the queue, and lose its messages.
 */
export class SandboxChannel extends Construct {
  /** The delayed callback jobs (consumed by `notifier`). Bound as SANDBOX_CALLBACK_QUEUE_URL. */
  readonly callbacks: Queue;
  readonly callbacksDlq: Queue;
  /** The sandbox PSP's side: settles its trades, signs, POSTs to the order's notify URL. FunctionId `SandboxNotifier`. */
  readonly notifier: PayplaneFunction;
  /** The platform's public route for the channel's notifications. FunctionId `SandboxNotify`. */
  readonly notify: PayplaneFunction;

  constructor(scope: Construct, id: string, props: SandboxChannelProps) {
    super(scope, id);
    const { stage, table, signingKey } = props;
    this.callbacksDlq = new Queue(this, 'SandboxCallbacksDlq', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.callbacks = withVariable(
      new Queue(this, 'SandboxCallbacks', {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        // AWS's advice for an SQS event source: at least 6× the function's timeout.
        visibilityTimeout: Duration.seconds(NOTIFIER_TIMEOUT.toSeconds() * 6),
        // Ten deliveries, a visibility timeout apart, then the job waits in the DLQ for an operator.
        deadLetterQueue: { queue: this.callbacksDlq, maxReceiveCount: 10 },
      }),
      'SANDBOX_CALLBACK_QUEUE_URL',
    );

    const { publicTableAccess } = props;
    // Public route: the channel's HMAC is the authentication. Applies results (orders, ledger): main table only,
    // never deleting, never near the API keys.
    this.notify = new PayplaneFunction(this, 'SandboxNotify', {
      stage,
      entry: 'functions/handlers/sandbox-notify.ts',
      description: 'POST /channels/sandbox/notify',
      environment: props.feeEnvironment,
    })
      .bindTable(table, { actions: props.movesRecords, ...publicTableAccess })
      .bindMacKey(signingKey, 'verify');
    // It POSTs to URLs merchants choose: as little as the public routes. It only reads and settles trades (a settled
    // capture also puts its line of the daily statement, in the same transaction).
    this.notifier = new PayplaneFunction(this, 'SandboxNotifier', {
      stage,
      entry: 'functions/handlers/sandbox-notifier.ts',
      description: "Delivers the sandbox channel's signed callbacks",
      timeout: NOTIFIER_TIMEOUT,
    })
      .bindTable(table, { actions: ['GetItem', 'PutItem', 'UpdateItem'], ...publicTableAccess })
      .bindMacKey(signingKey, 'generate')
      .consumeQueue(this.callbacks);

    props.api.addPublicRoute(
      'POST',
      '/channels/sandbox/notify',
      this.notify,
      'The payment channel calls this route, not a merchant: it has no API key. Each notification is ' +
        'authenticated by its HMAC-SHA256 signature (KMS VerifyMac on the sandbox signing key) and its ' +
        'notify_time freshness; anything that does not verify is answered "fail" and changes nothing.',
    );
  }
}
