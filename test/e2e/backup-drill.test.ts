import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DynamoDBClient, paginateScan } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BackupCreated } from '../../cli/backup';
import { main } from '../../cli/main';
import { LOCAL_FILE_ENV } from '../../cli/target';
import { SANDBOX_PAYOUT_ACCOUNTS } from '../../functions/channels/payouts';
import { checkLedger } from '../../functions/ledger/check';
import { PROJECT_ROOT } from '../../local/assembly';
import { startLocalCloud, type LocalCloud } from '../../local/cloud';
import { cloud as sharedCloud, payplane as sharedPayplane } from './support';

/**
 * The restore drill (issue 11 §2): a day of traffic in one local cloud (payments, a refund, a settlement paid out),
 * `payplane backup create`, then `payplane backup restore` into a NEW in-memory cloud started with the backup's key
 * material. Every item must come back identical, the ledger must hold, and every API read must answer the same in
 * both clouds; a file with one byte changed, or restored into a cloud with other key material, is refused before
 * anything is written. Its own two clouds: the shared e2e cloud takes writes from every file while a scan runs, so a
 * backup of it is not a quiet day's.
 */
const dir = mkdtempSync(join(tmpdir(), 'payplane-drill-'));
let source: LocalCloud;
let target: LocalCloud | undefined;
const base = { port: 0, inMemory: true, stage: 'test', quiet: true, schedules: false, eventSources: false, functionLogs: join(PROJECT_ROOT, '.payplane', 'logs', 'e2e-drill-functions.log') } as const;

/** The CLI against one cloud (its own local.json), as `npx payplane` reads .payplane/local.json. */
async function cli(localFile: string, ...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t), env: { [LOCAL_FILE_ENV]: localFile } });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

