import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { TestProject } from 'vitest/node';
import { seedDemoRates } from '../../functions/fx/table';
import { hasCdkApp, templateWithoutBundling } from '../../local/assembly';
import { createTables, LOCAL_CREDENTIALS, startDynamoDbLocal } from '../../local/dynamodb';
import { startKms } from '../../local/kms';
import { startS3 } from '../../local/s3';
import { LOCAL_REGION, LocalStack } from '../../local/template';

/**
 * Integration tier: DynamoDB Local (in memory, free port) with the tables of the real template,
 * synthesized without bundling, plus the KMS emulator for the template's key. Tests read it with
 * `inject('localServices')` (see test/integration/env.ts).
 */
export interface LocalServices {
  region: string;
  stackName: string;
  endpoints: { dynamodb: string; kms: string; s3: string };
  /** The signed audit heads' bucket (in the local S3) and signing key (in the KMS emulator). */
  auditHeads: { bucket: string; keyArn: string };
  /** main / idempotency: the tables the functions get as TABLE_NAME / IDEMPOTENCY_TABLE_NAME. */
  tables: { main: string; idempotency: string; byLogicalId: Record<string, string> };
  kmsKeyArn: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    localServices: LocalServices;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Lambda runs Node 22; the SDK's Node 20 notice is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  if (!hasCdkApp()) throw new Error('lib/app.ts is missing: the integration tier needs the CDK app to know the tables.');
  const started = performance.now();
  const [{ template, stackName }, dynamodb] = await Promise.all([templateWithoutBundling(), startDynamoDbLocal({ inMemory: true })]);
  const stack = new LocalStack(template, { stackName });
  let kms: Awaited<ReturnType<typeof startKms>> | undefined;
  let s3: Awaited<ReturnType<typeof startS3>> | undefined;
  const s3Root = mkdtempSync(join(tmpdir(), 'payplane-integration-s3-'));
  try {
    const [tables, kmsEndpoint, s3Endpoint] = await Promise.all([createTables(dynamodb.client, stack), startKms(stack, { inMemory: true }), startS3(stack, { root: s3Root })]);
    kms = kmsEndpoint;
    s3 = s3Endpoint;
    const main = functionEnv(stack, 'TABLE_NAME') ?? tables[0]!.tableName;
    // The documented sandbox demo rates, through the real `fx set` code path: payments in EUR, JPY, GBP or KWD
    // convert for merchants that settle in USD (the default), as in the local cloud (local/seed.ts).
    // Its own client: the probe client answers once (maxAttempts 1), and a connection DynamoDB Local resets right
    // after the tables are created must be retried, not fail the tier.
    const seeding = new DynamoDBClient({ endpoint: dynamodb.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    await seedDemoRates({ db: DynamoDBDocumentClient.from(seeding), tableName: main }, { actor: { type: 'system', name: 'local-seed' }, requestId: 'integration-setup' });
    seeding.destroy();
    project.provide('localServices', {
      region: stack.region,
      stackName,
      endpoints: { dynamodb: dynamodb.endpoint, kms: kms.url, s3: s3.url },
      auditHeads: { bucket: functionEnv(stack, 'AUDIT_HEADS_BUCKET') ?? '', keyArn: functionEnv(stack, 'AUDIT_HEADS_KEY_ARN') ?? '' },
      tables: {
        main,
        idempotency: functionEnv(stack, 'IDEMPOTENCY_TABLE_NAME') ?? '',
        byLogicalId: Object.fromEntries(tables.map((t) => [t.logicalId, t.tableName])),
      },
      kmsKeyArn: functionEnv(stack, 'KMS_KEY_ARN') ?? kms.kms.keys[0]?.arn ?? '',
    });
    console.log(`[integration] DynamoDB Local + KMS ready in ${Math.round(performance.now() - started)} ms (${tables.length} tables of ${stackName})`);
  } catch (error) {
    await dynamodb.stop();
    await kms?.stop();
    await s3?.stop();
    rmSync(s3Root, { recursive: true, force: true });
    throw error;
  }
  return async () => {
    await kms?.stop();
    await s3?.stop();
    rmSync(s3Root, { recursive: true, force: true });
    await dynamodb.stop();
  };
}

/** The value the template gives functions for `name` (they all share these variables). */
function functionEnv(stack: LocalStack, name: string): string | undefined {
  for (const [id, fn] of stack.resourcesOfType('AWS::Lambda::Function')) {
    const value = (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables?.[name];
    if (value !== undefined) return stack.resolveString(value, `${id}.Environment.Variables.${name}`);
  }
  return undefined;
}
