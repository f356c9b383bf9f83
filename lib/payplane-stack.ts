import { CfnOutput, Duration, Fn, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, ProjectionType, StreamViewType } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AuditHeads } from './constructs/audit-heads';
import { PayplaneBackup } from './constructs/backup';
import { Notifications } from './constructs/notifications';
import { PayplaneApi } from './constructs/payplane-api';
import { PayplaneFunction, withVariable, type PayplaneFunctionProps, type TableAccess, type TableAction } from './constructs/payplane-function';
import { PayplaneTable } from './constructs/payplane-table';
import { SandboxChannel } from './constructs/sandbox-channel';
import { addSettlementsApi, type SettlementsApiFunctionId } from './constructs/settlements-api';
import { addWebhooksApi, type WebhooksApiFunctionId } from './constructs/webhooks-api';
import { addOperatorApi, type OperatorFunctionId } from './constructs/operator-api';
import { Receipts } from './constructs/receipts';
import { Settlement } from './constructs/settlement';
import { ALARM_METRICS, METRICS_NAMESPACE } from '../functions/commons/metrics';
import type { FeeScheduleOverride } from '../functions/ledger/fees';
import { parseFeeScheduleSetting, STAGE_SETTINGS, type StageSettings, type Stage } from './stage-config';

export interface PayplaneStackProps extends StackProps {
  /** The stage this stack deploys. */
  readonly stage: Stage;
  /**
   * The platform fee schedule's changes to DEFAULT_FEE_SCHEDULE, passed as FEE_SCHEDULE to the functions
   * that charge fees.
   * @default - the stage's `feeSchedule` setting; with neither, no FEE_SCHEDULE variable
   */
  readonly feeSchedule?: FeeScheduleOverride;
  /**
   * Restored tables being adopted (docs/operations.md § Adopting a restored table).
   * @default - the stage's `restoredTables` setting
   */
  readonly restoredTables?: StageSettings['restoredTables'];
}

/** The notification pipeline's functions (lib/constructs/notifications.ts). */
export type NotificationFunctionId = keyof Notifications['functions'];

/** The settlement state machine's step functions (lib/constructs/settlement.ts). */
export type SettlementFunctionId = keyof Settlement['functions'];

/** Lambda construct ids (a contract: the local cloud and the docs name functions by these). */
export type FunctionId =
  | 'Authorizer'
  | 'CreateOrder'
  | 'ListOrders'
  | 'GetOrder'
  | 'CloseOrder'
  | 'ExpireOrders'
  | 'ReconcilePayments'
  | 'ConfirmOrder'
  | 'CaptureOrder'
  | 'CreateRefund'
  | 'GetRefund'
  | 'ListRefunds'
  | 'GetBalance'
  | 'ListAuditEvents'
  | 'SandboxNotify'
  | 'SandboxNotifier'
  | 'Checkout'
  | 'ApiDocs'
  | 'OpenApi'
  | WebhooksApiFunctionId
  | SettlementsApiFunctionId
  | OperatorFunctionId
  | NotificationFunctionId
  | SettlementFunctionId
  | keyof AuditHeads['functions'];

/**
 * One Payplane stage: the customer-managed key, the main (single-table) and idempotency tables, the REST
 * API with its Lambda authorizer and one function per route, the order-expiry schedule, and the sandbox
 * payment channel's callback pipeline (queue → notifier → POST /channels/sandbox/notify) with its HMAC keys.
 */
