import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { businessDay } from '../../functions/settlements/calendar';
import { settlementId, settlementKey, settlementListKey, type Settlement } from '../../functions/settlements/settlement';
import { cardFee, paidOrder } from './payments-support';
import { call, cloud, newMerchant, payplane } from './support';

/**
 * Issue 10 §4 over HTTP through the local cloud: real payments and a refund through the API write the ledger
 * entries; the settlement over them is written as the settle engine would (its item, by settlementKey); the
 * settlements routes, the report and the bill are then read with the merchant's key, a restricted key and another
 * merchant's key.
 */
function db(): DynamoDBDocumentClient {
  const c = cloud();
  return DynamoDBDocumentClient.from(new DynamoDBClient({ region: c.region, endpoint: c.endpoints.dynamodb, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }));
}

const digestOf = (text: string) => `sha-256=:${createHash('sha256').update(Buffer.from(text, 'utf8')).digest('base64')}:`;

describe('the settlements API', () => {
  it('serves the settlement, its transactions, its report and the day\'s bill with verified digests; scoped by merchant and scope', async () => {
    // Prepare: two paid orders and a partial refund, through the API.
    const m = await newMerchant('Settled merchant');
    const from = new Date(Date.now() - 1000).toISOString();
    const a = await paidOrder(m.key, { amount: 2_000, merchant_order_no: `-a${Date.now()}` });
    const b = await paidOrder(m.key, { amount: 3_500 });
    const refund = await call('POST', '/v1/refunds', { key: m.key, body: { order_id: a.id, amount: 500 } });
    expect(refund.status, refund.text).toBe(201);
    const to = new Date(Date.now() + 1000).toISOString();
    const fees = cardFee(2_000) + cardFee(3_500);
    const totals = { gross: 5_500, refunds: 500, fees, fx: 0, adjustments: 0, carried_in: 0, net: 5_500 - 500 - fees, entry_count: 5 };
    const s: Settlement = {
      id: settlementId(m.id, 'USD', to),
      merchant_id: m.id,
      currency: 'USD',
      status: 'paid',
      cutoff: to,
      delay_days: 0,
      windows: { delayed: { from, to }, immediate: { from, to } },
      totals,
      payout: { status: 'paid', attempts: 1, bank_account_last4: '6789', reference: 'po_e2e', paid_at: to },
      run_id: 'run-e2e',
      version: 1,
      created_at: to,
      updated_at: to,
    };
    await db().send(new PutCommand({ TableName: cloud().tables.main!, Item: { ...settlementKey(s.id), type: 'settlement', ...settlementListKey(s), ...s } }));

    // Act + Assess: the list and the settlement.
    const list = await call('GET', '/v1/settlements?limit=5', { key: m.key });
    expect(list.status, list.text).toBe(200);
    expect(list.body.data.map((x: { id: string }) => x.id)).toEqual([s.id]);
    const after = await call('GET', `/v1/settlements?starting_after=${s.id}`, { key: m.key });
    expect(after.body, after.text).toMatchObject({ data: [], has_more: false });
    const shown = await call('GET', `/v1/settlements/${s.id}`, { key: m.key });
    expect(shown.status, shown.text).toBe(200);
    expect(shown.body).toMatchObject({ id: s.id, totals, bank_account_last4: '6789', status: 'paid' });

    // The transactions, two pages.
    const page1 = await call('GET', `/v1/settlements/${s.id}/transactions?limit=3`, { key: m.key });
    expect(page1.status, page1.text).toBe(200);
    const page2 = await call('GET', `/v1/settlements/${s.id}/transactions?limit=3&starting_after=${page1.body.data[2].id}`, { key: m.key });
    const txns = [...page1.body.data, ...page2.body.data];
    expect([page1.body.has_more, page2.body.has_more]).toEqual([true, false]);
    expect(txns.map((t: { type: string }) => t.type).sort()).toEqual(['capture', 'capture', 'fee', 'fee', 'refund']);
    expect(txns.reduce((sum: number, t: { amount: number }) => sum + t.amount, 0)).toBe(totals.net);

    // The report: its Content-Digest is the bytes', its totals line the API's, the formula guarded.
    const report = await call('GET', `/v1/settlements/${s.id}/report`, { key: m.key });
    expect(report.status, report.text).toBe(200);
    expect(report.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(report.headers.get('content-digest')).toBe(digestOf(report.text));
    const lines = report.text.split('\r\n');
    expect(lines[0]).toBe('id,type,order_id,merchant_order_no,created_at,gross_currency,gross_amount,fee_amount,exchange_rate,net_currency,net_amount');
    expect(lines.at(-2)!.split(',').at(-1)).toBe(String(totals.net));
    expect(report.text).toContain(`,'${a.merchant_order_no},`);

    // The bill of today (UTC): both payments and the refund.
    const day = businessDay(new Date());
    const bill = await call('GET', `/v1/bills/${day}`, { key: m.key });
    expect(bill.status, bill.text).toBe(200);
    expect(bill.headers.get('content-digest')).toBe(digestOf(bill.text));
    expect(bill.text).toContain(`tr_${a.id}_capture,payment,${a.id},'${a.merchant_order_no},`);
    expect(bill.text).toContain(`tr_${b.id}_capture,payment,${b.id},`);
    expect(bill.text).toContain(`,refund,${a.id},`);
    expect(bill.text).toContain(',total,,,,,');
    const badDay = await call('GET', '/v1/bills/2026-02-30', { key: m.key });
    expect(badDay.status).toBe(400);
    expect(badDay.body.error).toMatchObject({ param: 'date', message: expect.stringContaining("'2026-02-30'") });

    // Another merchant sees none of it.
    const other = await newMerchant('Other merchant');
    for (const path of [`/v1/settlements/${s.id}`, `/v1/settlements/${s.id}/transactions`, `/v1/settlements/${s.id}/report`]) {
      const res = await call('GET', path, { key: other.key });
      expect(res.status, path).toBe(404);
    }
    expect((await call('GET', '/v1/settlements', { key: other.key })).body.data).toEqual([]);
    expect((await call('GET', `/v1/bills/${day}`, { key: other.key })).text).not.toContain(a.id);

    // A restricted key without the scopes gets 403 naming the scope; with them, the same answers.
    const made = await payplane('keys', 'create', '--merchant', m.id, '--scope', 'orders:read', '--json');
    expect(made.code, made.stderr).toBe(0);
    const rk = JSON.parse(made.stdout).restricted_key as string;
    const denied = await call('GET', `/v1/settlements/${s.id}/report`, { key: rk });
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'missing_scope', param: 'settlements:read' });
    expect((await call('GET', `/v1/bills/${day}`, { key: rk })).body.error).toMatchObject({ code: 'missing_scope', param: 'bills:read' });
    const scoped = JSON.parse((await payplane('keys', 'create', '--merchant', m.id, '--scope', 'settlements:read,bills:read', '--json')).stdout).restricted_key as string;
    const allowed = await call('GET', `/v1/settlements/${s.id}/report`, { key: scoped });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('content-digest')).toBe(report.headers.get('content-digest'));
    expect((await call('GET', `/v1/bills/${day}`, { key: scoped })).status).toBe(200);

    // The operator CLI, with the operator's policy: list, show, and the report into a file whose SHA-256 is the API's.
    const listed = await payplane('settlements', 'list', '--merchant', m.id, '--json');
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((x: { id: string }) => x.id)).toEqual([s.id]);
    const everyone = await payplane('settlements', 'list', '--limit', '1000', '--json');
    expect(everyone.code, everyone.stderr).toBe(0);
    const show = await payplane('settlements', 'show', s.id);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('••••6789');
    const out = join(mkdtempSync(join(tmpdir(), 'payplane-report-')), 'report.csv');
    const written = await payplane('settlements', 'report', s.id, '--out', out);
    expect(written.code, written.stderr).toBe(0);
    const file = readFileSync(out, 'utf8');
    expect(file).toBe(report.text);
    expect(written.stdout.split(' ')[0]).toBe(createHash('sha256').update(file).digest('hex'));
    expect((await payplane('settlements', 'show', 'stl_bad')).code).toBe(2);
  });

  it('after `payplane settlements run`, the report of the engine\'s settlement has the Report step\'s digest and the API\'s totals', async () => {
    // Prepare: a merchant with payout settings, two payments and a refund through the API.
    const m = await newMerchant('Settlement run merchant');
    const set = await payplane('merchants', 'payouts', 'set', '--merchant', m.id, '--delay-days', '0', '--bank-account', '000123456789');
    expect(set.code, set.stderr).toBe(0);
    const a = await paidOrder(m.key, { amount: 4_200 });
    await paidOrder(m.key, { amount: 1_300 });
    const refund = await call('POST', '/v1/refunds', { key: m.key, body: { order_id: a.id, amount: 700 } });
    expect(refund.status, refund.text).toBe(201);
    // The test stage settles entries older than 10 s (settlementLag): wait them out.
    await new Promise((r) => setTimeout(r, 11_000));
    // Act: the synthesized state machine, through the operator CLI.
    const run = await payplane('settlements', 'run', '--merchant', m.id, '--cutoff', new Date().toISOString(), '--json');
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const list = await call('GET', '/v1/settlements', { key: m.key });
    expect(list.body.data).toHaveLength(1);
    const s = list.body.data[0];
    const report = await call('GET', `/v1/settlements/${s.id}/report`, { key: m.key });
    // Assess: paid, the digest the Report step stored, totals line = API = the money moved.
    expect(s).toMatchObject({ status: 'paid', bank_account_last4: '6789', totals: { gross: 5_500, refunds: 700, fees: cardFee(4_200) + cardFee(1_300), entry_count: 5 } });
    expect(s.totals.net).toBe(5_500 - 700 - cardFee(4_200) - cardFee(1_300));
    expect(report.status, report.text).toBe(200);
    expect(report.headers.get('content-digest')).toBe(digestOf(report.text));
    expect(report.headers.get('content-digest')).toBe(s.report.content_digest);
    const lines = report.text.split('\r\n').slice(1, -1).map((l) => l.split(','));
    expect(Number(lines.at(-1)![10])).toBe(s.totals.net);
    expect(lines.slice(0, -1).reduce((sum, l) => sum + Number(l[10]), 0)).toBe(s.totals.net);
    // The ledger: everything settled is paid out, nothing left available or pending.
    const balance = await call('GET', '/v1/balance', { key: m.key });
    expect(balance.status, balance.text).toBe(200);
    expect(balance.body.available.find((b: { currency: string }) => b.currency === 'USD')?.amount ?? 0).toBe(0);
  });
});
