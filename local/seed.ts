import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { PROJECT_ROOT } from './assembly';
import { LOCAL_CREDENTIALS } from './dynamodb';

/**
 * Seeds the demo merchant through the merchants domain itself (functions/merchants/service.ts,
 * `ensureDemoMerchant`): created once with a fixed id; keys are stored hashed, so every start rolls
 * and prints a fresh test key.
 */

export interface DemoMerchant {
  merchantId: string;
  keyId: string;
  /** The plaintext test key (sk_test_…), shown once. */
  secretKey: string;
  created: boolean;
}

/** Who the audit trail says seeded the demo (functions/audit/context.ts Actor): the local cloud itself. */
const SEED_BY = () => ({ actor: { type: 'system' as const, name: 'local-seed' }, requestId: `local-seed-${new Date().toISOString()}` });

interface MerchantsModule {
  ensureDemoMerchant(
    deps: {
      db: DynamoDBDocumentClient;
      tableName: string;
      usage?: { apiGateway: APIGatewayClient; restApiId: string; stageName: string };
    },
    by: ReturnType<typeof SEED_BY>,
  ): Promise<{
    merchantId: string;
    keyId: string;
    secretKey: { reveal(): string };
    created: boolean;
  }>;
}

export async function seedDemoMerchant(options: {
  endpoint: string;
  region: string;
  tableName: string;
  root?: string;
  /** The control plane, so the demo merchant gets its usage-plan key (rate limits) like any merchant. */
  apiGateway?: { endpoint: string; restApiId: string; stageName: string };
  /** @default the administrator's (the local cloud's bootstrap; operators change things through the operator API) */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}): Promise<DemoMerchant | undefined> {
  const file = join(options.root ?? PROJECT_ROOT, 'functions', 'merchants', 'service.ts');
  if (!existsSync(file)) return undefined;
  const merchants = (await import(pathToFileURL(file).href)) as Partial<MerchantsModule>;
  if (typeof merchants.ensureDemoMerchant !== 'function') return undefined;
  const credentials = options.credentials ?? LOCAL_CREDENTIALS;
  const client = new DynamoDBClient({ endpoint: options.endpoint, region: options.region, credentials });
  const gw = options.apiGateway;
  const apiGateway = gw && new APIGatewayClient({ endpoint: gw.endpoint, region: options.region, credentials });
  try {
    const db = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    const usage = gw && apiGateway ? { apiGateway, restApiId: gw.restApiId, stageName: gw.stageName } : undefined;
    const demo = await merchants.ensureDemoMerchant({ db, tableName: options.tableName, usage }, SEED_BY());
    return { merchantId: demo.merchantId, keyId: demo.keyId, secretKey: demo.secretKey.reveal(), created: demo.created };
  } finally {
    client.destroy();
    apiGateway?.destroy();
  }
}

/**
 * Seeds the documented sandbox demo exchange rates (functions/fx/settings.ts DEMO_RATES: EUR, GBP, JPY, KWD → USD
 * and back, 1 % markup, effective 2026-01-01) through the rate table's own code (`payplane fx set`), so that demo
 * payments in another currency than a merchant's settlement currency convert. Idempotent: a restart sets nothing new.
 */
export async function seedDemoRates(options: { endpoint: string; region: string; tableName: string; root?: string; credentials?: { accessKeyId: string; secretAccessKey: string } }): Promise<number | undefined> {
  const file = join(options.root ?? PROJECT_ROOT, 'functions', 'fx', 'table.ts');
  if (!existsSync(file)) return undefined;
  const fx = (await import(pathToFileURL(file).href)) as { seedDemoRates?: (deps: { db: DynamoDBDocumentClient; tableName: string }, by: ReturnType<typeof SEED_BY>) => Promise<unknown[]> };
  if (typeof fx.seedDemoRates !== 'function') return undefined;
  const client = new DynamoDBClient({ endpoint: options.endpoint, region: options.region, credentials: options.credentials ?? LOCAL_CREDENTIALS });
  try {
    return (await fx.seedDemoRates({ db: DynamoDBDocumentClient.from(client), tableName: options.tableName }, SEED_BY())).length;
  } finally {
    client.destroy();
  }
}