export class PayplaneStack extends Stack {
  readonly stage: Stage;
  readonly key: Key;
  readonly mainTable: PayplaneTable;
  readonly idempotencyTable: PayplaneTable;
  /** The AWS Backup plan of both tables: vault, key, rules, selection and role (lib/constructs/backup.ts). */
  readonly backup: PayplaneBackup;
  /** HMAC_256: the sandbox channel signs its notifications with it (notifier) and the platform verifies them. */
  readonly sandboxSigningKey: Key;
  /** HMAC_256: card fingerprints. Fingerprints change with the key, so a stage keeps it for life. */
  readonly fingerprintKey: Key;
  /**
   * ECC_NIST_P256 SIGN_VERIFY: the hosted checkout signs the parameters of its redirect to the merchant's
   * return_url (ECDSA_SHA_256); merchants verify with its public key (GetPublicKey, output CheckoutSigningKeyArn).
   */
  readonly checkoutSigningKey: Key;
  /** The sandbox channel's callbacks queue, notifier and notify route (lib/constructs/sandbox-channel.ts). */
  readonly sandboxChannel: SandboxChannel;
  /** The sandbox channel's delayed callback jobs (consumed by SandboxNotifier). */
  readonly sandboxCallbacks: Queue;
  readonly sandboxCallbacksDlq: Queue;
  readonly api: PayplaneApi;
  /** Webhooks: the delivery queues (deliveries, slowDeliveries, deliveriesDlq, publisherFailures) and their functions. */
  readonly notifications: Notifications;
  /** Payer receipts: queue, DLQ, sender, SES identity and configuration set. The notification pipeline queues for it. */
  readonly receipts: Receipts;
  /** Settlement: the state machine, its daily schedule, its step functions and alarms. */
  readonly settlement: Settlement;
  /** Signed audit chain heads: signing key, Object Lock bucket, daily signer (lib/constructs/audit-heads.ts). */
  readonly auditHeads: AuditHeads;
  readonly functions: Readonly<Record<FunctionId, PayplaneFunction>>;

