import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, describe, expect, it } from 'vitest';
import type { FunctionId } from '../../lib/payplane-stack';
import { STAGES } from '../../lib/stage-config';
import { actionsOf, cleanUp, logicalId, references, roleStatements, synth, type Statement } from './template';

afterAll(cleanUp);

const FUNCTIONS: Record<FunctionId, string> = {
  Authorizer: 'functions/handlers/authorizer.ts',
  CreateOrder: 'functions/handlers/create-order.ts',
  ListOrders: 'functions/handlers/list-orders.ts',
  GetOrder: 'functions/handlers/get-order.ts',
  CloseOrder: 'functions/handlers/close-order.ts',
  ExpireOrders: 'functions/handlers/expire-orders.ts',
  ReconcilePayments: 'functions/handlers/reconcile-payments.ts',
  ConfirmOrder: 'functions/handlers/confirm-order.ts',
  CaptureOrder: 'functions/handlers/capture-order.ts',
  CreateRefund: 'functions/handlers/create-refund.ts',
  GetRefund: 'functions/handlers/get-refund.ts',
  ListRefunds: 'functions/handlers/list-refunds.ts',
  GetBalance: 'functions/handlers/get-balance.ts',
  ListAuditEvents: 'functions/handlers/list-audit-events.ts',
  SandboxNotify: 'functions/handlers/sandbox-notify.ts',
  SandboxNotifier: 'functions/handlers/sandbox-notifier.ts',
  Checkout: 'functions/handlers/checkout.ts',
  ApiDocs: 'functions/handlers/api-docs.ts',
  CreateWebhookEndpoint: 'functions/handlers/create-webhook-endpoint.ts',
  ListWebhookEndpoints: 'functions/handlers/list-webhook-endpoints.ts',
  GetWebhookEndpoint: 'functions/handlers/get-webhook-endpoint.ts',
  UpdateWebhookEndpoint: 'functions/handlers/update-webhook-endpoint.ts',
  DeleteWebhookEndpoint: 'functions/handlers/delete-webhook-endpoint.ts',
  RollWebhookEndpointSecret: 'functions/handlers/roll-webhook-endpoint-secret.ts',
  ListEvents: 'functions/handlers/list-events.ts',
  GetEvent: 'functions/handlers/get-event.ts',
  PublishEvents: 'functions/handlers/publish-events.ts',
  SweepEvents: 'functions/handlers/sweep-events.ts',
  DeliverWebhooks: 'functions/handlers/deliver-webhooks.ts',
  DeliverWebhooksSlow: 'functions/handlers/deliver-webhooks.ts',
  PlatformPublicKeys: 'functions/handlers/platform-public-keys.ts',
  OpenApi: 'functions/handlers/openapi.ts',
  ResendEvent: 'functions/handlers/resend-event.ts',
  RecoverWebhookEndpoint: 'functions/handlers/recover-webhook-endpoint.ts',
  ListSettlements: 'functions/handlers/list-settlements.ts',
  GetSettlement: 'functions/handlers/get-settlement.ts',
  ListSettlementTransactions: 'functions/handlers/list-settlement-transactions.ts',
  GetSettlementReport: 'functions/handlers/get-settlement-report.ts',
  GetBill: 'functions/handlers/get-bill.ts',
  SettlementPrepare: 'functions/handlers/settlement-prepare.ts',
  SettlementSettle: 'functions/handlers/settlement-settle.ts',
  SettlementPayout: 'functions/handlers/settlement-payout.ts',
  SettlementCompensate: 'functions/handlers/settlement-compensate.ts',
  SettlementReport: 'functions/handlers/settlement-report.ts',
  SettlementSummary: 'functions/handlers/settlement-summary.ts',
  AuditHeadsSigner: 'functions/handlers/sign-audit-heads.ts',
  OperatorMerchants: 'functions/handlers/operator-merchants.ts',
  OperatorPayouts: 'functions/handlers/operator-payouts.ts',
  OperatorFxRates: 'functions/handlers/operator-fx-rates.ts',
  OperatorSettlements: 'functions/handlers/operator-settlements.ts',
  OperatorPayers: 'functions/handlers/operator-payers.ts',
};
const FUNCTION_IDS = Object.keys(FUNCTIONS) as FunctionId[];

/** The route table of the contract. */
const ROUTES: [method: string, path: string, fn: FunctionId][] = [
  ['POST', '/v1/orders', 'CreateOrder'],
  ['GET', '/v1/orders', 'ListOrders'],
  ['GET', '/v1/orders/{id}', 'GetOrder'],
  ['POST', '/v1/orders/{id}/close', 'CloseOrder'],
  ['POST', '/v1/orders/{id}/confirm', 'ConfirmOrder'],
  ['POST', '/v1/orders/{id}/capture', 'CaptureOrder'],
  ['GET', '/v1/orders/{id}/refunds', 'ListRefunds'],
  ['POST', '/v1/refunds', 'CreateRefund'],
  ['GET', '/v1/refunds/{id}', 'GetRefund'],
  ['GET', '/v1/balance', 'GetBalance'],
  ['GET', '/v1/audit_events', 'ListAuditEvents'],
  ['POST', '/v1/webhook_endpoints', 'CreateWebhookEndpoint'],
  ['GET', '/v1/webhook_endpoints', 'ListWebhookEndpoints'],
  ['GET', '/v1/webhook_endpoints/{id}', 'GetWebhookEndpoint'],
  ['POST', '/v1/webhook_endpoints/{id}', 'UpdateWebhookEndpoint'],
  ['DELETE', '/v1/webhook_endpoints/{id}', 'DeleteWebhookEndpoint'],
  ['POST', '/v1/webhook_endpoints/{id}/roll_secret', 'RollWebhookEndpointSecret'],
  ['GET', '/v1/events', 'ListEvents'],
  ['GET', '/v1/events/{id}', 'GetEvent'],
  ['POST', '/v1/events/{id}/resend', 'ResendEvent'],
  ['POST', '/v1/webhook_endpoints/{id}/recover', 'RecoverWebhookEndpoint'],
  ['GET', '/v1/settlements', 'ListSettlements'],
  ['GET', '/v1/settlements/{id}', 'GetSettlement'],
  ['GET', '/v1/settlements/{id}/transactions', 'ListSettlementTransactions'],
  ['GET', '/v1/settlements/{id}/report', 'GetSettlementReport'],
  ['GET', '/v1/bills/{date}', 'GetBill'],
];
/** The operator API (functions/operator/routes.ts): AWS_IAM, one route per configuration-changing CLI command. */
const OPERATOR_ROUTES: [method: string, path: string, fn: FunctionId][] = [
  ['POST', '/operator/merchants', 'OperatorMerchants'],
  ['PUT', '/operator/merchants/{id}/fees', 'OperatorMerchants'],
  ['PUT', '/operator/merchants/{id}/limits', 'OperatorMerchants'],
  ['PUT', '/operator/merchants/{id}/receipts', 'OperatorMerchants'],
  ['POST', '/operator/merchants/{id}/keys/roll', 'OperatorMerchants'],
  ['POST', '/operator/merchants/{id}/keys', 'OperatorMerchants'],
  ['POST', '/operator/keys/{id}/revoke', 'OperatorMerchants'],
  ['PUT', '/operator/merchants/{id}/payouts', 'OperatorPayouts'],
  ['POST', '/operator/fx_rates', 'OperatorFxRates'],
  ['POST', '/operator/settlement_runs', 'OperatorSettlements'],
  ['POST', '/operator/orders/{id}/erase_payer', 'OperatorPayers'],
];
/** Called by the payment channel, not merchants: no API key authorizer (the notification's HMAC authenticates it). */
const PUBLIC_ROUTES: [method: string, path: string, fn: FunctionId][] = [
  ['POST', '/channels/sandbox/notify', 'SandboxNotify'],
  // The hosted checkout: the payer's browser, identified by the unguessable order id in the path.
  ['GET', '/checkout/{id}', 'Checkout'],
  ['POST', '/checkout/{id}', 'Checkout'],
  ['GET', '/checkout/{id}/3ds', 'Checkout'],
  ['POST', '/checkout/{id}/3ds', 'Checkout'],
  // Receivers fetch the platform's public keys (a JWKS) to verify signatures.
  ['GET', '/v1/platform/public_keys', 'PlatformPublicKeys'],
  // The API reference page, its renderer and the spec: public documentation.
  ['GET', '/docs', 'ApiDocs'],
  ['GET', '/docs/rapidoc.js', 'ApiDocs'],
  // The API's OpenAPI document (docs/openapi.json, bundled).
  ['GET', '/v1/openapi.json', 'OpenApi'],
];

