import { describe, expect, it } from 'vitest';
import { indexWrites, itemSize, numberSize, readUnits, writeUnits, type Item, type TableSchema } from '../../bench/cost/dynamodb';

/**
 * Issue 12 §1: the bench's DynamoDB billing rules (bench/cost/dynamodb.ts) on cases computed by hand from the worked
 * examples and rules of AWS's DynamoDB Developer Guide. Each block names its page and quotes the numbers it uses.
 */

const KB = 1024;
/** An item of exactly `bytes` bytes: `pk` (2 + 1) plus `d` (1 + the rest). */
const sized = (bytes: number, extra: Item = {}): Item => ({ pk: { S: 'x' }, d: { S: 'a'.repeat(bytes - 4 - itemSize(extra)) }, ...extra });

const TABLE: TableSchema = {
  keys: ['pk'],
  indexes: [
    { name: 'all', keys: ['gpk', 'gsk'], projection: 'ALL' },
    { name: 'keys', keys: ['kpk'], projection: 'KEYS_ONLY' },
  ],
};
const schemas = { t: TABLE };

describe('item size (CapacityUnitCalculations.html, "DynamoDB item sizes and formats")', () => {
  it('strings: name bytes + UTF-8 bytes; numbers: name + 1 byte per two significant digits + 1; binary: raw bytes; null and booleans: 1', () => {
    expect(itemSize({ pk: { S: 'ORDER#ord_1' } })).toBe(2 + 11);
    // "Strings are Unicode with UTF-8 binary encoding": é is 2 bytes, 支付 is 6.
    expect(itemSize({ é: { S: '支付' } })).toBe(2 + 6);
    expect(itemSize({ amount: { N: '1999' } })).toBe(6 + 2 + 1);
    // "Leading and trailing zeroes are trimmed": 001200 has two significant digits, 12.5 three.
    expect(numberSize('001200')).toBe(1 + 1);
    expect(numberSize('-12.5')).toBe(2 + 1);
    // "the value's raw byte length is used": AQID is the base64 of 3 bytes.
    expect(itemSize({ blob: { B: 'AQID' } })).toBe(4 + 3);
    expect(itemSize({ blob: { B: new Uint8Array(32) } })).toBe(4 + 32);
    expect(itemSize({ paid: { BOOL: true }, note: { NULL: true } })).toBe(4 + 1 + 4 + 1);
  });

  it('lists and maps: 3 bytes of overhead, plus 1 byte per element (an empty one is 3 bytes)', () => {
    expect(itemSize({ tags: { L: [] } })).toBe(4 + 3);
    expect(itemSize({ tags: { L: [{ S: 'a' }, { S: 'bc' }] } })).toBe(4 + 3 + (1 + 1) + (2 + 1));
    // A map's element is its key's name, its value, and the 1 byte.
    expect(itemSize({ payer: { M: { name: { S: 'Li' } } } })).toBe(5 + 3 + (4 + 2 + 1));
    expect(itemSize({ m: { M: { l: { L: [{ N: '7' }] } } } })).toBe(1 + 3 + (1 + (3 + (2 + 1)) + 1));
  });
});

describe('read units (read-write-operations.html, "Capacity unit consumption for read operations")', () => {
  const read = (sizes: number[], o: { consistent?: boolean; transactional?: boolean; perItem?: boolean } = {}) =>
    readUnits({ consistent: o.consistent ?? true, transactional: o.transactional ?? false, perItem: o.perItem ?? true, sizes });

  it('"reading a 3,500-byte item consumes the same throughput as reading a 4 KB item"; a 10 KB item rounds to 12 KB', () => {
    expect(read([3500])).toBe(1);
    expect(read([4 * KB])).toBe(1);
    expect(read([10 * KB])).toBe(3);
  });

  it('"if your item size is 8 KB, you require 2 read units … 1 read unit if you choose eventually consistent reads, or 4 read units for a transactional read"', () => {
    expect(read([8 * KB])).toBe(2);
    expect(read([8 * KB], { consistent: false })).toBe(1);
    expect(read([8 * KB], { transactional: true })).toBe(4);
  });

  it('BatchGetItem of 1.5 KB and 6.5 KB items is "12 KB (4 KB + 8 KB)", not 8 KB; a Query sums its items first', () => {
    expect(read([1.5 * KB, 6.5 * KB])).toBe(3);
    expect(read([1.5 * KB, 6.5 * KB], { perItem: false })).toBe(2);
    // An item that is not there still costs a read.
    expect(read([0], { consistent: false })).toBe(0.5);
  });
});

