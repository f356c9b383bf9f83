import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { CardDeclinedError } from '../../functions/channels/errors';
import { ConflictError, ContendedError, InvalidRequestError } from '../../functions/commons/errors';
import { idFromSeed, newId } from '../../functions/commons/ids';
import { json } from '../../functions/http/errors';
import { fingerprint, idempotent, IDEMPOTENCY_TTL_SECONDS, type Claim } from '../../functions/http/idempotency';
import { useLocalServices } from './env';

let table: string;
beforeAll(() => {
  table = useLocalServices().tables.idempotency;
});

const call = (over: Partial<Parameters<typeof idempotent>[0]> = {}) => ({
  merchantId: 'mch_a',
  key: newId('key'),
  fingerprint: fingerprint('POST', '/v1/orders', {}, { amount: 1 }),
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
    const other = { ...c, fingerprint: fingerprint('POST', '/v1/orders', {}, { amount: 2 }) };
    await expect(idempotent(other, async () => json(201, {}))).rejects.toMatchObject({ type: 'idempotency_error', status: 400 });
  });

  it('treats field order in the body as the same request', () => {
    expect(fingerprint('POST', '/v1/orders', {}, { a: 1, b: { c: 2, d: 3 } })).toBe(fingerprint('POST', '/v1/orders', {}, { b: { d: 3, c: 2 }, a: 1 }));
    expect(fingerprint('POST', '/v1/orders', {}, { a: 1 })).not.toBe(fingerprint('POST', '/v1/refunds', {}, { a: 1 }));
  });

  it('refuses a key reused on another order of the same route (issue 7 finding 2)', async () => {
    const resource = '/v1/orders/{id}/confirm';
    const c = call({ fingerprint: fingerprint('POST', resource, { id: 'ord_A' }, { payment_method: { type: 'wallet' } }) });
    await idempotent(c, async () => json(200, { id: 'ord_A' }));
    const onB = { ...c, fingerprint: fingerprint('POST', resource, { id: 'ord_B' }, { payment_method: { type: 'wallet' } }) };
    let ran = false;
    await expect(
      idempotent(onB, async () => {
        ran = true;
        return json(200, { id: 'ord_B' });
      }),
    ).rejects.toMatchObject({ type: 'idempotency_error', status: 400, code: 'idempotency_key_reused' });
    expect(ran).toBe(false);
  });

  it('stores a card decline as the answer: a retry replays it and never runs again', async () => {
    const c = call();
    let runs = 0;
    const decline = async () => {
      runs++;
      throw new CardDeclinedError('sandbox', 'insufficient_funds', 'The card has insufficient funds.');
    };
    const first = await idempotent(c, decline);
    const second = await idempotent(c, decline);
    expect(runs).toBe(1);
    expect(first.statusCode).toBe(402);
    expect(second).toMatchObject({ statusCode: 402, body: first.body, headers: { 'Idempotent-Replayed': 'true' } });
  });

  it('releases the key after a retryable conflict, so the retry with the key runs again (issue 7 finding 12)', async () => {
    const c = call();
    await expect(
      idempotent(c, async () => {
        throw new ContendedError('refund_contended', 'Too many refunds at once; retry with the same Idempotency-Key.');
      }),
    ).rejects.toMatchObject({ status: 409, code: 'refund_contended' });
    const retried = await idempotent(c, async () => json(201, { ok: true }));
    expect(retried.statusCode).toBe(201);
    expect(retried.headers?.['Idempotent-Replayed']).toBeUndefined();
  });

  it('hands the operation one seed per key, kept when a retry takes over a dead claim', async () => {
    const c = call();
    let seen: Claim | undefined;
    // The first run dies after its claim: it never completes nor releases the key.
    const claimed = idempotent({ ...c, lockMillis: 1 }, async (claim) => {
      seen = claim;
      throw new Error('crash');
    });
    await expect(claimed).rejects.toThrow('crash');
    await dynamo().send(
      new PutCommand({
        TableName: table,
        Item: { id: `mch_a#${c.key}`, status: 'in_progress', fingerprint: c.fingerprint, owner: 'crashed', seed: seen!.seed, lock_expires_at: Date.now() - 1, expiration: Math.floor(Date.now() / 1000) + 60 },
      }),
    );
    let resumed: Claim | undefined;
    await idempotent(c, async (claim) => {
      resumed = claim;
      return json(201, {});
    });
    expect(seen).toMatchObject({ resumed: false });
    expect(resumed).toEqual({ seed: seen!.seed, resumed: true });
    // Another key gets another seed.
    let other: Claim | undefined;
    await idempotent(call(), async (claim) => {
      other = claim;
      return json(201, {});
    });
    expect(other!.seed).not.toBe(seen!.seed);
    expect(idFromSeed('re', seen!.seed)).toMatch(/^re_[0-9A-Za-z]{24}$/);
    expect(idFromSeed('re', seen!.seed)).toBe(idFromSeed('re', resumed!.seed));
    expect(idFromSeed('re', seen!.seed).slice(3)).not.toBe(idFromSeed('pay', seen!.seed).slice(4));
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