/** The environment variables each function needs, and nothing more (beyond the common four). */
type EnvVar =
  | 'TABLE_NAME'
  | 'IDEMPOTENCY_TABLE_NAME'
  | 'KMS_KEY_ARN'
  | 'FINGERPRINT_KEY_ARN'
  | 'SANDBOX_SIGNING_KEY_ARN'
  | 'SANDBOX_CALLBACK_QUEUE_URL'
  | 'CHECKOUT_SIGNING_KEY_ARN'
  | 'PUBLIC_BASE_URL'
  | 'DELIVERY_QUEUE_URL'
  | 'DELIVERY_SLOW_QUEUE_URL'
  | 'DELIVERY_DLQ_URL'
  | 'DELIVERY_LANE'
  | 'RECEIPTS_QUEUE_URL'
  | 'SETTLEMENT_LAG_SECONDS'
  | 'AUDIT_HEADS_KEY_ARN'
  | 'AUDIT_HEADS_BUCKET'
  | 'AUDIT_HEADS_LOCK_MODE'
  | 'AUDIT_HEADS_RETENTION_DAYS'
  | 'REST_API_ID'
  | 'API_STAGE_NAME'
  | 'SETTLEMENT_STATE_MACHINE_ARN';
const API_POST: EnvVar[] = ['TABLE_NAME', 'IDEMPOTENCY_TABLE_NAME', 'KMS_KEY_ARN', 'PUBLIC_BASE_URL'];
const ENV: Record<FunctionId, EnvVar[]> = {
  Authorizer: ['TABLE_NAME'],
  CreateOrder: API_POST,
  ListOrders: ['TABLE_NAME', 'KMS_KEY_ARN', 'PUBLIC_BASE_URL'],
  GetOrder: ['TABLE_NAME', 'KMS_KEY_ARN', 'PUBLIC_BASE_URL'],
  CloseOrder: API_POST,
  ExpireOrders: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  ReconcilePayments: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  ConfirmOrder: [...API_POST, 'FINGERPRINT_KEY_ARN', 'SANDBOX_CALLBACK_QUEUE_URL'],
  CaptureOrder: API_POST,
  CreateRefund: API_POST,
  GetRefund: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  ListRefunds: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetBalance: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  ListAuditEvents: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  SandboxNotify: ['TABLE_NAME', 'SANDBOX_SIGNING_KEY_ARN', 'PUBLIC_BASE_URL'],
  SandboxNotifier: ['TABLE_NAME', 'SANDBOX_SIGNING_KEY_ARN'],
  Checkout: ['TABLE_NAME', 'KMS_KEY_ARN', 'FINGERPRINT_KEY_ARN', 'SANDBOX_CALLBACK_QUEUE_URL', 'CHECKOUT_SIGNING_KEY_ARN', 'PUBLIC_BASE_URL'],
  ApiDocs: [],
  CreateWebhookEndpoint: API_POST,
  ListWebhookEndpoints: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetWebhookEndpoint: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  UpdateWebhookEndpoint: API_POST,
  DeleteWebhookEndpoint: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  RollWebhookEndpointSecret: API_POST,
  ListEvents: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetEvent: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  // + the receipts queue: both publish order.succeeded / refund.succeeded to the receipts sender.
  PublishEvents: ['TABLE_NAME', 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL', 'RECEIPTS_QUEUE_URL'],
  SweepEvents: ['TABLE_NAME', 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL', 'RECEIPTS_QUEUE_URL'],
  DeliverWebhooks: ['TABLE_NAME', 'KMS_KEY_ARN', 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL', 'DELIVERY_DLQ_URL', 'DELIVERY_LANE'],
  DeliverWebhooksSlow: ['TABLE_NAME', 'KMS_KEY_ARN', 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL', 'DELIVERY_DLQ_URL', 'DELIVERY_LANE'],
  PlatformPublicKeys: ['TABLE_NAME', 'KMS_KEY_ARN', 'CHECKOUT_SIGNING_KEY_ARN'],
  OpenApi: [],
  ResendEvent: [...API_POST, 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL'],
  RecoverWebhookEndpoint: [...API_POST, 'DELIVERY_QUEUE_URL', 'DELIVERY_SLOW_QUEUE_URL'],
  ListSettlements: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetSettlement: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  ListSettlementTransactions: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetSettlementReport: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  GetBill: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  // The operator API: no public URLs; usage plans need the API and its stage; only payouts seal (the key's ARN).
  OperatorMerchants: ['TABLE_NAME', 'REST_API_ID', 'API_STAGE_NAME'],
  OperatorPayouts: ['TABLE_NAME', 'KMS_KEY_ARN'],
  OperatorFxRates: ['TABLE_NAME'],
  OperatorSettlements: ['SETTLEMENT_STATE_MACHINE_ARN'],
  OperatorPayers: ['TABLE_NAME'],
  SettlementPrepare: ['TABLE_NAME'],
  // How far behind now its windows end (15 min; the test stage's 10 s: lib/stage-config.ts settlementLag).
  // Settle, Payout and Compensate write settlement events (the ChangeWriter renders them with PUBLIC_BASE_URL).
  SettlementSettle: ['TABLE_NAME', 'SETTLEMENT_LAG_SECONDS', 'PUBLIC_BASE_URL'],
  // Opens the bank account (purpose bank_account) for the payout channel.
  SettlementPayout: ['TABLE_NAME', 'KMS_KEY_ARN', 'PUBLIC_BASE_URL'],
  SettlementCompensate: ['TABLE_NAME', 'PUBLIC_BASE_URL'],
  SettlementReport: ['TABLE_NAME'],
  SettlementSummary: ['TABLE_NAME', 'SETTLEMENT_LAG_SECONDS'],
  AuditHeadsSigner: ['AUDIT_HEADS_LOCK_MODE', 'AUDIT_HEADS_RETENTION_DAYS', 'TABLE_NAME', 'AUDIT_HEADS_KEY_ARN', 'AUDIT_HEADS_BUCKET'],
};

describe.each(STAGES)('stage %s', (stage) => {
  const s = () => synth(stage);

  describe('keys', () => {
    it('six keys: the symmetric CMK, two HMAC_256 keys (sandbox signatures, card fingerprints), the checkout and audit heads ECC signing keys, the backup vault\'s key', () => {
      const { template, stack } = s();
      template.resourceCountIs('AWS::KMS::Key', 6);
      expect(template.toJSON().Resources[logicalId(stack.backup.key)].Properties.EnableKeyRotation).toBe(true);
      expect(template.toJSON().Resources[logicalId(stack.checkoutSigningKey)].Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
      template.hasResourceProperties('AWS::KMS::Alias', {
        AliasName: `alias/payplane-${stage}-checkout-signing`,
        TargetKeyId: { 'Fn::GetAtt': [logicalId(stack.checkoutSigningKey), 'Arn'] },
      });
      expect(template.toJSON().Outputs.CheckoutSigningKeyArn.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.checkoutSigningKey), 'Arn'] });
      const resources = template.toJSON().Resources;
      expect(resources[logicalId(stack.key)].Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT');
      for (const key of [stack.sandboxSigningKey, stack.fingerprintKey]) {
        expect(resources[logicalId(key)].Properties).toMatchObject({ KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' });
      }
    });

    it('the CMK rotates and has the alias alias/payplane-<stage>', () => {
      // Prepare / Act
      const { template } = s();
      // Assess
      template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
      template.hasResourceProperties('AWS::KMS::Alias', {
        AliasName: `alias/payplane-${stage}`,
        TargetKeyId: { 'Fn::GetAtt': [logicalId(s().stack.key), 'Arn'] },
      });
    });
  });

  describe('tables', () => {
    it('main table: pk/sk, gsi1 (full items for lists), sparse gsi2 (ids for the sweeps), TTL ttl, NEW_AND_OLD_IMAGES stream, on-demand, PITR, CMK', () => {
      const { template, stack } = s();
      template.resourceCountIs('AWS::DynamoDB::GlobalTable', 2);
      const gsi = (n: string, Projection: object) => ({
        IndexName: n,
        KeySchema: [
          { AttributeName: `${n}pk`, KeyType: 'HASH' },
          { AttributeName: `${n}sk`, KeyType: 'RANGE' },
        ],
        Projection,
      });
      const props = template.toJSON().Resources[logicalId(stack.mainTable)].Properties;
      expect(props).toMatchObject({
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
        GlobalSecondaryIndexes: [
          gsi('gsi1', { ProjectionType: 'ALL' }),
          gsi('gsi2', { ProjectionType: 'INCLUDE', NonKeyAttributes: ['type', 'id', 'merchant_id', 'expires_at'] }),
        ],
      });
      expect(props.AttributeDefinitions).toEqual(
        expect.arrayContaining(['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'].map((n) => ({ AttributeName: n, AttributeType: 'S' }))),
      );
      expect(props.Replicas).toHaveLength(1);
      expect(props.Replicas[0]).toMatchObject({
        Region: 'us-east-1',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] } },
      });
    });

    it('idempotency table: id, TTL expiration, no stream, on-demand, PITR, same CMK', () => {
      const { template, stack } = s();
      const props = template.toJSON().Resources[logicalId(stack.idempotencyTable)].Properties;
      expect(props).toMatchObject({
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
      });
      expect(props.StreamSpecification).toBeUndefined();
      expect(props.GlobalSecondaryIndexes).toBeUndefined();
      expect(props.Replicas[0]).toMatchObject({
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] } },
      });
    });
  });

  describe('functions', () => {
    it('has exactly the functions of the contract', () => {
      const { template, stack } = s();
      // + the receipts sender, which its construct owns (test/infra/receipts.test.ts).
      template.resourceCountIs('AWS::Lambda::Function', FUNCTION_IDS.length + 1);
      expect(Object.keys(stack.functions).sort()).toEqual([...FUNCTION_IDS].sort());
    });

    it.each(FUNCTION_IDS)('%s: its entry, Node 22 on arm64, 512 MB, active tracing, own log group, common env', (id) => {
      const { template, stack } = s();
      const fn = stack.functions[id];
      // The contract the local cloud and the docs use: the construct id; the notification pipeline's functions
      // live in its feature construct, the others keep the stack-level logical ids ('Default' constructs).
      const inNotifications = id in s().stack.notifications.functions;
      const inSettlement = id in s().stack.settlement.functions;
      const inAuditHeads = id in s().stack.auditHeads.functions;
      // The settlement's steps are named in their construct (Settlement/Settle): the logical id still starts with the FunctionId.
      if (inSettlement) expect(fn.node.path).toBe(`Payplane-${stage}/Settlement/${id.slice('Settlement'.length)}`);
      else if (inAuditHeads) expect(fn.node.path).toBe(`Payplane-${stage}/AuditHeads/${id.slice('AuditHeads'.length)}`);
      else expect(fn.node.id).toBe(id);
      if (inNotifications) expect(fn.node.path).toBe(`Payplane-${stage}/Notifications/${id}`);
      else if (inSettlement) expect(logicalId(fn.fn)).toMatch(new RegExp(`^${id}Function[0-9A-F]{8}$`));
      else expect(logicalId(fn.fn)).toMatch(new RegExp(`^${id}Function[0-9A-F]{8}$`));
      const props = template.toJSON().Resources[logicalId(fn.fn)].Properties;
      expect(props).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: 512,
        // API routes: the stage's apiTimeout, which is also how long a dead run holds its Idempotency-Key.
        Timeout: {
          ExpireOrders: 50,
          ReconcilePayments: 60,
          SandboxNotifier: 30,
          PublishEvents: 60,
          SweepEvents: 50,
          DeliverWebhooks: 30,
          DeliverWebhooksSlow: 30,
          // Settle chunks at ~60 s; Report and Summary read up to 100,000 entries.
          SettlementPrepare: 60,
          SettlementSettle: 180,
          SettlementPayout: 60,
          SettlementCompensate: 60,
          SettlementReport: 600,
          SettlementSummary: 600,
          AuditHeadsSigner: 120,
        }[id as string] ?? { dev: 10, prod: 10, test: 5 }[stage],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: logicalId(fn.logGroup) } },
        Role: { 'Fn::GetAtt': [logicalId(fn.role), 'Arn'] },
      });
      const values: Record<EnvVar, unknown> = {
        TABLE_NAME: { Ref: logicalId(stack.mainTable) },
        IDEMPOTENCY_TABLE_NAME: { Ref: logicalId(stack.idempotencyTable) },
        KMS_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] },
        FINGERPRINT_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.fingerprintKey), 'Arn'] },
        SANDBOX_SIGNING_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.sandboxSigningKey), 'Arn'] },
        CHECKOUT_SIGNING_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.checkoutSigningKey), 'Arn'] },
        SANDBOX_CALLBACK_QUEUE_URL: { Ref: logicalId(stack.sandboxCallbacks) },
        DELIVERY_QUEUE_URL: { Ref: logicalId(stack.notifications.deliveries) },
        DELIVERY_SLOW_QUEUE_URL: { Ref: logicalId(stack.notifications.slowDeliveries) },
        DELIVERY_DLQ_URL: { Ref: logicalId(stack.notifications.deliveriesDlq) },
        DELIVERY_LANE: id === 'DeliverWebhooksSlow' ? 'slow' : 'main',
        RECEIPTS_QUEUE_URL: { Ref: logicalId(stack.receipts.queue) },
        SETTLEMENT_LAG_SECONDS: stage === 'test' ? '10' : '900',
        AUDIT_HEADS_KEY_ARN: { 'Fn::GetAtt': [logicalId(stack.auditHeads.key), 'Arn'] },
        AUDIT_HEADS_BUCKET: { Ref: logicalId(stack.auditHeads.bucket) },
        AUDIT_HEADS_LOCK_MODE: stage === 'prod' ? 'COMPLIANCE' : 'GOVERNANCE',
        AUDIT_HEADS_RETENTION_DAYS: stage === 'prod' ? '400' : '1',
        PUBLIC_BASE_URL: { 'Fn::Join': ['', ['https://', { Ref: logicalId(stack.api.restApi) }, `.execute-api.${stack.region}.`, { Ref: 'AWS::URLSuffix' }, `/${stage}`]] },
        REST_API_ID: { Ref: logicalId(stack.api.restApi) },
        API_STAGE_NAME: stage,
        SETTLEMENT_STATE_MACHINE_ARN: { Ref: logicalId(stack.settlement.stateMachine) },
      };
      expect(props.Environment.Variables).toEqual({
        ...Object.fromEntries(ENV[id].map((name) => [name, values[name]])),
        STAGE: stage,
        POWERTOOLS_SERVICE_NAME: 'payplane',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
      });
      expect(fn.entry.endsWith(`/${FUNCTIONS[id]}`), fn.entry).toBe(true);
    });

    it('execution roles carry no AWS managed policies', () => {
      const { template } = s();
      for (const id of FUNCTION_IDS) {
        const role = template.toJSON().Resources[logicalId(s().stack.functions[id].role)];
        expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
      }
    });

    it.each(['ExpireOrders', 'ReconcilePayments'] as const)('%s does not retry failed runs (the next tick redoes the work)', (id) => {
      s().template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
        FunctionName: { Ref: logicalId(s().stack.functions[id].fn) },
        MaximumRetryAttempts: 0,
      });
    });
  });

  describe('REST API', () => {
    it('is named payplane-<stage>, regional, with a stage named after the stage', () => {
      const { template } = s();
      template.hasResourceProperties('AWS::ApiGateway::RestApi', {
        Name: `payplane-${stage}`,
        EndpointConfiguration: { Types: ['REGIONAL'] },
      });
      template.hasResourceProperties('AWS::ApiGateway::Stage', {
        StageName: stage,
        TracingEnabled: true,
        AccessLogSetting: {
          DestinationArn: { 'Fn::GetAtt': [logicalId(s().stack.api.accessLogs), 'Arn'] },
          Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
        },
        MethodSettings: [
          Match.objectLike({
            HttpMethod: '*',
            ResourcePath: '/*',
            LoggingLevel: 'ERROR',
            DataTraceEnabled: false,
            MetricsEnabled: true,
            ThrottlingRateLimit: stage === 'prod' ? 5000 : 500,
            ThrottlingBurstLimit: stage === 'prod' ? 5000 : 1000,
          }),
          // then one per public method (test/infra/edge.test.ts)
          ...PUBLIC_ROUTES.map(() => Match.objectLike({ ThrottlingRateLimit: Match.anyValue() })),
        ],
      });
      template.resourceCountIs('AWS::ApiGateway::Account', 1);
    });

    it('has a REQUEST authorizer on the Authorization header, cached 300 s, backed by the Authorizer function', () => {
      const { template, stack } = s();
      template.resourceCountIs('AWS::ApiGateway::Authorizer', 1);
      template.hasResourceProperties('AWS::ApiGateway::Authorizer', {
        Type: 'REQUEST',
        IdentitySource: 'method.request.header.Authorization',
        AuthorizerResultTtlInSeconds: 300,
      });
      const authorizer = Object.values(template.findResources('AWS::ApiGateway::Authorizer'))[0]!;
      expect(JSON.stringify(authorizer.Properties.AuthorizerUri)).toContain(`"${logicalId(stack.functions.Authorizer.fn)}"`);
    });

    it('routes exactly the contract table, each to its own function, all behind the authorizer', () => {
      const { template, stack } = s();
      const methods = stack.api.restApi.methods.map((m) => [m.httpMethod, m.resource.path, m] as const);
      expect(methods.map(([verb, path]) => `${verb} ${path}`).sort()).toEqual(
        [...ROUTES, ...PUBLIC_ROUTES, ...OPERATOR_ROUTES].map(([v, p]) => `${v} ${p}`).sort(),
      );
      template.resourceCountIs('AWS::ApiGateway::Method', ROUTES.length + PUBLIC_ROUTES.length + OPERATOR_ROUTES.length);

      const resources = template.toJSON().Resources;
      const authorizerId = logicalId(stack.api.authorizer);
      const targets = new Set<string>();
      for (const [verb, path, fnId] of ROUTES) {
        const method = methods.find(([v, p]) => v === verb && p === path)![2];
        const props = resources[logicalId(method)].Properties;
        expect(props, `${verb} ${path}`).toMatchObject({
          AuthorizationType: 'CUSTOM',
          AuthorizerId: { Ref: authorizerId },
          Integration: { Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' },
          RequestValidatorId: { Ref: logicalId(stack.api.node.findChild('ParameterValidator')) },
        });
        expect(JSON.stringify(props.Integration.Uri), `${verb} ${path}`).toContain(`"${logicalId(stack.functions[fnId].fn)}"`);
        targets.add(fnId);
        if (path.includes('{id}')) expect(props.RequestParameters).toEqual({ 'method.request.path.id': true });
      }
      expect(targets.size).toBe(ROUTES.length);
    });

    it('the operator routes are AWS_IAM, need no API key, have no authorizer, and go to their function', () => {
      const { template, stack } = s();
      for (const [verb, path, fnId] of OPERATOR_ROUTES) {
        const method = stack.api.restApi.methods.find((m) => m.httpMethod === verb && m.resource.path === path)!;
        const props = template.toJSON().Resources[logicalId(method)].Properties;
        expect(props.AuthorizationType, `${verb} ${path}`).toBe('AWS_IAM');
        expect(props.ApiKeyRequired ?? false, `${verb} ${path}`).toBe(false);
        expect(props.AuthorizerId, `${verb} ${path}`).toBeUndefined();
        expect(props.Integration).toMatchObject({ Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' });
        expect(JSON.stringify(props.Integration.Uri)).toContain(`"${logicalId(stack.functions[fnId].fn)}"`);
        if (path.includes('{id}')) expect(props.RequestParameters).toEqual({ 'method.request.path.id': true });
      }
      // Only the settlement function may start the state machine; the operator keeps describing it.
      const starters = FUNCTION_IDS.filter((id) => roleStatements(s(), id).some((st) => actionsOf(st).includes('states:StartExecution')));
      expect(starters).toEqual(['OperatorSettlements']);
    });

    it('the public routes (sandbox notify, hosted checkout) have no authorizer and go to their function', () => {
      const { template, stack } = s();
      for (const [verb, path, fnId] of PUBLIC_ROUTES) {
        const method = stack.api.restApi.methods.find((m) => m.httpMethod === verb && m.resource.path === path)!;
        const props = template.toJSON().Resources[logicalId(method)].Properties;
        expect(props.AuthorizationType, `${verb} ${path}`).toBe('NONE');
        expect(props.AuthorizerId, `${verb} ${path}`).toBeUndefined();
        expect(props.Integration).toMatchObject({ Type: 'AWS_PROXY', IntegrationHttpMethod: 'POST' });
        expect(JSON.stringify(props.Integration.Uri)).toContain(`"${logicalId(stack.functions[fnId].fn)}"`);
      }
    });

    it.each([
      ['UNAUTHORIZED', '401', 'authentication_error', 'invalid_api_key'],
      ['ACCESS_DENIED', '403', 'authentication_error', 'access_denied'],
      ['MISSING_AUTHENTICATION_TOKEN', '404', 'invalid_request_error', 'route_not_found'],
      ['REQUEST_TOO_LARGE', '413', 'invalid_request_error', 'request_too_large'],
      ['DEFAULT_4XX', undefined, 'invalid_request_error', 'bad_request'],
      ['DEFAULT_5XX', undefined, 'api_error', 'internal_error'],
    ])('gateway response %s → %s in our error shape with Request-Id', (type, status, errorType, code) => {
      const { template } = s();
      const responses = Object.values(template.findResources('AWS::ApiGateway::GatewayResponse', { Properties: { ResponseType: type } }));
      expect(responses).toHaveLength(1);
      const props = responses[0]!.Properties;
      expect(props.StatusCode).toBe(status);
      expect(props.ResponseParameters).toEqual({
        'gatewayresponse.header.Request-Id': 'context.requestId',
        'gatewayresponse.header.Content-Type': "'application/json'",
      });
      // API Gateway substitutes the $context variables; the rest must already be our JSON error shape.
      const body = JSON.parse(
        props.ResponseTemplates['application/json']
          .replaceAll('$context.requestId', 'req-123')
          .replaceAll('$context.error.messageString', '"API Gateway message"'),
      );
      expect(body).toEqual({
        error: { type: errorType, code, message: expect.any(String), request_id: 'req-123' },
      });
      expect(body.error.message.length).toBeGreaterThan(10);
    });

    it('has only the eight gateway responses of the contract (THROTTLED and INVALID_API_KEY: test/infra/edge.test.ts)', () => {
      s().template.resourceCountIs('AWS::ApiGateway::GatewayResponse', 8);
    });
  });

  describe('schedule', () => {
    it('has the three rules: ExpireOrders, ReconcilePayments and SweepEvents', () => {
      s().template.resourceCountIs('AWS::Events::Rule', 3);
    });

    it.each([
      ['ExpireOrders', 'rate(1 minute)'],
      ['ReconcilePayments', 'rate(5 minutes)'],
      ['SweepEvents', 'rate(1 minute)'],
    ] as const)('runs %s on %s, without retries, invoked by EventBridge only', (id, rate) => {
      const { template, stack } = s();
      template.hasResourceProperties('AWS::Events::Rule', {
        ScheduleExpression: rate,
        State: 'ENABLED',
        Targets: [
          Match.objectLike({
            Arn: { 'Fn::GetAtt': [logicalId(stack.functions[id].fn), 'Arn'] },
            RetryPolicy: { MaximumRetryAttempts: 0 },
          }),
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Permission', {
        FunctionName: { 'Fn::GetAtt': [logicalId(stack.functions[id].fn), 'Arn'] },
        Principal: 'events.amazonaws.com',
      });
    });
  });

  describe('sandbox callbacks queue', () => {
    it('SQS-managed SSE, a DLQ after 10 receives, visibility 6× the notifier timeout', () => {
      const { template, stack } = s();
      // These two, the notification pipeline's four (test/infra/notifications.test.ts) and the receipts queue and
      // its DLQ (test/infra/receipts.test.ts).
      template.resourceCountIs('AWS::SQS::Queue', 2 + 4 + 2);
      const resources = template.toJSON().Resources;
      const queue = resources[logicalId(stack.sandboxCallbacks)].Properties;
      expect(queue).toMatchObject({
        SqsManagedSseEnabled: true,
        VisibilityTimeout: 180,
        RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [logicalId(stack.sandboxCallbacksDlq), 'Arn'] }, maxReceiveCount: 10 },
      });
      expect(resources[logicalId(stack.sandboxCallbacksDlq)].Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 86400 });
      const notifierTimeout = resources[logicalId(stack.functions.SandboxNotifier.fn)].Properties.Timeout;
      expect(queue.VisibilityTimeout).toBeGreaterThanOrEqual(6 * notifierTimeout);
    });

    it('both queues refuse requests without TLS', () => {
      const { template, stack } = s();
      for (const q of [stack.sandboxCallbacks, stack.sandboxCallbacksDlq]) {
        template.hasResourceProperties('AWS::SQS::QueuePolicy', {
          Queues: [{ Ref: logicalId(q) }],
          PolicyDocument: {
            Statement: Match.arrayWith([
              Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
            ]),
          },
        });
      }
    });

    it('SandboxNotifier consumes it with partial batch responses', () => {
      const { template, stack } = s();
      // This one, the notification pipeline's stream and two delivery lanes (test/infra/notifications.test.ts), and
      // the receipts queue's (test/infra/receipts.test.ts).
      template.resourceCountIs('AWS::Lambda::EventSourceMapping', 1 + 3 + 1);
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(stack.sandboxCallbacks), 'Arn'] },
        FunctionName: { Ref: logicalId(stack.functions.SandboxNotifier.fn) },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 10,
      });
    });
  });

  describe('outputs (read by the operator CLI)', () => {
    it('exports exactly ApiUrl, RestApiId, StageName, TableName, IdempotencyTableName, KmsKeyArn, CheckoutSigningKeyArn, SettlementStateMachineArn, AuditHeadsBucketName, AuditHeadsKeyArn', () => {
      const { template, stack } = s();
      const outputs = template.toJSON().Outputs;
      expect(Object.keys(outputs).sort()).toEqual(
        ['ApiUrl', 'AuditHeadsBucketName', 'AuditHeadsKeyArn', 'CheckoutSigningKeyArn', 'IdempotencyTableName', 'KmsKeyArn', 'RestApiId', 'SettlementStateMachineArn', 'StageName', 'TableName'].sort(),
      );
      expect(outputs.AuditHeadsBucketName.Value).toEqual({ Ref: logicalId(stack.auditHeads.bucket) });
      expect(outputs.AuditHeadsKeyArn.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.auditHeads.key), 'Arn'] });
      expect(outputs.SettlementStateMachineArn.Value).toEqual({ Ref: logicalId(stack.settlement.stateMachine) });
      expect(outputs.TableName.Value).toEqual({ Ref: logicalId(stack.mainTable) });
      expect(outputs.IdempotencyTableName.Value).toEqual({ Ref: logicalId(stack.idempotencyTable) });
      expect(outputs.KmsKeyArn.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.key), 'Arn'] });
      expect(outputs.RestApiId.Value).toEqual({ Ref: logicalId(stack.api.restApi) });
      expect(JSON.stringify(outputs.ApiUrl.Value)).toContain('.execute-api.us-east-1.');
    });
  });

  describe('least privilege', () => {
    const main = () => logicalId(s().stack.mainTable);
    const idem = () => logicalId(s().stack.idempotencyTable);
    const key = () => logicalId(s().stack.key);

    /** KMS actions the function may call itself (not only through DynamoDB). */
    const directKms = (id: FunctionId) =>
      new Set(
        roleStatements(s(), id)
          .filter((st) => !st.Condition?.StringEquals?.['kms:ViaService'])
          .flatMap(actionsOf)
          .filter((a) => a.startsWith('kms:')),
      );
    const anyKms = (id: FunctionId) => new Set(roleStatements(s(), id).flatMap(actionsOf).filter((a) => a.startsWith('kms:')));
    /** The function's DynamoDB grants on a table, as `<action>` (the table's ARN) or `<action> index/<name>`. */
    const tableGrants = (id: FunctionId, table: string) =>
      roleStatements(s(), id)
        .filter((st) => references(st, table))
        .flatMap((st) =>
          actionsOf(st)
            .filter((a) => a.startsWith('dynamodb:'))
            .flatMap((a) =>
              [st.Resource].flat().map((r) => {
                const index = /\/index\/([\w-]+)/.exec(JSON.stringify(r));
                return `${a.slice('dynamodb:'.length)}${index ? ` index/${index[1]}` : ''}`;
              }),
            ),
        )
        .sort();

    // Exactly what each function's code sends (read from the code, and used in the e2e tier unless
    // docs/iam-unused-grants.json says which untested path needs it): item actions on the table's ARN only,
    // Query on an index's ARN only for the indexes it queries, no BatchGetItem, BatchWriteItem or ConditionCheckItem.
    const MOVES_RECORDS = ['GetItem', 'PutItem', 'UpdateItem'];
    const IDEMPOTENCY_KEYS = ['DeleteItem', 'PutItem', 'UpdateItem'];
    const TABLE_GRANTS: Record<FunctionId, { main: string[]; idempotency?: string[] }> = {
      Authorizer: { main: ['GetItem'] },
      CreateOrder: { main: ['GetItem', 'PutItem'], idempotency: IDEMPOTENCY_KEYS },
      ListOrders: { main: ['GetItem', 'Query index/gsi1'] },
      GetOrder: { main: ['GetItem'] },
      CloseOrder: { main: MOVES_RECORDS, idempotency: IDEMPOTENCY_KEYS },
      ExpireOrders: { main: [...MOVES_RECORDS, 'Query index/gsi2'] }, // reads each due order, closes it with its event
      ReconcilePayments: { main: [...MOVES_RECORDS, 'Query index/gsi2'] },
      // functions/fx/table.ts rateInForce: the exchange rate in force, locked at confirm (the hosted checkout confirms too).
      ConfirmOrder: { main: [...MOVES_RECORDS, 'Query'], idempotency: IDEMPOTENCY_KEYS },
      CaptureOrder: { main: MOVES_RECORDS, idempotency: IDEMPOTENCY_KEYS },
      CreateRefund: { main: MOVES_RECORDS, idempotency: IDEMPOTENCY_KEYS },
      GetRefund: { main: ['GetItem'] },
      ListRefunds: { main: ['GetItem', 'Query index/gsi1'] },
      // Accounts and settlement cursors (Query), the merchant's payout delay (GetItem), its delayed entries (gsi1).
      GetBalance: { main: ['GetItem', 'Query', 'Query index/gsi1'] },
      // functions/audit/read.ts: the caller's own AUDIT#merchant:<id> partition.
      ListAuditEvents: { main: ['Query'] },
      SandboxNotify: { main: MOVES_RECORDS },
      SandboxNotifier: { main: ['GetItem', 'PutItem', 'UpdateItem'] },
      Checkout: { main: [...MOVES_RECORDS, 'Query'] },
      // functions/webhooks/endpoints.ts: create and delete also move the merchant's endpoint count (UpdateItem); every
      // change reads its audit chain's head (GetItem) and puts the entry and the head (PutItem) in its transaction.
      CreateWebhookEndpoint: { main: ['GetItem', 'PutItem', 'UpdateItem'], idempotency: IDEMPOTENCY_KEYS },
      ListWebhookEndpoints: { main: ['GetItem', 'Query index/gsi1'] },
      GetWebhookEndpoint: { main: ['GetItem'] },
      UpdateWebhookEndpoint: { main: ['GetItem', 'PutItem', 'UpdateItem'], idempotency: IDEMPOTENCY_KEYS },
      DeleteWebhookEndpoint: { main: ['DeleteItem', 'GetItem', 'PutItem', 'UpdateItem'] },
      RollWebhookEndpointSecret: { main: ['GetItem', 'PutItem', 'UpdateItem'], idempotency: IDEMPOTENCY_KEYS },
      // functions/events/repository.ts: the EVENTS# and DELIVERY# partitions, by the table's own key.
      ListEvents: { main: ['Query'] },
      GetEvent: { main: ['GetItem', 'Query'] },
      // Its event source mapping reads the table's stream with its role (DescribeStream … ListStreams on the stream ARN).
      PublishEvents: { main: ['DescribeStream', 'GetRecords', 'GetShardIterator', 'ListStreams', 'PutItem', 'Query index/gsi1', 'UpdateItem'] },
      SweepEvents: { main: ['GetItem', 'PutItem', 'Query index/gsi1', 'Query index/gsi2', 'UpdateItem'] },
      // The event, its delivery and the endpoint in one BatchGetItem per message.
      DeliverWebhooks: { main: ['BatchGetItem', 'GetItem', 'PutItem', 'UpdateItem'] },
      DeliverWebhooksSlow: { main: ['BatchGetItem', 'GetItem', 'PutItem', 'UpdateItem'] },
      PlatformPublicKeys: { main: ['GetItem', 'PutItem'] },
      OpenApi: { main: [] },
      ResendEvent: { main: ['GetItem', 'Query index/gsi1', 'UpdateItem'], idempotency: IDEMPOTENCY_KEYS },
      RecoverWebhookEndpoint: { main: ['GetItem', 'Query index/gsi1', 'UpdateItem'], idempotency: IDEMPOTENCY_KEYS },
      // functions/settlements/store.ts: read-only; the report and the bill BatchGet the orders of their lines.
      ListSettlements: { main: ['GetItem', 'Query index/gsi1'] },
      GetSettlement: { main: ['GetItem'] },
      ListSettlementTransactions: { main: ['GetItem', 'Query index/gsi1'] },
      GetSettlementReport: { main: ['BatchGetItem', 'GetItem', 'Query index/gsi1'] },
      GetBill: { main: ['BatchGetItem', 'Query', 'Query index/gsi1'] },
      // functions/merchants/service.ts: transactions of merchant, key and key-id items (ConditionCheck: a restricted
      // key's merchant exists); gsi1: the merchant's keys a roll revokes.
      OperatorMerchants: { main: ['ConditionCheckItem', 'GetItem', 'PutItem', 'UpdateItem', 'Query index/gsi1'] },
      OperatorPayouts: { main: ['GetItem', 'PutItem', 'UpdateItem'] },
      OperatorFxRates: { main: ['GetItem', 'PutItem'] },
      OperatorSettlements: { main: [] },
      ApiDocs: { main: [] },
      OperatorPayers: { main: ['GetItem', 'PutItem', 'UpdateItem'] },
      // Pages the merchant accounts (gsi2 SETTLE_ACCOUNTS); records the run on the platform's audit chain.
      SettlementPrepare: { main: ['GetItem', 'PutItem', 'Query index/gsi2'] },
      // The entries (gsi1), the cursor and payout settings, then one writer transaction per settlement.
      SettlementSettle: { main: [...MOVES_RECORDS, 'Query index/gsi1'] },
      SettlementPayout: { main: MOVES_RECORDS },
      SettlementCompensate: { main: MOVES_RECORDS },
      SettlementReport: { main: ['BatchGetItem', 'GetItem', 'Query index/gsi1', 'UpdateItem'] },
      // The run's settlements (gsi2 RUN#), the statements' lines and the entries they are compared with.
      SettlementSummary: { main: ['BatchGetItem', 'GetItem', 'Query', 'Query index/gsi1', 'Query index/gsi2'] },
      // functions/audit/heads.ts listChainHeads: gsi2 AUDIT_HEADS lists the chains, BatchGetItem reads their heads.
      AuditHeadsSigner: { main: ['BatchGetItem', 'Query index/gsi2'] },
    };
    it.each(FUNCTION_IDS)('%s: exactly the DynamoDB actions its code sends, on the table or index it sends them to', (id) => {
      expect(tableGrants(id, main())).toEqual([...TABLE_GRANTS[id].main].sort());
      expect(tableGrants(id, idem())).toEqual([...(TABLE_GRANTS[id].idempotency ?? [])].sort());
    });

    it('confirming functions may Query the main table only in the FX rate partitions', () => {
      for (const id of ['ConfirmOrder', 'Checkout'] as const) {
        const queries = roleStatements(s(), id).filter((st) => actionsOf(st).includes('dynamodb:Query'));
        expect(queries.length, id).toBe(1);
        expect(queries[0]!.Condition, id).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['FXRATE#*'] } });
      }
    });

    it('audit trail: ListAuditEvents may Query merchant chains only; Prepare may write the platform chain only', () => {
      const queries = roleStatements(s(), 'ListAuditEvents').filter((st) => actionsOf(st).includes('dynamodb:Query'));
      expect(queries.map((st) => st.Condition)).toEqual([{ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['AUDIT#merchant:*'] } }]);
      const writes = roleStatements(s(), 'SettlementPrepare').filter((st) => actionsOf(st).includes('dynamodb:PutItem'));
      expect(writes.map((st) => [actionsOf(st).sort(), st.Condition])).toEqual([
        [['dynamodb:GetItem', 'dynamodb:PutItem'], { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['AUDIT#platform'] } }],
      ]);
    });

    it('a function that only reads a table may only decrypt with its key through DynamoDB; a writer also gets the data-key actions', () => {
      const viaService = (id: FunctionId) =>
        new Set(roleStatements(s(), id).filter((st) => st.Condition?.StringEquals?.['kms:ViaService']).flatMap(actionsOf));
      for (const id of ['Authorizer', 'GetOrder', 'ListOrders', 'GetRefund', 'ListRefunds', 'GetBalance', 'ListAuditEvents', 'ListWebhookEndpoints', 'GetWebhookEndpoint', 'ListEvents', 'GetEvent'] as const) {
        expect(viaService(id), id).toEqual(new Set(['kms:Decrypt', 'kms:DescribeKey']));
      }
      for (const id of ['ExpireOrders', 'SandboxNotifier', 'CreateOrder'] as const) {
        expect(viaService(id), id).toContain('kms:GenerateDataKey');
      }
    });

    it('every statement is Allow, and no action or resource is broader than needed', () => {
      for (const id of FUNCTION_IDS) {
        for (const st of roleStatements(s(), id)) {
          expect(st.Effect).toBe('Allow');
          for (const action of actionsOf(st)) {
            expect(action, id).not.toMatch(/\*/);
            expect(action, id).not.toBe('dynamodb:Scan');
          }
          const resources = JSON.stringify(st.Resource);
          // Only X-Ray (no resource-level permissions) gets "*"; index ARNs are named, never index/*.
          if (resources === '"*"') expect(actionsOf(st).every((a) => a.startsWith('xray:')), id).toBe(true);
          expect(resources, id).not.toContain('/index/*');
        }
      }
    });

    it('table-related KMS permissions only work through DynamoDB (kms:ViaService)', () => {
      const viaService = (st: Statement) => st.Condition?.StringEquals?.['kms:ViaService'];
      // The audit heads signer's S3 grant through S3 is asserted in test/infra/audit-heads.test.ts.
      const throughS3 = (st: Statement) => JSON.stringify(viaService(st)).includes('"s3.');
      for (const id of FUNCTION_IDS) {
        const tableKms = roleStatements(s(), id).filter((st) => viaService(st) && !throughS3(st));
        for (const st of tableKms) {
          expect(references(st, key())).toBe(true);
          expect(JSON.stringify(viaService(st))).toContain('dynamodb.us-east-1.');
        }
      }
    });

    it('Authorizer: reads the main table only, never writes, never calls KMS itself', () => {
      expect(directKms('Authorizer').size).toBe(0);
      expect(anyKms('Authorizer')).toEqual(new Set(['kms:Decrypt', 'kms:DescribeKey']));
    });

    it('CreateOrder: envelope encrypt (GenerateDataKey) and decrypt', () => {
      expect(directKms('CreateOrder')).toEqual(new Set(['kms:GenerateDataKey', 'kms:Decrypt']));
    });

    it.each(['GetOrder', 'ListOrders'] as const)('%s: kms:Decrypt, and no GenerateDataKey anywhere', (id) => {
      expect(directKms(id)).toEqual(new Set(['kms:Decrypt']));
      for (const action of anyKms(id)) expect(action).not.toMatch(/GenerateDataKey|Encrypt$/);
    });

    it('CloseOrder: envelope encrypt (sealed idempotent responses) and decrypt', () => {
      expect(directKms('CloseOrder')).toEqual(new Set(['kms:GenerateDataKey', 'kms:Decrypt']));
    });

    it.each(['ExpireOrders', 'ReconcilePayments'] as const)('%s: never calls KMS itself, no queue', (id) => {
      expect(directKms(id).size).toBe(0);
      expect(roleStatements(s(), id).flatMap(actionsOf).filter((a) => a.startsWith('sqs:'))).toEqual([]);
    });

    /** Functions allowed an action on a resource (by logical id). */
    const holders = (action: string, resource: string) =>
      FUNCTION_IDS.filter((id) => roleStatements(s(), id).some((st) => actionsOf(st).includes(action) && references(st, resource)));
    const signing = () => logicalId(s().stack.sandboxSigningKey);
    const fingerprint = () => logicalId(s().stack.fingerprintKey);
    const callbacks = () => logicalId(s().stack.sandboxCallbacks);

    it('sandbox signing key: only SandboxNotifier may GenerateMac, only SandboxNotify may VerifyMac', () => {
      expect(holders('kms:GenerateMac', signing())).toEqual(['SandboxNotifier']);
      expect(holders('kms:VerifyMac', signing())).toEqual(['SandboxNotify']);
    });

    it('fingerprint key: only ConfirmOrder may GenerateMac, nobody may VerifyMac', () => {
      expect(holders('kms:GenerateMac', fingerprint())).toEqual(['ConfirmOrder', 'Checkout']);
      expect(holders('kms:VerifyMac', fingerprint())).toEqual([]);
    });

    it('HMAC keys are granted nothing but their MAC action', () => {
      for (const id of FUNCTION_IDS) {
        for (const st of roleStatements(s(), id).filter((st) => references(st, signing()) || references(st, fingerprint()))) {
          expect(actionsOf(st).every((a) => a === 'kms:GenerateMac' || a === 'kms:VerifyMac'), id).toBe(true);
        }
      }
    });

    it('callbacks queue: only ConfirmOrder sends (SendMessage only), only SandboxNotifier receives and deletes', () => {
      expect(holders('sqs:SendMessage', callbacks())).toEqual(['ConfirmOrder', 'Checkout']);
      expect(holders('sqs:ReceiveMessage', callbacks())).toEqual(['SandboxNotifier']);
      expect(holders('sqs:DeleteMessage', callbacks())).toEqual(['SandboxNotifier']);
      const send = roleStatements(s(), 'ConfirmOrder').filter((st) => references(st, callbacks()));
      expect(send.flatMap(actionsOf)).toEqual(['sqs:SendMessage']);
    });

    it('SandboxNotify (public): VerifyMac; no data keys, no queue', () => {
      expect(directKms('SandboxNotify')).toEqual(new Set(['kms:VerifyMac']));
      expect(roleStatements(s(), 'SandboxNotify').flatMap(actionsOf).filter((a) => a.startsWith('sqs:'))).toEqual([]);
    });

    it('checkout signing key: only Checkout may Sign; nobody may Verify; only PlatformPublicKeys may GetPublicKey (the JWKS)', () => {
      const checkoutKey = logicalId(s().stack.checkoutSigningKey);
      expect(holders('kms:Sign', checkoutKey)).toEqual(['Checkout']);
      expect(holders('kms:GetPublicKey', checkoutKey)).toEqual(['PlatformPublicKeys']);
      for (const id of FUNCTION_IDS) {
        for (const st of roleStatements(s(), id).filter((st) => references(st, checkoutKey))) {
          expect(actionsOf(st), id).toEqual([id === 'PlatformPublicKeys' ? 'kms:GetPublicKey' : 'kms:Sign']);
        }
      }
    });

    it('Checkout (public): seals (never opens), fingerprints, schedules callbacks, signs', () => {
      expect(directKms('Checkout')).toEqual(new Set(['kms:GenerateDataKey', 'kms:GenerateMac', 'kms:Sign']));
      const send = roleStatements(s(), 'Checkout').filter((st) => references(st, callbacks()));
      expect(send.flatMap(actionsOf)).toEqual(['sqs:SendMessage']);
    });

    it('SandboxNotifier: GenerateMac; no data keys', () => {
      expect(directKms('SandboxNotifier')).toEqual(new Set(['kms:GenerateMac']));
    });

    it.each(['ConfirmOrder', 'CaptureOrder', 'CreateRefund'] as const)('%s: envelope encrypt and decrypt', (id) => {
      expect(directKms(id)).toEqual(new Set(id === 'ConfirmOrder' ? ['kms:GenerateDataKey', 'kms:Decrypt', 'kms:GenerateMac'] : ['kms:GenerateDataKey', 'kms:Decrypt']));
    });

    it.each(['GetRefund', 'ListRefunds', 'GetBalance'] as const)('%s: calls no KMS itself', (id) => {
      expect(directKms(id).size).toBe(0);
    });

    /** The function's own CMK statements (not through DynamoDB): actions and the purposes they are limited to. */
    const keyUse = (id: FunctionId) =>
      roleStatements(s(), id)
        .filter((st) => references(st, key()) && !st.Condition?.StringEquals?.['kms:ViaService'])
        .map((st) => ({ actions: actionsOf(st).sort(), purposes: st.Condition?.StringEquals?.['kms:EncryptionContext:purpose'] }));

    it('webhook signing secrets: sealed only by the create and the roll, opened only by the create (a resumed request); the reads call no KMS', () => {
      expect(keyUse('CreateWebhookEndpoint')).toEqual([{ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], purposes: ['webhook_secret', 'idempotent-response'] }]);
      expect(keyUse('RollWebhookEndpointSecret')).toEqual([
        { actions: ['kms:GenerateDataKey'], purposes: ['webhook_secret', 'idempotent-response'] },
        { actions: ['kms:Decrypt'], purposes: ['idempotent-response'] },
      ]);
      expect(keyUse('UpdateWebhookEndpoint')).toEqual([{ actions: ['kms:Decrypt', 'kms:GenerateDataKey'], purposes: ['idempotent-response'] }]);
      for (const id of ['ListWebhookEndpoints', 'GetWebhookEndpoint', 'DeleteWebhookEndpoint', 'ListEvents', 'GetEvent'] as const) {
        expect(directKms(id).size, id).toBe(0);
      }
    });

    it('each function writes only to its own log group', () => {
      for (const id of FUNCTION_IDS) {
        const logs = roleStatements(s(), id).filter((st) => actionsOf(st).some((a) => a.startsWith('logs:')));
        expect(logs).toHaveLength(1);
        expect(logs[0]!.Resource).toEqual({ 'Fn::GetAtt': [logicalId(s().stack.functions[id].logGroup), 'Arn'] });
      }
    });
  });
});