describe('write units (DynamoDB pricing page and read-write-operations.html, "Capacity unit consumption for write operations")', () => {
  const put = (bytes: number, transactional = false, before?: Item) =>
    writeUnits({ transactional, succeeded: true, actions: [{ kind: 'Put', table: 't', before, after: sized(bytes) }] }, schemas).total;

  it('"a standard write request of a 1 KB item would require one WCU, … a 3 KB item … three WCUs, and a transactional write request of a 3 KB item … six WCUs"', () => {
    expect(put(KB)).toBe(1);
    expect(put(500)).toBe(1);
    expect(put(3 * KB)).toBe(3);
    expect(put(3 * KB, true)).toBe(6);
    expect(put(KB + 1)).toBe(2);
  });

  it('UpdateItem and a replacing PutItem bill "the larger of the before and after item sizes"; DeleteItem the deleted item', () => {
    const update = writeUnits({ transactional: false, succeeded: true, actions: [{ kind: 'Update', table: 't', before: sized(2.5 * KB), after: sized(500) }] }, schemas);
    expect(update.total).toBe(3);
    expect(put(500, false, sized(1.5 * KB))).toBe(2);
    expect(writeUnits({ transactional: false, succeeded: true, actions: [{ kind: 'Delete', table: 't', before: sized(1.5 * KB) }] }, schemas).total).toBe(2);
  });

  it('a failed condition "still consumes write capacity … dependent on the size of the existing item (or a minimum of 1)", with no index write', () => {
    const existing = sized(2.2 * KB, { gpk: { S: 'M' }, gsk: { S: '1' } });
    expect(writeUnits({ transactional: false, succeeded: false, actions: [{ kind: 'Update', table: 't', before: existing }] }, schemas).total).toBe(3);
    expect(writeUnits({ transactional: false, succeeded: false, actions: [{ kind: 'Put', table: 't' }] }, schemas).total).toBe(1);
  });
});

describe('transactions (transaction-apis.html, "Capacity management for transactions")', () => {
  it('"two underlying reads or writes of every item in the transaction: one to prepare … and one to commit"', () => {
    const small = (k: 'Put' | 'Update' | 'ConditionCheck') => ({ kind: k, table: 't', before: k === 'Put' ? undefined : sized(300), after: sized(500) });
    // Three items of ≤ 1 KB: 3 × 2.
    expect(writeUnits({ transactional: true, succeeded: true, actions: [small('Put'), small('Update'), small('ConditionCheck')] }, schemas).total).toBe(6);
    // One of 1.5 KB (2 units, ×2) and two small ones.
    expect(writeUnits({ transactional: true, succeeded: true, actions: [{ kind: 'Put', table: 't', after: sized(1.5 * KB) }, small('Put'), small('Put')] }, schemas).total).toBe(8);
  });
});

describe('index writes (GSI.html, "Provisioned throughput considerations for Global Secondary Indexes", writes)', () => {
  const write = (before: Item | undefined, after: Item | undefined, transactional = false) =>
    writeUnits({ transactional, succeeded: true, actions: [{ kind: before ? 'Update' : 'Put', table: 't', before, after }] }, schemas);
  const order = (status: string, gsk = '2026-12-02#ord_1', extra: Item = {}): Item => ({ pk: { S: 'ORDER#ord_1' }, gpk: { S: 'MERCHANT#m' }, gsk: { S: gsk }, status: { S: status }, ...extra });

  it('"a new item … that defines an indexed attribute": one write to put it into the index', () => {
    const created = write(undefined, order('requires_payment'));
    expect(created.table).toBe(1);
    expect(created.byIndex).toEqual({ all: 1 });
  });

  it('"changes the value of an indexed key attribute (from A to B), two writes are required, one to delete … and another … to put"', () => {
    expect(indexWrites({ kind: 'Update', table: 't', before: order('paid', 'A'), after: order('paid', 'B') }, TABLE)).toEqual([{ index: 'all', change: 'key', units: 2, writes: 2 }]);
    // At the projected size: a 1.5 KB item moved costs 2 + 2 in the index.
    const big = { blob: { S: 'x'.repeat(1500) } };
    expect(write(order('paid', 'A', big), order('paid', 'B', big)).byIndex).toEqual({ all: 4 });
  });

  it('"the indexed attribute to be deleted": one write to delete; "not present in the index before or after": none', () => {
    const withKey = order('processing', undefined, { kpk: { S: 'INFLIGHT#1' } });
    expect(indexWrites({ kind: 'Update', table: 't', before: withKey, after: order('succeeded') }, TABLE)).toEqual([
      { index: 'all', change: 'update', units: 1, writes: 1 },
      { index: 'keys', change: 'delete', units: 1, writes: 1 },
    ]);
    const plain = { pk: { S: 'X#1' }, n: { N: '1' } };
    expect(indexWrites({ kind: 'Update', table: 't', before: plain, after: { ...plain, n: { N: '2' } } }, TABLE)).toEqual([]);
  });

  it('"only changes the value of projected attributes": one write; a keys-only index whose keys are unchanged: none', () => {
    const a = order('processing', undefined, { kpk: { S: 'INFLIGHT#1' } });
    const b = order('succeeded', undefined, { kpk: { S: 'INFLIGHT#1' } });
    expect(indexWrites({ kind: 'Update', table: 't', before: a, after: b }, TABLE)).toEqual([{ index: 'all', change: 'update', units: 1, writes: 1 }]);
  });

  it('index writes are not doubled in a transaction: they propagate after the commit', () => {
    expect(write(undefined, order('requires_payment'), true)).toMatchObject({ table: 2, indexes: 1, total: 3 });
  });
});
