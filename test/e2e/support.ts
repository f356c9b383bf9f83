import { randomUUID } from 'node:crypto';
import { DynamoDBClient, paginateScan } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { inject } from 'vitest';
import { createMerchant } from '../../functions/merchants/service';

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

let db: DynamoDBDocumentClient | undefined;

/** A fresh merchant with its own test key, made the way the operator CLI makes one, with the operator's permissions. */
export async function newMerchant(name = 'E2E merchant'): Promise<{ id: string; key: string }> {
  const c = cloud();
  db ??= DynamoDBDocumentClient.from(new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: c.operatorCredentials }));
  const created = await createMerchant({ db, tableName: c.tables.main! }, { name });
  return { id: created.merchantId, key: created.secretKey.reveal() };
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