describe('differences between stages', () => {
  const stateful = ['AWS::DynamoDB::GlobalTable', 'AWS::KMS::Key', 'AWS::Logs::LogGroup'];

  it.each(stateful)('%s: Retain in prod, Delete in dev', (type) => {
    for (const [stage, policy] of [['prod', 'Retain'], ['dev', 'Delete']] as const) {
      const resources = Object.values(synth(stage).template.findResources(type));
      expect(resources.length).toBeGreaterThan(0);
      for (const r of resources) {
        expect(r.DeletionPolicy, `${stage} ${type}`).toBe(policy);
        expect(r.UpdateReplacePolicy, `${stage} ${type}`).toBe(policy);
      }
    }
  });

  it('DynamoDB deletion protection is on in prod only', () => {
    for (const [stage, on] of [['prod', true], ['dev', false]] as const) {
      const tables = Object.values(synth(stage).template.findResources('AWS::DynamoDB::GlobalTable'));
      for (const t of tables) expect(t.Properties.Replicas[0].DeletionProtectionEnabled, stage).toBe(on);
    }
  });

  it('log retention is one week in dev and one year in prod (functions and API access logs)', () => {
    for (const [stage, days] of [['dev', 7], ['prod', 365]] as const) {
      const groups = Object.values(synth(stage).template.findResources('AWS::Logs::LogGroup'));
      expect(groups).toHaveLength(FUNCTION_IDS.length + 3); // + the receipts sender's and the settlement state machine's
      for (const g of groups) expect(g.Properties.RetentionInDays, stage).toBe(days);
    }
  });

  it('the KMS key waits 7 days before deletion in dev, 30 in prod', () => {
    synth('dev').template.hasResourceProperties('AWS::KMS::Key', { PendingWindowInDays: 7 });
    synth('prod').template.hasResourceProperties('AWS::KMS::Key', { PendingWindowInDays: 30 });
  });

  it('termination protection is on in prod only', () => {
    expect(synth('prod').stack.terminationProtection).toBe(true);
    expect(synth('dev').stack.terminationProtection).toBe(false);
  });

  it('the API Gateway CloudWatch role is retained in both stages (account-wide, shared)', () => {
    for (const stage of STAGES) {
      const { template } = synth(stage);
      const account = Object.values(template.findResources('AWS::ApiGateway::Account'))[0]!;
      const roleId = account.Properties.CloudWatchRoleArn['Fn::GetAtt'][0];
      expect(template.toJSON().Resources[roleId].DeletionPolicy).toBe('Retain');
    }
  });
});
