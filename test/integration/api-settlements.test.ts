import { createHash } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { transferKey } from '../../functions/ledger/transfers';
import { SettlementApi } from '../../functions/settlements/api';
import { walkReport, writeReport } from '../../functions/settlements/report';
import type { Settlement } from '../../functions/settlements/settlement';
import { SettlementStore } from '../../functions/settlements/store';
import { putOrders, putSettlement, seedEntries, type EntrySpec } from './api-settlements-world';
import { useLocalServices } from './env';

let table: string;
let store: SettlementStore;
let api: SettlementApi;

beforeAll(() => {
  table = useLocalServices().tables.main;
  store = new SettlementStore({ db: dynamo(), table });
  api = new SettlementApi(store);
});

const me = (merchantId: string) => ({ merchantId });
const at = (minute: number) => new Date(Date.UTC(2026, 11, 1, 10, minute)).toISOString();
const WINDOWS = { delayed: { from: at(0), to: at(30) }, immediate: { from: at(10), to: at(40) } };

/** Parses the report strictly (CRLF records, RFC 4180 quotes): rows of cells. */
const rows = (csv: string) =>
  csv
    .split('\r\n')
    .slice(0, -1)
    .map((l) => l.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.slice(0, -1).map((c) => c.replace(/,$/, '').replace(/^"(.*)"$/s, '$1').replaceAll('""', '"')));

const sha256 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('base64');

/** A merchant with entries inside and around one settlement's windows. */
async function world() {
  const merchant = newId('mch');
  // Transfer and order ids are global keys: unique per world, so parallel files and runs never share one.
  const tag = newId('t').slice(2, 12);
  const inside: EntrySpec[] = [
    { kind: 'capture', amount: 10_000, at: at(1), order_id: `ord_${tag}A1` },
    { kind: 'fee', amount: 320, at: at(1), order_id: `ord_${tag}A1` },
    { kind: 'conversion', amount: 5_400, at: at(2), order_id: `ord_${tag}A2`, fx: { source_currency: 'EUR', source_amount: 5_000, base_rate: '1.08', rate: '1.0692', markup_bps: 100, rate_effective_at: at(0) } },
    { kind: 'fx_spread', amount: 54, at: at(2), order_id: `ord_${tag}A2` },
    { kind: 'fee', amount: 187, at: at(2), order_id: `ord_${tag}A2` },
    { kind: 'capture', amount: 2_500, at: at(29), order_id: `ord_${tag}A3` },
    { kind: 'refund', amount: 1_000, at: at(11), order_id: `ord_${tag}A1`, refund_id: `re_${tag}A1` },
    { kind: 'adjustment', amount: 77, at: at(39), credit: false },
  ];
  const outside: EntrySpec[] = [
    { kind: 'capture', amount: 999, at: at(30), order_id: `ord_${tag}late` }, // at the delayed window's end: the next settlement's
    { kind: 'refund', amount: 5, at: at(9), order_id: `ord_${tag}A1`, refund_id: `re_${tag}early` }, // before the immediate window
    { kind: 'capture', amount: 123, at: at(5), order_id: `ord_${tag}jpy`, currency: 'JPY' }, // another currency
  ];
  const entries = await seedEntries(table, merchant, inside);
  await seedEntries(table, merchant, outside);
  await putOrders(table, merchant, [
    { id: `ord_${tag}A1`, no: '=cmd|calc' },
    { id: `ord_${tag}A2`, no: 'no-2' },
  ]);
  // ord_A3 belongs to someone else: its number must not show.
  await putOrders(table, newId('mch'), [{ id: `ord_${tag}A3`, no: 'theirs' }]);
  const settlement = await putSettlement(table, { merchantId: merchant, entries, windows: WINDOWS, createdAt: at(45), carriedIn: -250 });
  return { merchant, settlement, entries, tag };
}

