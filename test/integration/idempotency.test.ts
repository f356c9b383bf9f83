import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { ConflictError, InvalidRequestError } from '../../functions/commons/errors';
import { newId } from '../../functions/commons/ids';
import { json } from '../../functions/http/errors';
import { fingerprint, idempotent, IDEMPOTENCY_TTL_SECONDS } from '../../functions/http/idempotency';
import { useLocalServices } from './env';

let table: string;
beforeAll(() => {
  table = useLocalServices().tables.idempotency;
});

const call = (over: Partial<Parameters<typeof idempotent>[0]> = {}) => ({
  merchantId: 'mch_a',
  key: newId('key'),
  fingerprint: fingerprint('POST', '/v1/orders', { amount: 1 }),
  requestId: 'req_1',
  lockMillis: 10_000,
  ...over,
});

describe('idempotent requests', () => {
  it('runs once and replays the identical status and body', async () => {
    const c = call();
    let runs = 0;
    const op = async () => json(201, { n: ++runs });
    const first = await idempotent(c, op);
    const second = await idempotent(c, op);
    expect(runs).toBe(1);
    expect(second.statusCode).toBe(first.statusCode);
    expect(second.body).toBe(first.body);
    expect(second.headers?.['Idempotent-Replayed']).toBe('true');
  });

  it('keeps keys for at least 24 hours via TTL', async () => {
    const c = call();
    await idempotent(c, async () => json(200, {}));
    const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: { id: `mch_a#${c.key}` } }));
    expect(Item?.expiration).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS - 5);
  });

  it('refuses the same key with a different body', async () => {
    const c = call();
    await idempotent(c, async () => json(201, {}));
    const other = { ...c, fingerprint: fingerprint('POST', '/v1/orders', { amount: 2 }) };
    await expect(idempotent(other, async () => json(201, {}))).rejects.toMatchObject({ type: 'idempotency_error', status: 400 });
  });

  it('treats field order in the body as the same request', () => {
    expect(fingerprint('POST', '/v1/orders', { a: 1, b: { c: 2, d: 3 } })).toBe(fingerprint('POST', '/v1/orders', { b: { d: 3, c: 2 }, a: 1 }));
    expect(fingerprint('POST', '/v1/orders', { a: 1 })).not.toBe(fingerprint('POST', '/v1/refunds', { a: 1 }));
  });

  it('scopes keys by merchant', async () => {
    const key = newId('key');
    const a = await idempotent(call({ key, merchantId: 'mch_a' }), async () => json(201, { who: 'a' }));
    const b = await idempotent(call({ key, merchantId: 'mch_b' }), async () => json(201, { who: 'b' }));
    expect(JSON.parse(a.body).who).toBe('a');
    expect(JSON.parse(b.body).who).toBe('b');
  });

  it('answers a concurrent duplicate with idempotency_key_in_use and runs the operation once', async () => {
    const c = call();
    let runs = 0;
    const op = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 300));
      return json(201, {});
    };
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => idempotent(c, op)));
    expect(runs).toBe(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const r of rejected) expect(r.reason).toMatchObject({ status: 409, code: 'idempotency_key_in_use' });
  });

  it('stores a conflict outcome but releases the key after a validation error', async () => {
    const conflict = call();
    const first = await idempotent(conflict, async () => {
      throw new ConflictError('duplicate_merchant_order_no', 'taken');
    });
    expect(first.statusCode).toBe(409);
    const replay = await idempotent(conflict, async () => json(201, {}));
    expect(replay.statusCode).toBe(409);

    const invalid = call();
    await expect(
      idempotent(invalid, async () => {
        throw new InvalidRequestError('parameter_invalid', 'bad');
      }),
    ).rejects.toBeInstanceOf(InvalidRequestError);
    const retried = await idempotent(invalid, async () => json(201, { ok: true }));
    expect(retried.statusCode).toBe(201);
  });

  it('lets a retry take over a key whose first request died holding it', async () => {
    const c = call();
    // A function that timed out never completed nor released its claim.
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: {
          id: `mch_a#${c.key}`,
          status: 'in_progress',
          fingerprint: c.fingerprint,
          owner: 'crashed',
          lock_expires_at: Date.now() - 1,
          expiration: Math.floor(Date.now() / 1000) + IDEMPOTENCY_TTL_SECONDS,
        },
      }),
    );
    const after = await idempotent(c, async () => json(201, { ok: true }));
    expect(after.statusCode).toBe(201);
    // A live claim is not taken over.
    const live = call();
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: { id: `mch_a#${live.key}`, status: 'in_progress', fingerprint: live.fingerprint, owner: 'alive', lock_expires_at: Date.now() + 60_000, expiration: 0 + Math.floor(Date.now() / 1000) + 60 },
      }),
    );
    await expect(idempotent(live, async () => json(201, {}))).rejects.toMatchObject({ code: 'idempotency_key_in_use' });
  });
});
