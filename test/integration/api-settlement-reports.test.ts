import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { captureTransfers, refundTransfer } from '../../functions/ledger/transfers';
import { SettlementApi } from '../../functions/settlements/api';
import { REPORT_PART_LINES, writeReport } from '../../functions/settlements/report';
import { SettlementStore } from '../../functions/settlements/store';
import { postTransfers, putOrders, putSettlement, seedEntries, type EntrySpec } from './api-settlements-world';
import { useLocalServices } from './env';

let table: string;
let store: SettlementStore;
let api: SettlementApi;

beforeAll(() => {
  table = useLocalServices().tables.main;
  store = new SettlementStore({ db: dynamo(), table });
  api = new SettlementApi(store);
});

const hex = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex');
const b64 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('base64');

describe('a 25,000-line report', () => {
  it('splits into parts whose digests verify, whose concatenation is the whole, and whose totals are the API\'s', async () => {
    // Prepare: 5,000 orders, each a capture, its fee and three partial refunds = 25,000 entries.
    const merchant = newId('mch');
    const ORDERS = 5_000;
    const base = Date.UTC(2026, 11, 1);
    const iso = (ms: number) => new Date(base + ms).toISOString();
    const specs: EntrySpec[] = [];
    const orders: Array<{ id: string; no: string }> = [];
    for (let i = 0; i < ORDERS; i++) {
      const order = `ord_${merchant.slice(4, 12)}${String(i).padStart(6, '0')}`;
      orders.push({ id: order, no: i % 10 === 0 ? `-${i}` : `no_${i}` });
      specs.push({ kind: 'capture', amount: 10_000 + i, at: iso(i * 1000), order_id: order }, { kind: 'fee', amount: 320, at: iso(i * 1000), order_id: order });
      for (let r = 0; r < 3; r++) specs.push({ kind: 'refund', amount: 100 + r, at: iso(i * 1000 + r + 1), order_id: order, refund_id: `re_${order.slice(4)}_${r}` });
    }
    const started = performance.now();
    const [entries] = await Promise.all([seedEntries(table, merchant, specs), putOrders(table, merchant, orders)]);
    const seeded = performance.now();
    const end = iso(ORDERS * 1000);
    const settlement = await putSettlement(table, { merchantId: merchant, entries, windows: { delayed: { from: iso(0), to: end }, immediate: { from: iso(0), to: end } }, createdAt: end });

    // Act
    const written = await writeReport(settlement.id, store);
    const reported = performance.now();
    const manifest = await api.report({ merchantId: merchant }, settlement.id, {});
    if ('text' in manifest) throw new Error('a 25,000-line report is served in parts');
    const m = manifest.body as { lines: number; sha256: string; content_digest: string; parts: Array<{ part: number; lines: number; sha256: string; content_digest: string; url: string }> };
    const parts: string[] = [];
    for (const p of m.parts) {
      const res = await api.report({ merchantId: merchant }, settlement.id, { part: String(p.part) });
      if (!('text' in res)) throw new Error('a part is CSV');
      // Assess each part on its own: its header digest, the manifest's digest, the bytes' own digest.
      expect(res.headers!['Content-Digest']).toBe(`sha-256=:${b64(res.text)}:`);
      expect(p.sha256).toBe(hex(res.text));
      expect(res.text.split('\r\n').length - 1).toBe(p.lines);
      parts.push(res.text);
    }
    const served = performance.now();
    console.log(
      `[report] 25,000 entries: seeded in ${Math.round(seeded - started)} ms, writeReport ${Math.round(reported - seeded)} ms, ` +
        `${m.parts.length} parts served in ${Math.round(served - reported)} ms, ${parts.join('').length} bytes`,
    );

    // Assess the whole
    expect(m.lines).toBe(1 + 25_000 + 1);
    expect(m.parts.map((p) => p.lines)).toEqual([REPORT_PART_LINES, 25_002 - REPORT_PART_LINES]);
    const whole = parts.join('');
    expect(hex(whole)).toBe(m.sha256);
    expect(written.sha256).toBe(m.sha256);
    expect(parts[0]!.startsWith('id,type,')).toBe(true);
    expect(parts[1]!.startsWith('id,type,')).toBe(false);
    const lines = whole.split('\r\n').slice(1, -1).map((l) => l.split(','));
    const total = lines.at(-1)!;
    const body = lines.slice(0, -1);
    expect(body.reduce((a, l) => a + Number(l[10]), 0)).toBe(settlement.totals.net);
    expect(Number(total[10])).toBe(settlement.totals.net);
    expect(settlement.totals).toMatchObject({ entry_count: 25_000, gross: ORDERS * 10_000 + (ORDERS * (ORDERS - 1)) / 2, fees: ORDERS * 320, refunds: ORDERS * 303 });
    expect(body.filter((l) => l[3]!.startsWith("'-"))).toHaveLength((ORDERS / 10) * 5);
  }, 240_000);
});

