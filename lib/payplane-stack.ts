import { CfnOutput, Duration, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import { AttributeType, ProjectionType, StreamViewType } from 'aws-cdk-lib/aws-dynamodb';
import { Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { Construct } from 'constructs';
import { PayplaneApi } from './constructs/payplane-api';
import { PayplaneFunction, type PayplaneFunctionProps } from './constructs/payplane-function';
import { PayplaneTable } from './constructs/payplane-table';
import { STAGE_SETTINGS, type Stage } from './stage-config';

export interface PayplaneStackProps extends StackProps {
  /** The stage this stack deploys. */
  readonly stage: Stage;
}

/** Lambda construct ids (a contract: the local cloud and the docs name functions by these). */
export type FunctionId = 'Authorizer' | 'CreateOrder' | 'ListOrders' | 'GetOrder' | 'CloseOrder' | 'ExpireOrders';

/**
 * One Payplane stage: the customer-managed key, the main (single-table) and idempotency tables, the REST
 * API with its Lambda authorizer and one function per route, and the order-expiry schedule.
 */
export class PayplaneStack extends Stack {
  readonly stage: Stage;
  readonly key: Key;
  readonly mainTable: PayplaneTable;
  readonly idempotencyTable: PayplaneTable;
  readonly api: PayplaneApi;
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
    this.key = new Key(this, 'Key', {
      alias: `alias/payplane-${stage}`,
      description: `Payplane ${stage}: encrypts both tables at rest and envelope-encrypts PII`,
      enableKeyRotation: true,
      removalPolicy: settings.removalPolicy,
      pendingWindow: settings.keyPendingWindow,
    });

    // ── Data ──────────────────────────────────────────────────────────────────────────────────────────
    this.mainTable = new PayplaneTable(this, 'MainTable', {
      stage,
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
          // Sparse: only orders awaiting payment, sharded by expiry, for ExpireOrders.
          indexName: 'gsi2',
          partitionKey: { name: 'gsi2pk', type: AttributeType.STRING },
          sortKey: { name: 'gsi2sk', type: AttributeType.STRING },
          projectionType: ProjectionType.ALL,
        },
      ],
    });
    // Separate on purpose: TTL churn of idempotency records must not reach the main table's stream.
    this.idempotencyTable = new PayplaneTable(this, 'IdempotencyTable', {
      stage,
      encryptionKey: this.key,
      partitionKey: { name: 'id', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
    });

    // ── Functions ─────────────────────────────────────────────────────────────────────────────────────
    const environment = {
      TABLE_NAME: this.mainTable.tableName,
      IDEMPOTENCY_TABLE_NAME: this.idempotencyTable.tableName,
      KMS_KEY_ARN: this.key.keyArn,
    };
    const fn = (id: FunctionId, entry: string, description: string, extra: Partial<PayplaneFunctionProps> = {}) =>
      new PayplaneFunction(this, id, { stage, entry, description, environment, ...extra });

    const authorizer = fn('Authorizer', 'functions/handlers/authorizer.ts', 'API key REQUEST authorizer') //
      .bindTable(this.mainTable, 'RO');
    const createOrder = fn('CreateOrder', 'functions/handlers/create-order.ts', 'POST /v1/orders')
      .bindTable(this.mainTable, 'RW')
      .bindTable(this.idempotencyTable, 'RW')
      .bindKey(this.key, 'both');
    const listOrders = fn('ListOrders', 'functions/handlers/list-orders.ts', 'GET /v1/orders')
      .bindTable(this.mainTable, 'RO')
      .bindKey(this.key, 'decrypt');
    const getOrder = fn('GetOrder', 'functions/handlers/get-order.ts', 'GET /v1/orders/{id}')
      .bindTable(this.mainTable, 'RO')
      .bindKey(this.key, 'decrypt');
    const closeOrder = fn('CloseOrder', 'functions/handlers/close-order.ts', 'POST /v1/orders/{id}/close')
      .bindTable(this.mainTable, 'RW')
      .bindTable(this.idempotencyTable, 'RW')
      .bindKey(this.key, 'both'); // seals idempotent responses
    const expireOrders = fn('ExpireOrders', 'functions/handlers/expire-orders.ts', 'Expires unpaid orders every minute', {
      // Must finish before the next tick; a failed run is simply redone by the next one.
      timeout: Duration.seconds(50),
      retryAttempts: 0,
    }).bindTable(this.mainTable, 'RW');
    this.functions = { Authorizer: authorizer, CreateOrder: createOrder, ListOrders: listOrders, GetOrder: getOrder, CloseOrder: closeOrder, ExpireOrders: expireOrders };

    // ── API ───────────────────────────────────────────────────────────────────────────────────────────
    this.api = new PayplaneApi(this, 'Api', { stage, authorizer });
    this.api.addRoute('POST', '/v1/orders', createOrder);
    this.api.addRoute('GET', '/v1/orders', listOrders);
    this.api.addRoute('GET', '/v1/orders/{id}', getOrder);
    this.api.addRoute('POST', '/v1/orders/{id}/close', closeOrder);

    // ── Schedules ─────────────────────────────────────────────────────────────────────────────────────
    new Rule(this, 'ExpireOrdersSchedule', {
      description: 'Runs ExpireOrders every minute',
      schedule: Schedule.rate(Duration.minutes(1)),
      targets: [new LambdaFunction(expireOrders.fn, { retryAttempts: 0 })],
    });

    // ── Outputs (read by the operator CLI through DescribeStacks) ────────────────────────────────────
    new CfnOutput(this, 'ApiUrl', { value: this.api.url, description: 'Invoke URL of the API stage' });
    new CfnOutput(this, 'RestApiId', { value: this.api.restApi.restApiId, description: 'REST API id' });
    new CfnOutput(this, 'StageName', { value: this.api.restApi.deploymentStage.stageName, description: 'API stage name' });
    new CfnOutput(this, 'TableName', { value: this.mainTable.tableName, description: 'Main table' });
    new CfnOutput(this, 'IdempotencyTableName', { value: this.idempotencyTable.tableName, description: 'Idempotency table' });
    new CfnOutput(this, 'KmsKeyArn', { value: this.key.keyArn, description: 'Customer-managed KMS key' });
  }
}
