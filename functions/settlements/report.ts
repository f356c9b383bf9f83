import { createHash, type Hash } from 'node:crypto';
import { InternalError } from '../commons/errors';
import type { Settlement, SettlementReport, SettlementTotals } from './settlement';
import { SettlementStore, type EntryItem } from './store';

/**
 * The settlement report (docs/settlement.md § Reports): CSV, one line per ledger entry of the settlement, in the
 * order of its windows (delayed entries, then immediate ones, each oldest first), a `carried_in` line when the
 * settlement carries an earlier balance in, then a totals line. Every line reconciles on its own and the lines
 * add up to the totals line, which is the API's totals:
 *
 *   type (= entry kind)   gross_currency / gross_amount           fee_amount   exchange_rate   net_amount
 *   capture, adjustment   settlement currency / the entry         0            (empty)         the entry (signed)
 *   refund                settlement currency / the entry (< 0)   0            (empty)         the entry (< 0)
 *   conversion            the order's currency / source amount    0            base rate       the entry: source × base rate
 *   (a refund with fx)    the order's currency / −source amount   0            base rate       the entry (< 0)
 *   fee, fx_spread        settlement currency / 0                 what it took (what it took, negated)
 *   carried_in            settlement currency / carried_in        0            (empty)         carried_in
 *   total                 settlement currency / Σ(net + fee)      fees + fx    (empty)         net
 *
 * So Σ net_amount of the lines = the totals line's net = the API's `totals.net`, and its fee_amount = `fees + fx`.
 * Amounts are integer minor units (net_currency's, gross_currency's for gross_amount); times ISO 8601 UTC.
 * Text cells that a spreadsheet would run as a formula (leading = + - @, tab or CR) get a leading `'`; numbers
 * are written as numbers, so a negative amount stays a number. Lines end in CRLF (RFC 4180).
 *
 * A report longer than one response (Lambda answers at most 6 MB) is served in numbered parts of at most
 * REPORT_PART_LINES lines and REPORT_PART_BYTES bytes, cut at line ends: the parts concatenated are the whole
 * CSV byte for byte (only part 1 has the header). The manifest holds the SHA-256 of each part and of the whole.
 */
export const REPORT_HEADER = [
  'id',
  'type',
  'order_id',
  'merchant_order_no',
  'created_at',
  'gross_currency',
  'gross_amount',
  'fee_amount',
  'exchange_rate',
  'net_currency',
  'net_amount',
] as const;

/** At most this many lines per part: about 4 MB at 200 bytes a line, inside Lambda's 6 MB response. */
export const REPORT_PART_LINES = 20_000;
/** And at most this many bytes (merchant_order_no may be 64 characters): the JSON envelope's escaping fits too. */
export const REPORT_PART_BYTES = 4 * 1024 * 1024;

const EOL = '\r\n';
/** Cells starting with these run as formulas in Excel, LibreOffice and Google Sheets (OWASP CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** A cell: strings are text (guarded and quoted as needed), numbers are integer minor units. */
export type Cell = string | number | null | undefined;

export function csvCell(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InternalError('report_invalid_amount', `Report amount ${value} is not an integer number of minor units.`);
    return String(value);
  }
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export const csvLine = (cells: readonly Cell[]) => `${cells.map(csvCell).join(',')}${EOL}`;

/** RFC 9530: `sha-256=:<base64>:` of the hex digest we store. */
export const contentDigest = (sha256Hex: string) => `sha-256=:${Buffer.from(sha256Hex, 'hex').toString('base64')}:`;

/** The report's line of one entry (table above). */
export function entryLine(e: EntryItem, merchantOrderNo: string | undefined): Cell[] {
  const takes = e.kind === 'fee' || e.kind === 'fx_spread';
  const fx = !takes && e.fx ? e.fx : undefined;
  const gross = takes ? 0 : fx ? Math.sign(e.entry_amount) * fx.source_amount : e.entry_amount;
  return [
    e.id,
    e.kind,
    e.order_id,
    merchantOrderNo,
    e.created_at,
    fx ? fx.source_currency : e.currency,
    gross,
    takes ? -e.entry_amount : 0,
    fx ? fx.base_rate : undefined,
    e.currency,
    e.entry_amount,
  ];
}

export function carriedLine(s: Settlement): Cell[] {
  const c = s.totals.carried_in;
  return [s.id, 'carried_in', undefined, undefined, s.created_at, s.currency, c, 0, undefined, s.currency, c];
}

