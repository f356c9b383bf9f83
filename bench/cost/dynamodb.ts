/**
 * DynamoDB's billing rules applied to recorded requests (issue 12 §1), not DynamoDB Local's counters. Sources, quoted
 * in test/unit/cost-model.test.ts and docs/cost.md:
 * - item sizes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
 * - units per operation: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
 * - transactions: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling
 * - index writes: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations.Writes
 */

export interface AttributeValue {
  S?: string;
  N?: string;
  /** Base64 on the wire, bytes from the SDK: either way its raw length counts. */
  B?: string | Uint8Array;
  BOOL?: boolean;
  NULL?: boolean;
  M?: Record<string, AttributeValue>;
  L?: AttributeValue[];
  SS?: string[];
  NS?: string[];
  BS?: (string | Uint8Array)[];
}
export type Item = Record<string, AttributeValue>;

export interface IndexSchema {
  name: string;
  keys: string[];
  projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
  include?: string[];
}
export interface TableSchema {
  keys: string[];
  indexes: IndexSchema[];
}

export interface WriteAction {
  kind: 'Put' | 'Update' | 'Delete' | 'ConditionCheck';
  table: string;
  /** The whole item before and after the request (absent: no item). */
  before?: Item;
  after?: Item;
}
export interface RecordedWrite {
  transactional: boolean;
  /** A failed condition (or a cancelled transaction) still consumes write units, no index writes. */
  succeeded: boolean;
  actions: WriteAction[];
}
export interface RecordedRead {
  transactional: boolean;
  consistent: boolean;
  /** GetItem, BatchGetItem, TransactGetItems round each item up to 4 KB; Query and Scan round their sum once. */
  perItem: boolean;
  /** Sizes (bytes) of the items read as stored (or as projected into the index read), filters and projections ignored. */
  sizes: number[];
}

const KB = 1024;
const utf8 = (s: string) => Buffer.byteLength(s, 'utf8');
const rawLength = (b: string | Uint8Array) => (typeof b === 'string' ? Buffer.from(b, 'base64').length : b.length);

/** "1 byte per two significant digits + 1 byte"; leading and trailing zeroes trimmed. */
export function numberSize(n: string): number {
  const mantissa = n.replace(/^[+-]/, '').split(/[eE]/)[0]!.replace('.', '');
  const significant = mantissa.replace(/^0+/, '').replace(/0+$/, '').length || 1;
  return Math.ceil(significant / 2) + 1;
}

export function valueSize(v: AttributeValue): number {
  if (v.S !== undefined) return utf8(v.S);
  if (v.N !== undefined) return numberSize(v.N);
  if (v.B !== undefined) return rawLength(v.B);
  if (v.BOOL !== undefined || v.NULL !== undefined) return 1;
  // Lists and maps: 3 bytes, plus 1 byte per element.
  if (v.M !== undefined) return 3 + Object.entries(v.M).reduce((sum, [k, e]) => sum + utf8(k) + valueSize(e) + 1, 0);
  if (v.L !== undefined) return 3 + v.L.reduce((sum, e) => sum + valueSize(e) + 1, 0);
  if (v.SS !== undefined) return v.SS.reduce((sum, s) => sum + utf8(s), 0);
  if (v.NS !== undefined) return v.NS.reduce((sum, s) => sum + numberSize(s), 0);
  if (v.BS !== undefined) return v.BS.reduce((sum, s) => sum + rawLength(s), 0);
  throw new Error(`Unknown attribute value ${JSON.stringify(v)}: expected one of S, N, B, BOOL, NULL, M, L, SS, NS, BS.`);
}

/** The sum of the attribute names' UTF-8 lengths and the values' sizes. */
export const itemSize = (item: Item | undefined): number =>
  item ? Object.entries(item).reduce((sum, [name, v]) => sum + utf8(name) + valueSize(v), 0) : 0;

