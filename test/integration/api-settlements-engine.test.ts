import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { SettlementApi } from '../../functions/settlements/api';
import { businessDay } from '../../functions/settlements/calendar';
import { SettlementStore } from '../../functions/settlements/store';
import { useLocalServices } from './env';
import { card, CARDS, fee } from './payments-world';
import { clockAfterEntries, runFor, settlementCase } from './settlement-support';

/**
 * The merchant API over what the settle engine wrote (functions/settlements/settle.ts, tasks.ts): real payments, a
 * refund and a converted (EUR → USD) payment through the payment service, a run of the Task functions in-process
 * (its Report step calls writeReport), then the settlement, its transactions, its report and the bill as the API
 * serves them. The report's totals are the API's, the API's are the ledger's, and the digest is the stored one.
 */
let table: string;
let api: SettlementApi;
beforeAll(() => {
  table = useLocalServices().tables.main;
  api = new SettlementApi(new SettlementStore({ db: dynamo(), table }));
});

const b64 = (text: string) => createHash('sha256').update(Buffer.from(text, 'utf8')).digest('base64');

describe('the API over an engine-made settlement', () => {
  it('report totals = GET /v1/settlements/{id} totals = the ledger, with the Report step\'s digest; the bill has the day\'s payments', async () => {
    // Prepare
    const m = await settlementCase(table);
    const a = await m.pay(10_000);
    const b = await m.pay(4_000);
    const r = await m.refund(a.id, 1_500);
    const eur = await m.order({ amount: 8_000, currency: 'EUR' });
    const converted = await m.service.confirm(m.caller(), eur.id, card(CARDS.success));
    const rEur = await m.refund(converted.id, 2_000);
    const { cutoff, now } = clockAfterEntries();
    // Act
    const { outcomes } = await runFor(m.merchantId, cutoff, m.deps(now));
    const id = outcomes[0]!.settlement_id!;
    const caller = { merchantId: m.merchantId };
    const shown = await api.get(caller, id);
    const txns = await api.transactions(caller, id, { limit: '100' });
    const res = await api.report(caller, id, {});
    if (!('text' in res)) throw new Error('expected the CSV');
    // Assess: the API is the engine's settlement, whose net the payout paid
    expect(shown).toMatchObject({ id, status: 'paid', currency: 'USD', bank_account_last4: '6789', totals: { entry_count: 9, net: outcomes[0]!.net } });
    expect(shown.totals.gross).toBeGreaterThan(14_000);
    expect(shown.totals.fees).toBeGreaterThanOrEqual(fee(10_000) + fee(4_000));
    expect(shown.totals.fx).toBeGreaterThan(0);
    // The transactions are the ledger's entries: Σ amount = net.
    expect(txns.data).toHaveLength(9);
    expect(txns.data.reduce((sum, t) => sum + t.amount, 0)).toBe(shown.totals.net);
    expect(txns.data.map((t) => t.type).sort()).toEqual(['capture', 'capture', 'conversion', 'fee', 'fee', 'fee', 'fx_spread', 'refund', 'refund']);
    // The report: the stored digest, the totals line = the API's, every line's net adds up to it.
    expect(res.headers!['Content-Digest']).toBe(`sha-256=:${b64(res.text)}:`);
    expect(res.headers!['Content-Digest']).toBe(shown.report!.content_digest);
    const lines = res.text.split('\r\n').slice(1, -1).map((l) => l.split(','));
    const total = lines.at(-1)!;
    expect(total[1]).toBe('total');
    expect(Number(total[10])).toBe(shown.totals.net);
    expect(Number(total[7])).toBe(shown.totals.fees + shown.totals.fx);
    expect(lines.slice(0, -1).reduce((sum, l) => sum + Number(l[10]), 0)).toBe(shown.totals.net);
    // The converted lines carry the EUR side and the base rate; the refund of it too.
    const conversion = lines.find((l) => l[1] === 'conversion')!;
    expect(conversion.slice(5, 7)).toEqual(['EUR', '8000']);
    expect(conversion[8]).toMatch(/^\d+(\.\d+)?$/);
    const eurRefund = lines.find((l) => l[1] === 'refund' && l[5] === 'EUR')!;
    expect(eurRefund[6]).toBe('-2000');
    expect(Number(eurRefund[10])).toBeLessThan(0);

    // The bill of today: both USD captures, the EUR capture and both refunds, as the payer saw them.
    const bill = await api.bill(caller, businessDay(new Date()), {});
    if (!('text' in bill)) throw new Error('expected the CSV');
    const rows = bill.text.split('\r\n');
    for (const [order, cur, amount] of [[a.id, 'USD', '10000'], [b.id, 'USD', '4000'], [converted.id, 'EUR', '8000']] as const) {
      expect(rows.some((l) => l.startsWith(`tr_${order}_capture,payment,${order},`) && l.endsWith(`,${cur},${amount}`))).toBe(true);
    }
    expect(rows.filter((l) => l.includes(`,refund,`)).map((l) => l.split(',').slice(4, 5)[0]).sort()).toEqual([r.id, rEur.id].sort());
    expect(rows).toContain(`2,total,,,,,${new Date(`${businessDay(new Date())}T00:00:00.000Z`).toISOString()},EUR,6000`);
  });
});