describe('GET /v1/bills/{date}', () => {
  it('is every capture and refund of the business day, as the payer saw them, with totals per currency and a Content-Digest', async () => {
    // Prepare: real ledger transactions (accounts too) on 1 December and either side of it.
    const merchant = newId('mch');
    const ref = (order: string, currency = 'USD') => ({ order_id: order, merchant_id: merchant, currency, channel: 'sandbox' });
    const day = (h: number, d = 1) => new Date(Date.UTC(2026, 11, d, h));
    await postTransfers(table, [
      ...captureTransfers(ref('ord_b1'), { amount: 5_000, fee: 175 }, day(0)),
      ...captureTransfers(ref('ord_b2'), { amount: 1_200, fee: 0 }, day(23)),
      ...captureTransfers(ref('ord_b3', 'JPY'), { amount: 900, fee: 30 }, day(12)),
      refundTransfer(ref('ord_b1'), { refund_id: 're_b1', amount: 2_000 }, day(13)),
      ...captureTransfers(ref('ord_b0'), { amount: 7_000, fee: 0 }, day(23, 0)), // 30 November
      ...captureTransfers(ref('ord_b4'), { amount: 8_000, fee: 0 }, day(0, 2)), // 2 December
    ]);
    await putOrders(table, merchant, [{ id: 'ord_b1', no: '+b1' }, { id: 'ord_b2', no: 'b2' }, { id: 'ord_b3', no: 'b3' }]);
    // Another merchant's payment that day.
    await postTransfers(table, captureTransfers({ ...ref('ord_x'), merchant_id: newId('mch') }, { amount: 1, fee: 0 }, day(6)));

    // Act
    const res = await api.bill({ merchantId: merchant }, '2026-12-01', {});
    if (!('text' in res)) throw new Error('expected the CSV');

    // Assess
    expect(res.headers!['Content-Digest']).toBe(`sha-256=:${b64(res.text)}:`);
    expect(res.text.split('\r\n')).toEqual([
      'id,type,order_id,merchant_order_no,refund_id,payment_id,created_at,currency,amount',
      "tr_ord_b1_capture,payment,ord_b1,'+b1,,,2026-12-01T00:00:00.000Z,USD,5000",
      'tr_ord_b3_capture,payment,ord_b3,b3,,,2026-12-01T12:00:00.000Z,JPY,900',
      "tr_re_b1_refund,refund,ord_b1,'+b1,re_b1,,2026-12-01T13:00:00.000Z,USD,-2000",
      'tr_ord_b2_capture,payment,ord_b2,b2,,,2026-12-01T23:00:00.000Z,USD,1200',
      '1,total,,,,,2026-12-01T00:00:00.000Z,JPY,900',
      '3,total,,,,,2026-12-01T00:00:00.000Z,USD,4200',
      '',
    ]);
    // In Shanghai's business day (UTC+8) the 23:00 UTC capture falls on 2 December, with the 2 December 00:00 one.
    const shanghai = await (await import('../../functions/settlements/bills')).buildBill(store, merchant, '2026-12-02', 'Asia/Shanghai');
    expect(shanghai.parts[0]!.text).toContain('tr_ord_b2_capture');
    expect(shanghai.parts[0]!.text).toContain('tr_ord_b4_capture');
    expect(shanghai.parts[0]!.text).not.toContain('tr_ord_b1_capture');
    await expect(api.bill({ merchantId: merchant }, '2026-12-32', {})).rejects.toMatchObject({ status: 400, param: 'date', message: expect.stringContaining("'2026-12-32'") });
  });
});