/** What an index holds of an item: nothing when an index key is missing (sparse), else the projected attributes. */
export function indexEntry(item: Item | undefined, table: TableSchema, index: IndexSchema): Item | undefined {
  if (!item || index.keys.some((k) => item[k] === undefined)) return undefined;
  if (index.projection === 'ALL') return item;
  const names = new Set([...table.keys, ...index.keys, ...(index.projection === 'INCLUDE' ? (index.include ?? []) : [])]);
  return Object.fromEntries(Object.entries(item).filter(([k]) => names.has(k)));
}

const canonical = (v: unknown): string =>
  v === null || typeof v !== 'object'
    ? JSON.stringify(v)
    : Array.isArray(v)
      ? `[${v.map(canonical).join(',')}]`
      : `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;

/** 1 KB write units of one item version; a write of nothing (a delete of no item) still costs 1. */
export const writeUnitsOf = (bytes: number) => Math.max(1, Math.ceil(bytes / KB));

export interface IndexWrite {
  index: string;
  /** put / delete: the item enters or leaves the index; key: its index key changed (delete + put); update: attributes only. */
  change: 'put' | 'delete' | 'key' | 'update';
  units: number;
  writes: number;
}

/** Index writes of one table write: a put, a delete, a delete + put when the index key changed, one update, or none. */
export function indexWrites(action: WriteAction, table: TableSchema): IndexWrite[] {
  const out: IndexWrite[] = [];
  for (const index of table.indexes) {
    const before = indexEntry(action.before, table, index);
    const after = indexEntry(action.after, table, index);
    if (!before && !after) continue;
    if (before && after) {
      if (canonical(before) === canonical(after)) continue;
      const keyChanged = index.keys.some((k) => canonical(before[k]) !== canonical(after[k]));
      out.push(
        keyChanged
          ? { index: index.name, change: 'key', units: writeUnitsOf(itemSize(before)) + writeUnitsOf(itemSize(after)), writes: 2 }
          : { index: index.name, change: 'update', units: writeUnitsOf(Math.max(itemSize(before), itemSize(after))), writes: 1 },
      );
    } else out.push({ index: index.name, change: before ? 'delete' : 'put', units: writeUnitsOf(itemSize(before ?? after)), writes: 1 });
  }
  return out;
}

/**
 * Write units of one request. Table: the larger of the item before and after, rounded up to 1 KB (a delete: the
 * item deleted; a condition check: the item checked), ×2 in a transaction. Indexes: `indexWrites` at 1×; index
 * propagation happens after the transaction commits, so it is not part of the two-phase ×2.
 */
export function writeUnits(write: RecordedWrite, schemas: Record<string, TableSchema>) {
  const factor = write.transactional ? 2 : 1;
  let table = 0;
  let indexes = 0;
  const byIndex: Record<string, number> = {};
  for (const action of write.actions) {
    const schema = schemas[action.table];
    if (!schema) throw new Error(`No schema for table ${action.table}: pass every table the recorded requests name.`);
    const bytes = write.succeeded ? Math.max(itemSize(action.before), itemSize(action.after)) : itemSize(action.before);
    table += factor * writeUnitsOf(bytes);
    if (!write.succeeded) continue;
    for (const w of indexWrites(action, schema)) {
      indexes += w.units;
      byIndex[w.index] = (byIndex[w.index] ?? 0) + w.units;
    }
  }
  return { table, indexes, total: table + indexes, byIndex };
}

/** Read units: 4 KB units, ½ eventually consistent, 1 strongly consistent, 2 in a transaction. */
export function readUnits(read: RecordedRead): number {
  const factor = read.transactional ? 2 : read.consistent ? 1 : 0.5;
  const units = read.perItem
    ? read.sizes.reduce((sum, s) => sum + Math.max(1, Math.ceil(s / (4 * KB))), 0)
    : Math.max(1, Math.ceil(read.sizes.reduce((a, b) => a + b, 0) / (4 * KB)));
  return units * factor;
}