export function totalsLine(s: Settlement): Cell[] {
  const t = s.totals;
  return [s.id, 'total', undefined, undefined, s.created_at, s.currency, t.net + t.fees + t.fx, t.fees + t.fx, undefined, s.currency, t.net];
}

/** What the entry lines add up to, by the settlement's categories (settlement.ts SettlementTotals). */
export interface Tally {
  gross: number;
  refunds: number;
  fees: number;
  fx: number;
  adjustments: number;
  entry_count: number;
  /** Σ net_amount of the entry lines. */
  net: number;
}

export const emptyTally = (): Tally => ({ gross: 0, refunds: 0, fees: 0, fx: 0, adjustments: 0, entry_count: 0, net: 0 });

export function addToTally(t: Tally, e: Pick<EntryItem, 'id' | 'kind' | 'entry_amount'>): void {
  const a = e.entry_amount;
  switch (e.kind) {
    case 'capture':
    case 'conversion':
      t.gross += a;
      break;
    case 'refund':
      t.refunds -= a;
      break;
    case 'fee':
      t.fees -= a;
      break;
    case 'fx_spread':
      t.fx -= a;
      break;
    case 'adjustment':
      t.adjustments += a;
      break;
    default:
      throw new InternalError('report_unknown_entry', `Entry '${e.id}' has kind '${e.kind}', which is no settlement entry; the report cannot place it.`);
  }
  t.entry_count += 1;
  t.net += a;
}

/**
 * Refuses a report whose lines disagree with the settlement's totals: the report would not match the API. Names
 * every field that differs (a settlement engine bug, or entries written into a settled window).
 */
export function checkTally(s: Settlement, t: Tally): void {
  const want: SettlementTotals = s.totals;
  const got = { ...t, net: t.net + want.carried_in };
  const off = (['gross', 'refunds', 'fees', 'fx', 'adjustments', 'entry_count', 'net'] as const).filter((k) => got[k] !== want[k]);
  if (off.length) {
    throw new InternalError(
      'report_totals_mismatch',
      `Settlement '${s.id}': its entries add up to ${off.map((k) => `${k} ${got[k]}`).join(', ')}, its totals say ${off.map((k) => `${k} ${want[k]}`).join(', ')}. ` +
        'The report is not served: reconcile the settlement with its ledger entries.',
    );
  }
}

/** Entries per BatchGet round of their orders (an order's capture, fee and refunds share one lookup). */
const ENTRY_BATCH = 500;

/** Where a part starts: the gsi1 sort key of its first entry line, or one of the closing lines (no entry left). */
export const CARRIED_LINE = 'CARRIED_IN';
export const TOTALS_LINE = 'TOTAL';

export interface StoredPart {
  part: number;
  lines: number;
  bytes: number;
  sha256: string;
  /** Absent for part 1 (the header). */
  start?: string;
}

/** The `report` attribute writeReport stores: settlement.ts SettlementReport plus where each part starts. */
export interface StoredReport extends SettlementReport {
  bytes: number;
  parts: StoredPart[];
}

interface Line {
  text: string;
  /** The entry's gsi1 sort key, CARRIED_LINE / TOTALS_LINE for the closing lines, undefined for the header. */
  key?: string;
}

/** Lines from `start` (undefined: the header) to the end; fills `tally` with the entries it passes. */
async function* reportLines(store: SettlementStore, s: Settlement, start: string | undefined, tally: Tally): AsyncGenerator<Line> {
  if (start === undefined) yield { text: csvLine(REPORT_HEADER) };
  const closing = start === CARRIED_LINE || start === TOTALS_LINE;
  if (!closing) {
    let batch: EntryItem[] = [];
    const flush = async function* () {
      const numbers = await store.orderNumbers(s.merchant_id, batch.flatMap((e) => (e.order_id ? [e.order_id] : [])));
      for (const e of batch) {
        addToTally(tally, e);
        yield { text: csvLine(entryLine(e, e.order_id ? numbers.get(e.order_id) : undefined)), key: e.gsi1sk };
      }
      batch = [];
    };
    for await (const e of store.entries(s, start ? { at: start } : undefined)) {
      batch.push(e);
      if (batch.length === ENTRY_BATCH) yield* flush();
    }
    yield* flush();
  }
  if (s.totals.carried_in !== 0 && start !== TOTALS_LINE) yield { text: csvLine(carriedLine(s)), key: CARRIED_LINE };
  yield { text: csvLine(totalsLine(s)), key: TOTALS_LINE };
}

