import { randomInt } from 'node:crypto';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { Secret } from '../../functions/commons/secret';
import { luhnCheckDigit } from '../../functions/channels/cards';
import { ChannelUnavailableError } from '../../functions/channels/errors';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import type { WireRequest, WireResponse } from '../../functions/channels/sandbox/transformers';
import { HmacFingerprinter } from '../../functions/payments/fingerprint';
import { CARD_DECLINE_LIMIT, cardCounter, ORDER_DECLINE_LIMIT } from '../../functions/payments/velocity';
import { useLocalServices } from './env';
import { CARDS, card, paymentCase, sandboxWorld } from './payments-world';

/**
 * Defences against card testing (issue 7 finding 5), against DynamoDB Local and the real sandbox channel:
 * an order declined 5 times takes no more attempts; a card declined 10 times in an hour is refused at every
 * merchant; both are counted in the claim's transaction, so concurrent attempts cannot run past them, and a
 * refused attempt never reaches the channel.
 */

/** Counts the authorizations that reach the bank. */
class CountingBank extends SandboxBank {
  pays = 0;
  override async handle(req: WireRequest): Promise<WireResponse> {
    if (req.method === 'sandbox.trade.pay') this.pays++;
    return super.handle(req);
  }
}

let table: string;
const world = sandboxWorld({ Bank: CountingBank });
const bank = world.bank;
const fingerprinter = new HmacFingerprinter(new Secret(Buffer.alloc(32, 7)));

beforeAll(() => {
  table = useLocalServices().tables.main;
});

/** A Visa number no other test uses: the per-card counter is platform-wide. */
const freshCard = () => {
  const partial = `4${Array.from({ length: 14 }, () => randomInt(10)).join('')}`;
  return partial + luhnCheckDigit(partial);
};
/** The sandbox declines a Visa with a 4-digit CVC (invalid_cvc): a decline of a card of our choosing. */
const declining = (number: string) => ({ payment_method: { type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '1234' } } });

const merchant = () => {
  const w = paymentCase(table, newId('mch'), world.sandbox);
  return { ...w, service: w.newService({ fingerprinter }) };
};
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => ({ status: 200, code: 'ok', message: '' }),
    (e: { status: number; code: string; extra?: { decline_code?: string }; message: string }) => ({ status: e.status, code: e.extra?.decline_code ?? e.code, message: e.message }),
  );

describe('per order', () => {
  it(`twelve declined cards in a row on one order: only ${ORDER_DECLINE_LIMIT} reach the channel, then 409 naming the fix; a new order pays`, async () => {
    // Prepare
    const w = merchant();
    const o = await w.order({});
    const before = bank.pays;
    // Act
    const results = [];
    for (let i = 0; i < 12; i++) results.push(await outcome(w.service.confirm(w.caller(), o.id, declining(freshCard()))));
    const good = await outcome(w.service.confirm(w.caller(), o.id, card(CARDS.success)));
    // Assess
    expect(bank.pays - before).toBe(ORDER_DECLINE_LIMIT);
    expect(results.slice(0, ORDER_DECLINE_LIMIT).map((r) => [r.status, r.code])).toEqual(Array(ORDER_DECLINE_LIMIT).fill([402, 'invalid_cvc']));
    for (const r of [...results.slice(ORDER_DECLINE_LIMIT), good]) {
      expect(r).toMatchObject({ status: 409, code: 'order_attempts_exhausted' });
      expect(r.message).toContain(`Order '${o.id}' was declined 5 times`);
      expect(r.message).toContain('Create a new order');
    }
    expect(await w.service.getOrder(w.caller(), o.id)).toMatchObject({ status: 'requires_payment', amount_captured: 0 });
    const next = await w.order({});
    expect(await w.service.confirm(w.caller(), next.id, card(CARDS.success))).toMatchObject({ status: 'succeeded' });
  });

  it('a channel failure (processing_error) is not a decline and does not count; a failed 3-D Secure does', async () => {
    // Prepare: a channel that is down for the first three attempts (it says so: nothing was authorized).
    let down = 3;
    const flaky = Object.assign(Object.create(world.sandbox), {
      id: 'sandbox' as const,
      authorize: async (req: Parameters<typeof world.sandbox.authorize>[0]) => {
        if (down-- > 0) throw new ChannelUnavailableError('sandbox', 'down', { outcomeUnknown: false });
        return world.sandbox.authorize(req);
      },
    });
    const w = merchant();
    const service = w.newService({ fingerprinter, channel: () => flaky });
    const o = await w.order({});
    // Act: three channel failures, four declines, then a 3-D Secure challenge the payer fails
    for (let i = 0; i < 3; i++) expect(await outcome(service.confirm(w.caller(), o.id, card(CARDS.success)))).toMatchObject({ status: 503 });
    for (let i = 0; i < ORDER_DECLINE_LIMIT - 1; i++) expect(await outcome(service.confirm(w.caller(), o.id, declining(freshCard())))).toMatchObject({ status: 402 });
    expect(await service.confirm(w.caller(), o.id, card(CARDS.threeDS))).toMatchObject({ status: 'requires_action' });
    await service.completeThreeDSecure(w.caller(), o.id, 'fail');
    // Assess
    expect(await outcome(service.confirm(w.caller(), o.id, card(CARDS.success)))).toMatchObject({ status: 409, code: 'order_attempts_exhausted' });
  });
});

