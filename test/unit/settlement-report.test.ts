import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { billDay } from '../../functions/settlements/bills';
import {
  addToTally,
  checkTally,
  contentDigest,
  csvCell,
  csvLine,
  emptyTally,
  entryLine,
  REPORT_HEADER,
  totalsLine,
} from '../../functions/settlements/report';
import type { Settlement } from '../../functions/settlements/settlement';
import type { EntryItem } from '../../functions/settlements/store';

/** A strict RFC 4180 reader (no CSV parser is installed): quoted cells, doubled quotes, CRLF records only. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), (i += 2);
      else if (c === '"') (quoted = false), i++;
      else (cell += c), i++;
    } else if (c === '"' && cell === '') (quoted = true), i++;
    else if (c === ',') row.push(cell), (cell = ''), i++;
    else if (c === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), (i += 2);
    else if (c === '\r' || c === '\n' || c === '"') throw new Error(`bare ${JSON.stringify(c)} at ${i}`);
    else (cell += c), i++;
  }
  if (cell !== '' || row.length) throw new Error('the last record has no CRLF');
  return rows;
}

const entry = (over: Partial<EntryItem>): EntryItem =>
  ({
    id: 'tr_ord_a_capture',
    kind: 'capture',
    phase: 'posted',
    debit: 'receivable:sandbox:USD:1',
    credit: 'merchant:mch_a:USD',
    amount: 1000,
    currency: 'USD',
    merchant_id: 'mch_a',
    order_id: 'ord_a',
    created_at: '2026-12-01T10:00:00.000Z',
    entry_stream: 'delayed',
    entry_amount: 1000,
    gsi1sk: 'ENTRY#USD#delayed#2026-12-01T10:00:00.000Z#tr_ord_a_capture',
    ...over,
  }) as EntryItem;

describe('CSV cells', () => {
  it.each([
    ['=HYPERLINK("http://x")', `"'=HYPERLINK(""http://x"")"`],
    ['+1', "'+1"],
    ['-2', "'-2"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['a,b', '"a,b"'],
    ['plain_no-1', 'plain_no-1'],
  ])('guards and quotes the text %j as %j', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  it('writes numbers as numbers: a negative amount keeps its sign and gets no quote', () => {
    expect(csvLine(['-x', -500, 0, null, undefined])).toBe("'-x,-500,0,,\r\n");
    expect(() => csvCell(1.5)).toThrow(/integer number of minor units/);
  });

  it('a merchant_order_no that starts with "-" cannot run as a formula, and reads back as sent after the quote', () => {
    const line = csvLine(entryLine(entry({}), '-1+1'));
    const [cells] = parseCsv(line);
    expect(cells).toHaveLength(REPORT_HEADER.length);
    expect(cells![3]).toBe("'-1+1");
    expect(line.slice(0, -2).split(',').every((c) => !/^[=+\-@]/.test(c) || /^-?\d+$/.test(c))).toBe(true);
  });
});

describe('Content-Digest', () => {
  it('is RFC 9530 sha-256 of the bytes, checked against node:crypto directly', () => {
    const body = csvLine(REPORT_HEADER);
    const hex = createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex');
    expect(contentDigest(hex)).toBe(`sha-256=:${createHash('sha256').update(body).digest('base64')}:`);
    expect(contentDigest(hex)).toMatch(/^sha-256=:[A-Za-z0-9+/]{43}=:$/);
  });
});

describe('lines of entries', () => {
  it('a conversion line shows the order currency and the base rate; its fee and spread lines take from the net', () => {
    const fx = { source_currency: 'EUR', source_amount: 1000, base_rate: '1.08', rate: '1.0692', markup_bps: 100, rate_effective_at: '2026-12-01T00:00:00.000Z' };
    expect(entryLine(entry({ kind: 'conversion', fx, entry_amount: 1080 }), 'no1')).toEqual([
      'tr_ord_a_capture', 'conversion', 'ord_a', 'no1', '2026-12-01T10:00:00.000Z', 'EUR', 1000, 0, '1.08', 'USD', 1080,
    ]);
    expect(entryLine(entry({ id: 'tr_ord_a_fx_spread', kind: 'fx_spread', fx, entry_amount: -11 }), 'no1').slice(5)).toEqual(['USD', 0, 11, undefined, 'USD', -11]);
    expect(entryLine(entry({ id: 'tr_re_a_refund', kind: 'refund', entry_amount: -300 }), 'no1').slice(5)).toEqual(['USD', -300, 0, undefined, 'USD', -300]);
  });
});

const KINDS = ['capture', 'fee', 'refund', 'conversion', 'fx_spread', 'adjustment'] as const;
const runs = () => (process.env.PAYPLANE_DEEP ? 2000 : 200);

describe('report totals = API totals (property)', () => {
  it('for random entry sets, Σ of the lines equals the totals line, and the tally equals totals computed by kind', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom(...KINDS), amount: fc.integer({ min: 1, max: 10_000_000 }), sign: fc.boolean() }), { maxLength: 60 }),
        fc.integer({ min: -100_000, max: 100_000 }),
        (raw, carried) => {
          // Prepare: signed amounts as the ledger writes them (credits +, debits −; adjustments either way).
          const entries = raw.map((r, i) => {
            const credit = r.kind === 'capture' || r.kind === 'conversion' || (r.kind === 'adjustment' && r.sign);
            const fx = r.kind === 'conversion' ? { source_currency: 'JPY', source_amount: r.amount * 2, base_rate: '0.5', rate: '0.495', markup_bps: 100, rate_effective_at: 'x' } : undefined;
            return entry({ id: `tr_${i}`, kind: r.kind, entry_amount: credit ? r.amount : -r.amount, fx });
          });
          // An independent oracle of the API's totals.
          const sum = (k: string) => entries.filter((e) => e.kind === k).reduce((a, e) => a + Math.abs(e.entry_amount), 0);
          const adjustments = entries.filter((e) => e.kind === 'adjustment').reduce((a, e) => a + e.entry_amount, 0);
          const totals = { gross: sum('capture') + sum('conversion'), refunds: sum('refund'), fees: sum('fee'), fx: sum('fx_spread'), adjustments, carried_in: carried, net: 0, entry_count: entries.length };
          totals.net = totals.gross - totals.refunds - totals.fees - totals.fx + totals.adjustments + carried;
          const s = { id: 'stl_x', currency: 'USD', created_at: '2026-12-02T00:00:00.000Z', totals } as Settlement;
          // Act
          const tally = emptyTally();
          for (const e of entries) addToTally(tally, e);
          const lines = entries.map((e) => entryLine(e, undefined));
          // Assess
          expect(() => checkTally(s, tally)).not.toThrow();
          const total = totalsLine(s);
          const net = lines.reduce((a, l) => a + (l[10] as number), 0) + carried;
          const fee = lines.reduce((a, l) => a + (l[7] as number), 0);
          expect(total[10]).toBe(net);
          expect(total[10]).toBe(totals.net);
          expect(total[7]).toBe(fee);
          expect(total[7]).toBe(totals.fees + totals.fx);
        },
      ),
      { numRuns: runs() },
    );
  });

  it('refuses a report whose entries disagree with the settlement, naming the fields', () => {
    const s = { id: 'stl_x', totals: { gross: 1000, refunds: 0, fees: 0, fx: 0, adjustments: 0, carried_in: 0, net: 1000, entry_count: 1 } } as Settlement;
    const tally = emptyTally();
    addToTally(tally, entry({ entry_amount: 999 }));
    expect(() => checkTally(s, tally)).toThrow(/gross 999, net 999.*gross 1000, net 1000/);
  });
});

describe('bill dates', () => {
  it.each(['2026-13-01', '2026-02-30', '20261201', '2026-12-1', ''])('refuses %j with a 400 that names the value and the form', (day) => {
    expect(() => billDay(day, 'UTC')).toThrow(expect.objectContaining({ status: 400, param: 'date', message: expect.stringContaining(`'${day}'`) }));
  });

  it('a business day in a time zone starts at its midnight there', () => {
    expect(billDay('2026-12-01', 'Asia/Shanghai').start.toISOString()).toBe('2026-11-30T16:00:00.000Z');
  });
});