describe('GET /v1/settlements', () => {
  it('lists the merchant\'s settlements newest first, page by page, and none of another merchant\'s', async () => {
    // Prepare
    const merchant = newId('mch');
    const made: Settlement[] = [];
    for (let day = 1; day <= 5; day++) {
      made.push(await putSettlement(table, { merchantId: merchant, entries: [], windows: WINDOWS, createdAt: new Date(Date.UTC(2026, 10, day)).toISOString(), status: day === 3 ? 'carried_forward' : 'paid' }));
    }
    const other = await putSettlement(table, { merchantId: newId('mch'), entries: [], windows: WINDOWS, createdAt: new Date(Date.UTC(2026, 10, 6)).toISOString() });
    // Act
    const first = await api.list(me(merchant), { limit: '2' });
    const second = await api.list(me(merchant), { limit: '2', starting_after: first.data[1]!.id });
    const third = await api.list(me(merchant), { limit: '2', starting_after: second.data[1]!.id });
    // Assess
    const newestFirst = made.map((s) => s.id).reverse();
    expect([first, second, third].flatMap((p) => p.data.map((s) => s.id))).toEqual(newestFirst);
    expect([first.has_more, second.has_more, third.has_more]).toEqual([true, true, false]);
    expect((await api.list(me(merchant), { status: 'carried_forward' })).data.map((s) => s.id)).toEqual([made[2]!.id]);
    expect((await api.list(me(merchant), { currency: 'EUR' })).data).toEqual([]);
    await expect(api.list(me(merchant), { starting_after: other.id })).rejects.toMatchObject({ status: 404, param: 'starting_after' });
    await expect(api.list(me(merchant), { limit: '0' })).rejects.toMatchObject({ status: 400, param: 'limit' });
    await expect(api.list(me(merchant), { status: 'lost' })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('in_payout') });
  });
});

describe('GET /v1/settlements/{id}', () => {
  it('shows totals, status, payout and the last 4 of the bank account only; another merchant gets 404', async () => {
    const { merchant, settlement } = await world();
    const shown = await api.get(me(merchant), settlement.id);
    expect(shown).toMatchObject({ object: 'settlement', id: settlement.id, status: 'paid', totals: settlement.totals, bank_account_last4: '4242', payout: { status: 'paid', reference: 'po_1' } });
    expect(JSON.stringify(shown)).not.toMatch(/ciphertext/);
    expect(shown.merchant_id).toBe(merchant);
    await expect(api.get(me(newId('mch')), settlement.id)).rejects.toMatchObject({ status: 404, code: 'resource_missing' });
    await expect(api.get(me(merchant), 'stl_nope')).rejects.toMatchObject({ status: 404 });
  });
});

describe('GET /v1/settlements/{id}/transactions', () => {
  it('pages through exactly the entries of its two windows, delayed then immediate, oldest first', async () => {
    const { merchant, settlement, entries, tag } = await world();
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await api.transactions(me(merchant), settlement.id, { limit: '3', ...(after ? { starting_after: after } : {}) });
      seen.push(...page.data.map((t) => t.id));
      pages++;
      if (!page.has_more) break;
      after = page.data.at(-1)!.id;
    }
    const expected = [...entries].sort((a, b) => (a.gsi1sk < b.gsi1sk ? -1 : 1)).map((e) => e.id);
    expect(seen).toEqual(expected);
    expect(pages).toBe(3);
    const all = await api.transactions(me(merchant), settlement.id, { limit: '100' });
    expect(all.data.find((t) => t.type === 'conversion')).toMatchObject({ amount: 5_400, currency: 'USD', fx: { source_currency: 'EUR', source_amount: 5_000, base_rate: '1.08' } });
    expect(all.data.find((t) => t.type === 'refund')).toMatchObject({ amount: -1_000, refund_id: `re_${tag}A1`, order_id: `ord_${tag}A1` });
    expect(all.data.reduce((a, t) => a + t.amount, 0) + settlement.totals.carried_in).toBe(settlement.totals.net);
    // A cursor outside the settlement (the next one's entry) is refused, not skipped to.
    await expect(api.transactions(me(merchant), settlement.id, { starting_after: `tr_ord_${tag}late_capture` })).rejects.toMatchObject({ status: 404, param: 'starting_after' });
    await expect(api.transactions(me(newId('mch')), settlement.id, {})).rejects.toMatchObject({ status: 404 });
  });
});