describe('per card, across merchants', () => {
  it(`a card declined ${CARD_DECLINE_LIMIT} times in the hour, at two merchants, is refused everywhere before the channel; other cards are not`, async () => {
    // Prepare: the declines spread over two merchants, two orders each (the per-order limit stays out of the way).
    const [a, b] = [merchant(), merchant()];
    const pan = freshCard();
    const orders = [await a.order({}), await a.order({}), await b.order({}), await b.order({})];
    const owner = (i: number) => (i < 2 ? a : b);
    for (let i = 0; i < CARD_DECLINE_LIMIT; i++) {
      const k = i % 4;
      expect(await outcome(owner(k).service.confirm(owner(k).caller(), orders[k]!.id, declining(pan)))).toMatchObject({ status: 402, code: 'invalid_cvc' });
    }
    const before = bank.pays;
    // Act: the same card again, at a third merchant, even with its right CVC
    const c = merchant();
    const fresh = await c.order({});
    const refused = await outcome(c.service.confirm(c.caller(), fresh.id, card(pan)));
    const other = await outcome(c.service.confirm(c.caller(), fresh.id, card(CARDS.success)));
    // Assess
    expect(refused).toMatchObject({ status: 402, code: 'card_velocity_exceeded' });
    expect(refused.message).toMatch(/declined too many times.*Use another card/);
    expect(other.status).toBe(200);
    expect(bank.pays - before).toBe(1);
    // The refused attempt left nothing on the order: the next card was its first attempt.
    expect((await c.service.getOrder(c.caller(), fresh.id)).status).toBe('succeeded');
  });

  it('20 concurrent attempts with one card on 20 orders: exactly 10 reach the channel, the others are refused', async () => {
    const w = merchant();
    const pan = freshCard();
    const orders = await Promise.all(Array.from({ length: 20 }, () => w.order({})));
    const before = bank.pays;
    const results = await Promise.all(orders.map((o) => outcome(w.service.confirm(w.caller(), o.id, declining(pan)))));
    expect(bank.pays - before).toBe(CARD_DECLINE_LIMIT);
    expect(results.filter((r) => r.code === 'invalid_cvc')).toHaveLength(CARD_DECLINE_LIMIT);
    expect(results.filter((r) => r.code === 'card_velocity_exceeded')).toHaveLength(20 - CARD_DECLINE_LIMIT);
  });

  it('successes give their slot back: the card pays more than 10 times an hour; the counter expires with TTL', async () => {
    const w = merchant();
    const pan = freshCard();
    for (let i = 0; i < CARD_DECLINE_LIMIT + 2; i++) {
      const o = await w.order({});
      expect(await w.service.confirm(w.caller(), o.id, card(pan)), `payment ${i}`).toMatchObject({ status: 'succeeded' });
    }
    const { pk } = cardCounter((await fingerprinter.fingerprint(new Secret(pan), w.merchantId)).platform, new Date());
    const { Item } = await dynamo().send(new GetCommand({ TableName: table, Key: { pk, sk: 'VELOCITY' }, ConsistentRead: true }));
    expect(Item).toMatchObject({ declines: 0, ttl: expect.any(Number) });
    expect(Item!.ttl * 1000).toBeGreaterThan(Date.now());
    expect(Item!.ttl * 1000).toBeLessThanOrEqual(Date.now() + 2 * 3600_000);
  });
});

describe('the fingerprint merchants see (issue 7 finding 15a)', () => {
  it('the same card gives two merchants different fingerprints; the platform-wide one is in no response', async () => {
    const [a, b] = [merchant(), merchant()];
    const pan = freshCard();
    const pay = async (m: ReturnType<typeof merchant>) => m.service.confirm(m.caller(), (await m.order({})).id, card(pan));
    const [atA, againAtA, atB] = [await pay(a), await pay(a), await pay(b)];
    const fp = (o: Awaited<ReturnType<typeof pay>>) => (o.payment_method_details?.type === 'card' ? o.payment_method_details.card.fingerprint : undefined);
    expect(fp(atA)).toBe(fp(againAtA));
    expect(fp(atB)).not.toBe(fp(atA));
    expect(fp(atA)).toMatch(/^[\w-]{22}$/);
    const platform = (await fingerprinter.fingerprint(new Secret(pan), a.merchantId)).platform.reveal();
    for (const o of [atA, againAtA, atB, await a.service.getOrder(a.caller(), atA.id)]) expect(JSON.stringify(o)).not.toContain(platform);
  });
});
