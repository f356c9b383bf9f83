import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, paginateScan } from '@aws-sdk/client-dynamodb';
import { inject } from 'vitest';
import { main } from '../../cli/main';
import { LOCAL_FILE_ENV } from '../../cli/target';
import { operatorCall } from '../../cli/operator-client';
import type { MerchantCreated } from '../../functions/operator/operations';

export const cloud = () => inject('localCloud');

export interface Response<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** Plain fetch against the local cloud: real HTTP, nothing in between. */
export async function call<T = any>(
  method: string,
  path: string,
  options: { key?: string; body?: unknown; raw?: string; idempotencyKey?: string; headers?: Record<string, string> } = {},
): Promise<Response<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.Authorization = `Bearer ${options.key}`;
  if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${cloud().url}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** The operator API as the CLI calls it: SigV4-signed with the operator's credentials (docs/operator-policy.json). */
export const operatorEndpoint = () => {
  const c = cloud();
  return { apiUrl: c.url, region: c.region, credentials: c.operatorCredentials };
};

/** A fresh merchant with its own test key (and its usage-plan key), made the way the operator CLI makes one: POST /operator/merchants. */
export async function newMerchant(name = 'E2E merchant'): Promise<{ id: string; key: string }> {
  const created = await operatorCall<MerchantCreated>(operatorEndpoint(), 'merchants create', { body: { name } });
  return { id: created.id, key: created.secret_key };
}

export const orderBody = (over: Record<string, unknown> = {}): Record<string, any> => ({
  merchant_order_no: `no_${randomUUID().slice(0, 18)}`,
  amount: 2500,
  currency: 'USD',
  description: 'Order from the e2e suite',
  ...over,
});

/** Every item of a table as text, binary attributes included (as the raw bytes they hold): for at-rest scans. */
export async function dump(table: string): Promise<string[]> {
  const c = cloud();
  const client = new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const items: string[] = [];
  for await (const page of paginateScan({ client }, { TableName: table })) {
    for (const item of page.Items ?? []) {
      items.push(JSON.stringify(item, (_, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v)));
    }
  }
  return items;
}

let cliFile: string | undefined;

/** Runs the operator CLI in-process against this local cloud (as `npx payplane …` would with .payplane/local.json). */
export async function payplane(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = cloud();
  if (!cliFile) {
    cliFile = join(mkdtempSync(join(tmpdir(), 'payplane-e2e-cli-')), 'local.json');
    // As the operator, with docs/operator-policy.json, as .payplane/local.json has it for `npx payplane`.
    const local = { apiUrl: c.url, region: c.region, stage: c.stage, restApiId: c.restApiId, endpoints: c.endpoints, stateMachines: c.stateMachines, tables: c.tables, operatorCredentials: c.operatorCredentials, kmsKeyArn: c.kmsKeyArn, auditHeads: c.auditHeads };
    writeFileSync(cliFile, JSON.stringify(local));
  }
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { [LOCAL_FILE_ENV]: cliFile } });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}