describe('GET /v1/settlements/{id}/report', () => {
  it('is the CSV of the issue: header, a line per entry, carried_in, totals = the API\'s; formulas guarded; Content-Digest of the bytes', async () => {
    // Act
    const { merchant, settlement, tag } = await world();
    const res = await api.report(me(merchant), settlement.id, {});
    if (!('text' in res)) throw new Error('expected the CSV');
    // Assess
    expect(res.contentType).toBe('text/csv; charset=utf-8');
    expect(res.headers!['Content-Digest']).toBe(`sha-256=:${sha256(res.text)}:`);
    const lines = rows(res.text);
    expect(lines[0]!.join(',')).toBe('id,type,order_id,merchant_order_no,created_at,gross_currency,gross_amount,fee_amount,exchange_rate,net_currency,net_amount');
    expect(lines).toHaveLength(1 + 8 + 1 + 1);
    expect(lines.map((l) => l[1])).toEqual(['type', 'capture', 'fee', 'conversion', 'fee', 'fx_spread', 'capture', 'refund', 'adjustment', 'carried_in', 'total']);
    const byId = Object.fromEntries(lines.map((l) => [l[0], l]));
    expect(byId[`tr_ord_${tag}A1_capture`]![3]).toBe("'=cmd|calc");
    expect(byId[`tr_ord_${tag}A3_capture`]![3]).toBe('');
    expect(byId[`tr_ord_${tag}A2_conversion`]!.slice(5)).toEqual(['EUR', '5000', '0', '1.08', 'USD', '5400']);
    expect(byId[`tr_ord_${tag}A1_capture`]![4]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const total = lines.at(-1)!;
    const api_ = await api.get(me(merchant), settlement.id);
    expect(Number(total[10])).toBe(api_.totals.net);
    expect(Number(total[7])).toBe(api_.totals.fees + api_.totals.fx);
    expect(lines.slice(1, -1).reduce((a, l) => a + Number(l[10]), 0)).toBe(api_.totals.net);
    expect(lines.slice(1, -1).reduce((a, l) => a + Number(l[7]), 0)).toBe(api_.totals.fees + api_.totals.fx);
  });

  it('writeReport stores the digests the API then serves; an entry changed afterwards makes the API refuse, not serve other bytes', async () => {
    const { merchant, settlement, tag } = await world();
    const before = await api.report(me(merchant), settlement.id, {});
    const written = await writeReport(settlement.id, store);
    const stored = await api.get(me(merchant), settlement.id);
    expect(written).toEqual({ settlement_id: settlement.id, lines: 11, sha256: stored.report!.sha256 });
    const after = await api.report(me(merchant), settlement.id, {});
    if (!('text' in before) || !('text' in after)) throw new Error('expected the CSV');
    expect(after.text).toBe(before.text);
    expect(after.headers!['Content-Digest']).toBe(stored.report!.content_digest);
    // Tamper: the ledger is immutable, so a changed entry is a defect the report must surface.
    await dynamo().send(new UpdateCommand({ TableName: table, Key: transferKey(`tr_ord_${tag}A1_fee`), UpdateExpression: 'SET entry_amount = :a', ExpressionAttributeValues: { ':a': -321 } }));
    await expect(api.report(me(merchant), settlement.id, {})).rejects.toMatchObject({ code: 'report_digest_mismatch' });
    await expect(writeReport(settlement.id, store)).rejects.toMatchObject({ code: 'report_totals_mismatch', message: expect.stringContaining('fees 508') });
  });

  it('parts cut by lines or by bytes resume from their stored start (an entry of either stream, or the closing lines alone)', async () => {
    // Prepare: the 11-line report of world(), cut small: at 3 lines, or at 300 bytes.
    const { merchant, settlement } = await world();
    const whole = (await walkReport(store, settlement, { keep: 1, limits: { lines: 100, bytes: 1 << 20 } })).text!;
    for (const limits of [{ lines: 3, bytes: 1 << 20 }, { lines: 7, bytes: 1 << 20 }, { lines: 100, bytes: 300 }, { lines: 10, bytes: 1 << 20 }]) {
      // Act
      await writeReport(settlement.id, store, limits);
      const m = (await api.get(me(merchant), settlement.id)).report!;
      const parts: string[] = [];
      for (const p of m.parts) {
        const res = await api.report(me(merchant), settlement.id, { part: String(p.part) });
        if (!('text' in res)) throw new Error('a part is CSV');
        expect(res.headers!['Content-Digest']).toBe(p.content_digest);
        expect(res.headers!['Content-Digest']).toBe(`sha-256=:${sha256(res.text)}:`);
        parts.push(res.text);
      }
      // Assess
      expect(parts.join('')).toBe(whole);
      expect(m.parts.every((p) => p.lines <= limits.lines && (p.bytes <= limits.bytes || p.lines === 1))).toBe(true);
      expect(m.parts.reduce((a, p) => a + p.lines, 0)).toBe(11);
    }
    // lines 3 and 10: a part starts at a closing line (carried_in, or the totals line alone); lines 7: one at the immediate stream's first entry.
    const manifest = await api.report(me(merchant), settlement.id, {});
    expect('text' in manifest ? undefined : (manifest.body as { parts: unknown[] }).parts).toHaveLength(2);
  });

  it('refuses a part number the report does not have, naming the range', async () => {
    const { merchant, settlement } = await world();
    await expect(api.report(me(merchant), settlement.id, { part: '2' })).rejects.toMatchObject({ status: 400, param: 'part', message: expect.stringContaining('Send 1 to 1') });
    await expect(api.report(me(merchant), settlement.id, { part: 'x' })).rejects.toMatchObject({ status: 400, param: 'part' });
    await expect(api.report(me(newId('mch')), settlement.id, {})).rejects.toMatchObject({ status: 404 });
  });
});

const runs = () => (process.env.PAYPLANE_DEEP ? 100 : 8);

describe('report totals = API totals (property, through DynamoDB Local)', () => {
  it('for random entry sets inside and outside the windows, the report\'s lines add up to GET /v1/settlements/{id}\'s totals', async () => {
    const kinds = ['capture', 'fee', 'refund', 'conversion', 'fx_spread', 'adjustment'] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ kind: fc.constantFrom(...kinds), amount: fc.integer({ min: 1, max: 1_000_000 }), minute: fc.integer({ min: 0, max: 50 }), credit: fc.boolean() }), { maxLength: 25 }),
        fc.integer({ min: -5_000, max: 5_000 }),
        async (raw, carriedIn) => {
          // Prepare: entries at random minutes; only those inside their stream's window belong to the settlement.
          const merchant = newId('mch');
          const specs: EntrySpec[] = raw.map((r, i) => ({
            kind: r.kind,
            amount: r.amount,
            at: at(r.minute),
            order_id: `ord_${merchant.slice(4, 14)}p${i}`,
            refund_id: `re_${merchant.slice(4, 14)}p${i}`,
            credit: r.credit,
            ...(r.kind === 'conversion' ? { fx: { source_currency: 'JPY', source_amount: r.amount * 150, base_rate: '0.0067', rate: '0.0066', markup_bps: 150, rate_effective_at: at(0) } } : {}),
          }));
          const items = await seedEntries(table, merchant, specs);
          const inside = items.filter((e) => {
            const w = WINDOWS[e.entry_stream];
            return e.created_at >= w.from && e.created_at < w.to;
          });
          const s = await putSettlement(table, { merchantId: merchant, entries: inside, windows: WINDOWS, createdAt: at(45), carriedIn });
          // Act
          const shown = await api.get(me(merchant), s.id);
          const res = await api.report(me(merchant), s.id, {});
          if (!('text' in res)) throw new Error('expected the CSV');
          // Assess
          const lines = rows(res.text);
          const body = lines.slice(1, -1);
          const total = lines.at(-1)!;
          expect(body.filter((l) => l[1] !== 'carried_in')).toHaveLength(shown.totals.entry_count);
          expect(body.reduce((a, l) => a + Number(l[10]), 0)).toBe(shown.totals.net);
          expect(Number(total[10])).toBe(shown.totals.net);
          expect(Number(total[7])).toBe(shown.totals.fees + shown.totals.fx);
          expect(body.reduce((a, l) => a + Number(l[7]), 0)).toBe(shown.totals.fees + shown.totals.fx);
          expect(res.headers!['Content-Digest']).toBe(`sha-256=:${sha256(res.text)}:`);
        },
      ),
      { numRuns: runs() },
    );
  });
});