  constructor(scope: Construct, id: string, props: PayplaneStackProps) {
    const { stage } = props;
    const settings = STAGE_SETTINGS[stage];
    super(scope, id, {
      description: `Payplane payments platform (${stage})`,
      terminationProtection: settings.terminationProtection,
      ...props,
    });
    this.stage = stage;
    Tags.of(this).add('app', 'payplane');
    Tags.of(this).add('stage', stage);

    // ── Encryption ────────────────────────────────────────────────────────────────────────────────────
    // Each resource names the variable functions get it under; binding it (bindTable, bindKey…) sets that.
    this.key = withVariable(
      new Key(this, 'Key', {
        alias: `alias/payplane-${stage}`,
        description: `Payplane ${stage}: encrypts both tables at rest and envelope-encrypts PII`,
        enableKeyRotation: true,
        removalPolicy: settings.removalPolicy,
        pendingWindow: settings.keyPendingWindow,
      }),
      'KMS_KEY_ARN',
    );

    // ── Data ──────────────────────────────────────────────────────────────────────────────────────────
    const restoredTables = props.restoredTables ?? settings.restoredTables;
    this.mainTable = new PayplaneTable(this, 'MainTable', {
      stage,
      restored: restoredTables?.main,
      variable: 'TABLE_NAME',
      encryptionKey: this.key,
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      timeToLiveAttribute: 'ttl',
      dynamoStream: StreamViewType.NEW_AND_OLD_IMAGES,
      globalSecondaryIndexes: [
        {
          // Merchant → its API keys and orders, newest last.
          indexName: 'gsi1',
          partitionKey: { name: 'gsi1pk', type: AttributeType.STRING },
          sortKey: { name: 'gsi1sk', type: AttributeType.STRING },
          projectionType: ProjectionType.ALL,
        },
        {
          // Sparse and sharded: orders awaiting payment by expiry (ExpireOrders), and orders and refunds
          // waiting for the channel (ReconcilePayments). The sweeps read ids only, so the index copies only
          // those: every write to a full-size order would otherwise be paid a second time here.
          indexName: 'gsi2',
          partitionKey: { name: 'gsi2pk', type: AttributeType.STRING },
          sortKey: { name: 'gsi2sk', type: AttributeType.STRING },
          projectionType: ProjectionType.INCLUDE,
          nonKeyAttributes: ['type', 'id', 'merchant_id', 'expires_at'],
        },
      ],
    });
    // Separate on purpose: TTL churn of idempotency records must not reach the main table's stream.
    this.idempotencyTable = new PayplaneTable(this, 'IdempotencyTable', {
      stage,
      restored: restoredTables?.idempotency,
      variable: 'IDEMPOTENCY_TABLE_NAME',
      encryptionKey: this.key,
      partitionKey: { name: 'id', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
    });
    // Weekly and monthly recovery points of both tables, beyond PITR's 35 days (docs/operations.md § Backups and restore).
    this.backup = new PayplaneBackup(this, 'Backup', { stage, tables: [this.mainTable, this.idempotencyTable] });

    // HMAC keys cannot rotate automatically (KMS rotates symmetric encryption keys only), and a new key would
    // change every MAC: these two live as long as the stage. (cdk-nag's KMS5 applies to symmetric keys only.)
    const hmacKey = (id: string, variable: string, description: string) =>
      withVariable(
        new Key(this, id, {
          description,
          keySpec: KeySpec.HMAC_256,
          keyUsage: KeyUsage.GENERATE_VERIFY_MAC,
          removalPolicy: settings.removalPolicy,
          pendingWindow: settings.keyPendingWindow,
        }),
        variable,
      );
    this.sandboxSigningKey = hmacKey(
      'SandboxSigningKey',
      'SANDBOX_SIGNING_KEY_ARN',
      `Payplane ${stage}: the sandbox channel signs its notifications (GenerateMac) and the platform verifies them (VerifyMac)`,
    );
    this.fingerprintKey = hmacKey('FingerprintKey', 'FINGERPRINT_KEY_ARN', `Payplane ${stage}: card fingerprints, HMAC-SHA256 of the PAN (kept for the life of the stage)`);

    // Asymmetric keys cannot rotate automatically either (and merchants pin the public key): kept for life.
    this.checkoutSigningKey = withVariable(
      new Key(this, 'CheckoutSigningKey', {
        alias: `alias/payplane-${stage}-checkout-signing`,
        description: `Payplane ${stage}: signs the hosted checkout's redirect parameters (ECDSA P-256); merchants verify with the public key`,
        keySpec: KeySpec.ECC_NIST_P256,
        keyUsage: KeyUsage.SIGN_VERIFY,
        removalPolicy: settings.removalPolicy,
        pendingWindow: settings.keyPendingWindow,
      }),
      'CHECKOUT_SIGNING_KEY_ARN',
    );

    // ── Functions ─────────────────────────────────────────────────────────────────────────────────────
    // Each function gets the variables of what it uses, and nothing more.
    const feeSchedule = parseFeeScheduleSetting(
      props.feeSchedule ?? settings.feeSchedule,
      props.feeSchedule ? "Context 'feeSchedule'" : `STAGE_SETTINGS.${stage}.feeSchedule`,
    );
    /** For whoever charges fees: confirm snapshots the rate; capture and channel results use it (or resolve it for older orders). */
    const fees = (feeSchedule ? { FEE_SCHEDULE: JSON.stringify(feeSchedule) } : {}) as Record<string, string>;
    /** For the functions that confirm (they lock the cross-border fee with the exchange rate). */
    const crossBorder = settings.crossBorderFeeBps;
    if (crossBorder !== undefined && !(Number.isInteger(crossBorder) && crossBorder >= 0 && crossBorder <= 10_000)) {
      throw new Error(`STAGE_SETTINGS.${stage}.crossBorderFeeBps is ${crossBorder}; use an integer of basis points from 0 to 10000 (100 = 1.00 %).`);
    }
    const confirms = { ...fees, ...(crossBorder !== undefined ? { CROSS_BORDER_FEE_BPS: String(crossBorder) } : {}) };
    /**
     * The public functions (no API key in front of them) never touch the API key records: a hole in one of them
     * must not mint or read a key. An allow-list of partitions does not fit: one payment writes the order, the
     * merchant's and the platform's ledger accounts, a transfer and the sandbox's trade.
     */
    const publicTableAccess: Pick<TableAccess, 'excludePartitions'> = { excludePartitions: ['APIKEY#*'] };
    // What each kind of function sends to a table, read from the code it runs (functions/*/repository.ts, the
    // ledger, the sandbox's store). The e2e tier's IAM report lists any of these no test used; each one that
    // stays is in docs/iam-unused-grants.json with the code path that needs it.
    /** Reads by key, then conditional puts and updates, alone or in one transaction with the ledger's transfers
     * (orders, attempts, refunds, accounts, the sandbox's trades). No function deletes a record: TTL does. */
    const movesRecords: TableAction[] = ['GetItem', 'PutItem', 'UpdateItem'];
    /** functions/fx/table.ts rateInForce: confirm locks the exchange rate in force (one Query of the pair's rates, nothing else). */
    const readsFxRates: TableAccess = { actions: ['Query'], onlyPartitions: ['FXRATE#*'] };
    /** functions/http/idempotency.ts: claims a key, completes it, and releases it after a retryable failure. */
    const idempotencyKeys: TableAccess = { actions: ['PutItem', 'UpdateItem', 'DeleteItem'] };
    // Each binding below also hands the function the resource's variable (TABLE_NAME, KMS_KEY_ARN…): a function
    // is told of exactly what it may use. `environment` carries only settings (FEE_SCHEDULE).
    const fn = (id: FunctionId, entry: string, description: string, environment: Record<string, string> = {}, extra: Partial<PayplaneFunctionProps> = {}) =>
      new PayplaneFunction(this, id, { stage, entry, description, environment, ...extra });

    const authorizer = fn('Authorizer', 'functions/handlers/authorizer.ts', 'API key REQUEST authorizer') //
      .bindTable(this.mainTable, { actions: ['GetItem'] });
    this.api = new PayplaneApi(this, 'Api', { stage, authorizer });

    // ── The sandbox channel: callbacks queue → SandboxNotifier → POST /channels/sandbox/notify (SandboxNotify) ──
    // 'Default': the channel's resources keep the logical ids they had before it was a construct of its own.
    this.sandboxChannel = new SandboxChannel(this, 'Default', {
      stage,
      table: this.mainTable,
      signingKey: this.sandboxSigningKey,
      api: this.api,
      movesRecords,
      publicTableAccess,
      feeEnvironment: fees,
    });
    this.sandboxCallbacks = this.sandboxChannel.callbacks;
    this.sandboxCallbacksDlq = this.sandboxChannel.callbacksDlq;

    // ── API functions ─────────────────────────────────────────────────────────────────────────────────
    const createOrder = fn('CreateOrder', 'functions/handlers/create-order.ts', 'POST /v1/orders')
      .bindTable(this.mainTable, { actions: ['GetItem', 'PutItem'] }) // the order and its merchant_order_no, in one transaction
      .bindTable(this.idempotencyTable, idempotencyKeys)
      .bindKey(this.key, 'both');
    const listOrders = fn('ListOrders', 'functions/handlers/list-orders.ts', 'GET /v1/orders')
      .bindTable(this.mainTable, { actions: ['GetItem'], indexes: ['gsi1'] })
      .bindKey(this.key, 'decrypt');
    const getOrder = fn('GetOrder', 'functions/handlers/get-order.ts', 'GET /v1/orders/{id}')
      .bindTable(this.mainTable, { actions: ['GetItem'] })
      .bindKey(this.key, 'decrypt');
    // Closing an authorized order voids it at the channel (the sandbox's trades live in the main table).
    const closeOrder = fn('CloseOrder', 'functions/handlers/close-order.ts', 'POST /v1/orders/{id}/close')
      .bindTable(this.mainTable, { actions: movesRecords })
      .bindTable(this.idempotencyTable, idempotencyKeys)
      .bindKey(this.key, 'both'); // seals idempotent responses
    const expireOrders = fn('ExpireOrders', 'functions/handlers/expire-orders.ts', 'Expires unpaid orders every minute', {}, {
      // Must finish before the next tick; a failed run is simply redone by the next one.
      timeout: Duration.seconds(50),
      retryAttempts: 0,
    }).bindTable(this.mainTable, { actions: movesRecords, indexes: ['gsi2'] }); // reads each due order, closes it with its order.closed event
    // Queries and refunds at the channel (the sandbox's trades live in the main table): no queue, no KMS of its own.
    const reconcilePayments = fn('ReconcilePayments', 'functions/handlers/reconcile-payments.ts', 'Asks the channel about payments and refunds left unanswered', fees, {
      // A run is bounded (25 items per shard) and well inside the 5-minute period; the next run redoes a failed one.
      timeout: Duration.seconds(60),
      retryAttempts: 0,
    }).bindTable(this.mainTable, { actions: movesRecords, indexes: ['gsi2'] });
    const confirmOrder = fn('ConfirmOrder', 'functions/handlers/confirm-order.ts', 'POST /v1/orders/{id}/confirm', confirms)
      .bindTable(this.mainTable, { actions: movesRecords })
      .bindTable(this.mainTable, readsFxRates)
      .bindTable(this.idempotencyTable, idempotencyKeys)
      .bindKey(this.key, 'both') // seals the card summary and idempotent responses; opens the payer
      .bindMacKey(this.fingerprintKey, 'generate')
      .bindQueue(this.sandboxCallbacks, 'send'); // the sandbox schedules its asynchronous results (SANDBOX_CALLBACK_QUEUE_URL)
    const captureOrder = fn('CaptureOrder', 'functions/handlers/capture-order.ts', 'POST /v1/orders/{id}/capture', fees)
      .bindTable(this.mainTable, { actions: movesRecords })
      .bindTable(this.idempotencyTable, idempotencyKeys)
      .bindKey(this.key, 'both');
    const createRefund = fn('CreateRefund', 'functions/handlers/create-refund.ts', 'POST /v1/refunds')
      .bindTable(this.mainTable, { actions: movesRecords })
      .bindTable(this.idempotencyTable, idempotencyKeys)
      .bindKey(this.key, 'both'); // seals idempotent responses
    const getRefund = fn('GetRefund', 'functions/handlers/get-refund.ts', 'GET /v1/refunds/{id}').bindTable(this.mainTable, { actions: ['GetItem'] });
    const listRefunds = fn('ListRefunds', 'functions/handlers/list-refunds.ts', 'GET /v1/orders/{id}/refunds') //
      .bindTable(this.mainTable, { actions: ['GetItem'], indexes: ['gsi1'] });
    // The merchant's accounts and settlement cursors (Query), its payout delay (GetItem), its delayed entries (gsi1).
    const getBalance = fn('GetBalance', 'functions/handlers/get-balance.ts', 'GET /v1/balance').bindTable(this.mainTable, { actions: ['Query', 'GetItem'], indexes: ['gsi1'] });
    // A Query of the caller's own audit chain (functions/audit/read.ts); merchant chains only, never the platform's.
    const listAuditEvents = fn('ListAuditEvents', 'functions/handlers/list-audit-events.ts', 'GET /v1/audit_events') //
      .bindTable(this.mainTable, { actions: ['Query'], onlyPartitions: ['AUDIT#merchant:*'] });
    // Public hosted checkout (payer's browser): pays through the payment service like ConfirmOrder, without the
    // idempotency table (the order's conditional claim makes double submits harmless); signs the return redirect.
    const checkout = fn('Checkout', 'functions/handlers/checkout.ts', 'Hosted checkout: GET/POST /checkout/{id}, GET/POST /checkout/{id}/3ds', confirms)
      .bindTable(this.mainTable, { actions: movesRecords, ...publicTableAccess })
      .bindTable(this.mainTable, readsFxRates)
      // Seals the card summary; never opens anything: the page shows no payer data (callers with payer: false).
      .bindKey(this.key, 'encrypt', ['card'])
      .bindMacKey(this.fingerprintKey, 'generate')
      .bindQueue(this.sandboxCallbacks, 'send')
      .bindSignKey(this.checkoutSigningKey);
    // The API reference (public): serves a page, its renderer and the spec from its own bundle; it touches nothing.
    const apiDocs = fn('ApiDocs', 'functions/handlers/api-docs.ts', 'API reference: GET /docs, /docs/rapidoc.js (the page loads GET /v1/openapi.json)');
    const coreFunctions = {
      Authorizer: authorizer,
      CreateOrder: createOrder,
      ListOrders: listOrders,
      GetOrder: getOrder,
      CloseOrder: closeOrder,
      ExpireOrders: expireOrders,
      ReconcilePayments: reconcilePayments,
      ConfirmOrder: confirmOrder,
      CaptureOrder: captureOrder,
      CreateRefund: createRefund,
      GetRefund: getRefund,
      ListRefunds: listRefunds,
      GetBalance: getBalance,
      ListAuditEvents: listAuditEvents,
      SandboxNotify: this.sandboxChannel.notify,
      SandboxNotifier: this.sandboxChannel.notifier,
      Checkout: checkout,
      ApiDocs: apiDocs,
    };

    const webhooks = addWebhooksApi(this, { stage, api: this.api, mainTable: this.mainTable, idempotencyTable: this.idempotencyTable, key: this.key });
    const settlementsApi = addSettlementsApi(this, { stage, api: this.api, mainTable: this.mainTable });

    // ── Payer receipts (the publisher and the sweeper queue order.succeeded / refund.succeeded for it) ───────────────────────────────────────────────────────────────────────────────
    this.receipts = new Receipts(this, 'Receipts', {
      stage,
      table: this.mainTable,
      key: this.key,
      senderDomain: settings.receiptsSenderDomain,
    });

    // ── Notifications: events → webhooks ──────────────────────────────────────────────────────────────
    this.notifications = new Notifications(this, 'Notifications', {
      stage,
      table: this.mainTable,
      idempotencyTable: this.idempotencyTable,
      key: this.key,
      checkoutSigningKey: this.checkoutSigningKey,
      api: this.api,
      receiptsQueue: this.receipts.queue,
    });

    // ── Settlement: the daily run (Step Functions, started by EventBridge Scheduler) ─────────────────
    this.settlement = new Settlement(this, 'Settlement', { stage, table: this.mainTable, key: this.key });
    this.auditHeads = new AuditHeads(this, 'AuditHeads', { stage, table: this.mainTable, encryptionKey: this.key });
    // ── The operator API (/operator/…, AWS_IAM): the CLI's configuration changes, as the operator's IAM principal ──
    const operatorApi = addOperatorApi(this, { stage, api: this.api, mainTable: this.mainTable, key: this.key, settlementStateMachine: this.settlement.stateMachine });
    // The committed docs/openapi.json, bundled: no table, no key, no grant.
    const openApi = fn('OpenApi', 'functions/handlers/openapi.ts', 'GET /v1/openapi.json');
    this.api.addPublicRoute('GET', '/v1/openapi.json', openApi, 'The API\'s OpenAPI document is public documentation; the function reads nothing but its own bundle (no grant).');
    this.functions = { ...coreFunctions, OpenApi: openApi, ...webhooks, ...settlementsApi, ...operatorApi, ...this.notifications.functions, ...this.settlement.functions, ...this.auditHeads.functions };

    // ── Routes ────────────────────────────────────────────────────────────────────────────────────────
    this.api.addRoute('POST', '/v1/orders', createOrder);
    this.api.addRoute('GET', '/v1/orders', listOrders);
    this.api.addRoute('GET', '/v1/orders/{id}', getOrder);
    this.api.addRoute('POST', '/v1/orders/{id}/close', closeOrder);
    this.api.addRoute('POST', '/v1/orders/{id}/confirm', confirmOrder);
    this.api.addRoute('POST', '/v1/orders/{id}/capture', captureOrder);
    this.api.addRoute('GET', '/v1/orders/{id}/refunds', listRefunds);
    this.api.addRoute('POST', '/v1/refunds', createRefund);
    this.api.addRoute('GET', '/v1/refunds/{id}', getRefund);
    this.api.addRoute('GET', '/v1/balance', getBalance);
    this.api.addRoute('GET', '/v1/audit_events', listAuditEvents);

    const checkoutReason =
      'The hosted checkout is opened by the payer\'s browser, which has no API key. The order id in the path is ' +
      'an unguessable 143-bit token that the merchant hands only to its payer (checkout_url); the routes show ' +
      'and pay that one order only (card data goes straight to the channel, nothing else of the merchant is ' +
      'readable), and the redirect to return_url is signed with the checkout KMS key.';
    this.api.addPublicRoute('GET', '/checkout/{id}', checkout, checkoutReason);
    this.api.addPublicRoute('POST', '/checkout/{id}', checkout, checkoutReason);
    this.api.addPublicRoute('GET', '/checkout/{id}/3ds', checkout, checkoutReason);
    this.api.addPublicRoute('POST', '/checkout/{id}/3ds', checkout, checkoutReason);
    const docsReason = 'The API reference is public documentation, as the spec it renders: its function holds no grant and reads no data.';
    for (const path of ['/docs', '/docs/rapidoc.js']) this.api.addPublicRoute('GET', path, apiDocs, docsReason);

    // Public URLs (checkout_url, the channel's notify URL, 3-D Secure redirects) come from configuration,
    // never from a request's Host header. Not `api.url`: that names the Stage, which depends on these functions.
    const publicBaseUrl =
      settings.publicBaseUrl ?? Fn.join('', ['https://', this.api.restApi.restApiId, '.execute-api.', this.region, '.', this.urlSuffix, `/${stage}`]);
    // The sweeps and the channel's notifications too: every change's event shows the order's checkout_url.
    for (const f of [createOrder, listOrders, getOrder, closeOrder, expireOrders, reconcilePayments, confirmOrder, captureOrder, createRefund, getRefund, listRefunds, getBalance, listAuditEvents, this.sandboxChannel.notify, checkout, ...Object.values(webhooks), ...Object.values(settlementsApi), ...this.notifications.apiFunctions, ...this.settlement.writers]) {
      f.fn.addEnvironment('PUBLIC_BASE_URL', publicBaseUrl);
    }

    // ── Schedules ─────────────────────────────────────────────────────────────────────────────────────
    new Rule(this, 'ExpireOrdersSchedule', {
      description: 'Runs ExpireOrders every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(expireOrders.fn, { retryAttempts: 0 })],
    });
    new Rule(this, 'ReconcilePaymentsSchedule', {
      description: 'Runs ReconcilePayments every 5 minutes',
      schedule: Schedule.rate(Duration.minutes(5)),
      targets: [new LambdaFunction(reconcilePayments.fn, { retryAttempts: 0 })],
    });

    // ── Alarms ────────────────────────────────────────────────────────────────────────────────────────
    // Counted by any function that applies channel results (functions/commons/metrics.ts countAlarmMetric).
    new Alarm(this, 'ChannelResultMismatchAlarm', {
      alarmDescription:
        'A verified channel result (notification or query answer) carried another amount or currency than its payment ' +
        'attempt and was refused: a channel defect, or results signed by someone holding the channel key. Logged as ' +
        '"channel result refused" with the payment id (functions/payments/README.md, Results and the ledger).',
      metric: new Metric({
        namespace: METRICS_NAMESPACE,
        metricName: ALARM_METRICS.channelResultMismatch,
        dimensionsMap: { service: 'payplane', stage },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });

    // ── Outputs (read by the operator CLI through DescribeStacks) ────────────────────────────────────
    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Invoke URL of the API stage' });
    new CfnOutput(this, 'RestApiId', { value: this.api.restApi.restApiId, description: 'REST API id' });
    new CfnOutput(this, 'StageName', { value: this.api.restApi.deploymentStage.stageName, description: 'API stage name' });
    new CfnOutput(this, 'TableName', { value: this.mainTable.tableName, description: 'Main table' });
    new CfnOutput(this, 'IdempotencyTableName', { value: this.idempotencyTable.tableName, description: 'Idempotency table' });
    new CfnOutput(this, 'CheckoutSigningKeyArn', {
      value: this.checkoutSigningKey.keyArn,
      description: 'Checkout redirect signing key (ECC_NIST_P256): merchants verify return_url signatures with its public key (kms get-public-key)',
    });
    new CfnOutput(this, 'SettlementStateMachineArn', {
      value: this.settlement.stateMachine.stateMachineArn,
      description: 'The settlement state machine: `payplane settlements run` starts an execution of it',
    });
    new CfnOutput(this, 'AuditHeadsBucketName', { value: this.auditHeads.bucket.bucketName, description: 'Signed audit chain heads (Object Lock): `payplane audit verify` reads the latest' });
    new CfnOutput(this, 'AuditHeadsKeyArn', { value: this.auditHeads.key.keyArn, description: 'Audit heads signing key (ECC_NIST_P256): verifiers check signed heads with its public key' });
    new CfnOutput(this, 'KmsKeyArn', { value: this.key.keyArn, description: 'Customer-managed KMS key' });
  }
}