async function http(c: LocalCloud, method: string, path: string, key: string, body?: unknown, idempotencyKey?: string) {
  const res = await fetch(`${c.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}), ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
}

/** Every item of every table of a cloud, as plain objects. */
async function items(c: LocalCloud): Promise<Record<string, unknown>[]> {
  const db = new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const all: Record<string, unknown>[] = [];
  for (const name of Object.values(c.tables.byLogicalId)) for await (const page of paginateScan({ client: db }, { TableName: name })) all.push(...(page.Items ?? []).map((i) => unmarshall(i)));
  db.destroy();
  return all;
}

const sourceFile = join(dir, 'source.json');
const targetFile = join(dir, 'target.json');
const merchant = { id: '', key: '' };
const orderIds: string[] = [];
const replay = { key: randomUUID(), body: {} as Record<string, unknown>, response: '' };
let backup: BackupCreated;

beforeAll(async () => {
  source = await startLocalCloud({ ...base, localFile: sourceFile });
  // A day of traffic: a merchant paid out at T+0, three payments (one with a payer), a refund, a settlement run.
  const made = await cli(sourceFile, 'merchants', 'create', '--name', 'Drill Coffee', '--json');
  expect(made.code, made.stderr).toBe(0);
  Object.assign(merchant, { id: JSON.parse(made.stdout).id, key: JSON.parse(made.stdout).secret_key });
  const payouts = await cli(sourceFile, 'merchants', 'payouts', 'set', '--merchant', merchant.id, '--delay-days', '0', '--bank-account', SANDBOX_PAYOUT_ACCOUNTS.succeeds);
  expect(payouts.code, payouts.stderr).toBe(0);
  for (const [i, amount] of [4200, 1999, 12_500].entries()) {
    const body = { merchant_order_no: `drill-${i}-${randomUUID().slice(0, 8)}`, amount, currency: 'USD', ...(i === 0 ? { payer: { name: 'Jane Doe', email: 'jane@example.com' } } : {}) };
    const idempotencyKey = i === 0 ? replay.key : randomUUID();
    const order = await http(source, 'POST', '/v1/orders', merchant.key, body, idempotencyKey);
    expect(order.status, order.text).toBe(201);
    if (i === 0) Object.assign(replay, { body, response: order.text });
    const paid = await http(source, 'POST', `/v1/orders/${order.body.id}/confirm`, merchant.key, { payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' } } }, randomUUID());
    expect(paid.status, paid.text).toBe(200);
    orderIds.push(order.body.id);
  }
  const refund = await http(source, 'POST', '/v1/refunds', merchant.key, { order_id: orderIds[2], amount: 2500 }, randomUUID());
  expect(refund.status, refund.text).toBe(201);
  await new Promise((r) => setTimeout(r, 11_500)); // the test stage settles entries 10 s old (SETTLEMENT_LAG_SECONDS)
  const run = await cli(sourceFile, 'settlements', 'run', '--merchant', merchant.id, '--json');
  expect(run.code, run.stderr + run.stdout).toBe(0);
  expect(JSON.parse(run.stdout).summary.settlements).toBe(1);

  const created = await cli(sourceFile, 'backup', 'create', '--out', join(dir, 'day.ppbak.gz'), '--json');
  expect(created.code, created.stderr).toBe(0);
  backup = JSON.parse(created.stdout);
}, 240_000);

afterAll(async () => {
  await target?.stop();
  await source?.stop();
}, 60_000);

describe('the restore drill', () => {
  it('a file with one byte changed is refused, and so is a cloud with other key material, before any write', async () => {
    // One byte of the compressed file: gzip's CRC (or the digests) catch it.
    const bytes = readFileSync(backup.file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(join(dir, 'flipped.ppbak.gz'), bytes);
    // One byte of an item, recompressed: only the table's SHA-256 catches it.
    const text = gunzipSync(readFileSync(backup.file)).toString('utf8');
    const at = text.indexOf('"N":"4200"');
    expect(at).toBeGreaterThan(0);
    writeFileSync(join(dir, 'edited.ppbak.gz'), gzipSync(`${text.slice(0, at)}"N":"4201"${text.slice(at + 10)}`));
    const shared = sharedCloud();
    const sharedBefore = (await sharedPayplane('settlements', 'list', '--merchant', merchant.id, '--json')).stdout;

    const flipped = await cli(sourceFile, 'backup', 'restore', join(dir, 'flipped.ppbak.gz'));
    const edited = await cli(sourceFile, 'backup', 'restore', join(dir, 'edited.ppbak.gz'));
    // The shared e2e cloud has key material of its own.
    const otherMaterial = await sharedPayplane('backup', 'restore', backup.file);

    expect(flipped.code).toBe(2);
    expect(flipped.stderr).toMatch(/is damaged|SHA-256/);
    expect(edited.code).toBe(2);
    expect(edited.stderr).toContain('table MainTable');
    expect(edited.stderr).toContain('the file was altered or damaged. Nothing was written.');
    expect(otherMaterial.code).toBe(2);
    expect(otherMaterial.stderr).toContain(`need local key material ${backup.manifest.key_material}; the running cloud has lkm_`);
    expect(otherMaterial.stderr).toContain(`--key-material ${backup.manifest.key_material}`);
    expect((await sharedPayplane('settlements', 'list', '--merchant', merchant.id, '--json')).stdout).toBe(sharedBefore);
    expect(shared.url).not.toBe(source.url);
  });

  it('restores into a new in-memory cloud: identical items, a ledger that holds, and every read answering the same', async () => {
    // Act
    target = await startLocalCloud({ ...base, localFile: targetFile, seed: false, keyMaterialDir: join(PROJECT_ROOT, '.payplane', 'key-material', backup.manifest.key_material) });
    const restored = await cli(targetFile, 'backup', 'restore', backup.file, '--json');
    const again = await cli(targetFile, 'backup', 'create', '--out', join(dir, 'again.ppbak.gz'), '--json');
    // Assess: the digests over all items
    expect(restored.code, restored.stderr).toBe(0);
    expect(again.code, again.stderr).toBe(0);
    const digests = (b: BackupCreated) => b.manifest.tables.map((t) => [t.logical_id, t.items, t.sha256]);
    expect(digests(JSON.parse(again.stdout))).toEqual(digests(backup));
    expect(backup.manifest.tables.find((t) => t.logical_id.startsWith('MainTable'))!.items).toBeGreaterThan(50);
    // The ledger
    expect(checkLedger(await items(target))).toEqual([]);
    // Every read, the same in both clouds (the base URL aside)
    const settlements = await http(source, 'GET', '/v1/settlements', merchant.key);
    expect(settlements.body.data).toHaveLength(1);
    const stl = settlements.body.data[0].id;
    const refunds = await http(source, 'GET', `/v1/orders/${orderIds[2]}/refunds`, merchant.key);
    const events = await http(source, 'GET', '/v1/events?limit=100', merchant.key);
    expect(refunds.body.data).toHaveLength(1);
    expect(events.body.data.length).toBeGreaterThan(3);
    const reads = [
      '/v1/orders?limit=100',
      ...orderIds.flatMap((id) => [`/v1/orders/${id}`, `/v1/orders/${id}/refunds`]),
      `/v1/refunds/${refunds.body.data[0].id}`,
      '/v1/balance',
      '/v1/events?limit=100',
      ...events.body.data.map((e: { id: string }) => `/v1/events/${e.id}`),
      '/v1/settlements',
      `/v1/settlements/${stl}`,
      `/v1/settlements/${stl}/transactions`,
      `/v1/settlements/${stl}/report`,
      `/v1/bills/${new Date().toISOString().slice(0, 10)}`,
      '/v1/audit_events',
    ];
    // Stored URLs (events keep the checkout_url they were made with) name the source; live ones, the cloud answering.
    const same = (text: string) => {
      const shown = text.replaceAll(source.url, '<base>').replaceAll(target!.url, '<base>');
      return shown.startsWith('{') ? JSON.parse(shown) : shown; // the report is CSV
    };
    for (const path of reads) {
      const [a, b] = [await http(source, 'GET', path, merchant.key), await http(target, 'GET', path, merchant.key)];
      expect([a.status, b.status], `${path}: ${a.text} / ${b.text}`).toEqual([200, 200]);
      // The same JSON (a map's attribute order is DynamoDB's to choose, so not the same bytes).
      expect(same(b.text), path).toEqual(same(a.text));
    }
    // A sealed value opens: the idempotency record's response is sealed with the table key, and replays.
    const replayed = await http(target, 'POST', '/v1/orders', merchant.key, replay.body, replay.key);
    expect(replayed.status, replayed.text).toBe(201);
    expect(same(replayed.text)).toEqual(same(replay.response));
    // Restoring again into the now-full cloud is refused.
    const twice = await cli(targetFile, 'backup', 'restore', backup.file);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('is not empty');
  }, 180_000);
});