export interface Walked {
  report: StoredReport;
  /** The text of the part asked for, if any. */
  text?: string;
}

export interface WalkOptions {
  /** The part whose text to return. */
  keep?: number;
  /** Receives every line in order (the CLI's file). */
  write?: (text: string) => void;
  /** Where parts are cut. @default REPORT_PART_LINES and REPORT_PART_BYTES (tests cut small reports) */
  limits?: { lines: number; bytes: number };
}

/** Reads the whole report once: every part's digest and the whole's, the tally checked against the totals. */
export async function walkReport(store: SettlementStore, s: Settlement, options: WalkOptions = {}): Promise<Walked> {
  const { keep, write, limits = { lines: REPORT_PART_LINES, bytes: REPORT_PART_BYTES } } = options;
  const tally = emptyTally();
  const whole = createHash('sha256');
  const parts: StoredPart[] = [];
  let text: string | undefined;
  let current: { hash: Hash; lines: number; bytes: number; start?: string; chunks?: string[] } | undefined;
  const close = () => {
    if (!current) return;
    const part = parts.length + 1;
    parts.push({ part, lines: current.lines, bytes: current.bytes, sha256: current.hash.digest('hex'), ...(current.start ? { start: current.start } : {}) });
    if (current.chunks) text = current.chunks.join('');
    current = undefined;
  };
  let lines = 0;
  let bytes = 0;
  for await (const line of reportLines(store, s, undefined, tally)) {
    const size = Buffer.byteLength(line.text);
    if (current && (current.lines >= limits.lines || current.bytes + size > limits.bytes)) close();
    current ??= { hash: createHash('sha256'), lines: 0, bytes: 0, start: line.key, chunks: keep === parts.length + 1 ? [] : undefined };
    current.hash.update(line.text);
    current.chunks?.push(line.text);
    current.lines += 1;
    current.bytes += size;
    whole.update(line.text);
    write?.(line.text);
    lines += 1;
    bytes += size;
  }
  close();
  checkTally(s, tally);
  return { report: { lines, bytes, sha256: whole.digest('hex'), parts }, text };
}

/** One part, from its stored start; its bytes must hash to the stored digest, or nothing is served. */
export async function readStoredPart(store: SettlementStore, s: Settlement, part: StoredPart): Promise<string> {
  const chunks: string[] = [];
  for await (const line of reportLines(store, s, part.start, emptyTally())) {
    if (chunks.length === part.lines) break;
    chunks.push(line.text);
  }
  const text = chunks.join('');
  const sha256 = createHash('sha256').update(text).digest('hex');
  if (chunks.length !== part.lines || sha256 !== part.sha256) {
    throw new InternalError(
      'report_digest_mismatch',
      `Part ${part.part} of settlement '${s.id}''s report reads as ${chunks.length} lines with SHA-256 ${sha256}; writeReport stored ${part.lines} lines and ${part.sha256}. ` +
        'Its entries changed after the report was written: reconcile the settlement before serving it.',
    );
  }
  return text;
}

/** A stored report this module wrote (start keys included), or undefined. */
export function storedReport(s: Settlement): StoredReport | undefined {
  const r = s.report as StoredReport | undefined;
  return r && Array.isArray(r.parts) && r.parts.length > 0 && typeof r.bytes === 'number' ? r : undefined;
}

/**
 * The state machine's Report step (settlements/tasks.ts report): computes the report's digests (each part's and
 * the whole's), checks its lines against the settlement's totals, and stores them on the settlement. Idempotent:
 * the same settlement always gives the same bytes, so a retried step stores the same digests.
 */
export async function writeReport(
  settlementId: string,
  store = new SettlementStore(),
  limits?: WalkOptions['limits'],
): Promise<{ settlement_id: string; lines: number; sha256: string }> {
  const s = await store.byId(settlementId);
  if (!s) throw new InternalError('settlement_missing', `No settlement '${settlementId}' to write a report for; the Report step runs after Settle made it.`);
  const { report } = await walkReport(store, s, { limits });
  await store.saveReport(s.id, report);
  return { settlement_id: s.id, lines: report.lines, sha256: report.sha256 };
}
