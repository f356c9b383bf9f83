import { isLoopbackUrl } from '../commons/addresses';
import { NotFoundError } from '../commons/errors';
import { newId } from '../commons/ids';
import { open, seal } from '../commons/crypto';
import { Secret } from '../commons/secret';
import { parseInput } from '../http/validation';
import { orderToApi, type ApiPaymentOrder } from '../payments/payment';
import { effective, transitionConflict, type Order, type Payer, type PayerLocale } from './order';
import { EXPIRY_SHARDS, OrderRepository } from './repository';
import { createOrderSchema, listOrdersSchema, orderIdSchema } from './schemas';

/**
 * Order operations. Each follows one skeleton: validate the request → load what it acts on →
 * decide with the order rules (order.ts) → persist with a conditional write → shape the result.
 */
export interface Caller {
  merchantId: string;
  baseUrl: string;
  now: Date;
  /**
   * `false`: present orders without their payer, never decrypting it. The hosted checkout shows no payer
   * data and holds no kms:Decrypt for it (lib/payplane-stack.ts).
   */
  payer?: false;
  /** The id of the `prefix` object the request creates (ApiRequest.newId: fixed by its Idempotency-Key). @default a new random id */
  newId?(prefix: string): string;
  /** The request resumes a run that died (ApiRequest.resumed): what it creates may exist already. */
  resumed?: boolean;
  /** The hosted checkout's language: a confirm stores it as the order's payer.locale when the order has none. */
  payerLocale?: PayerLocale;
}

const livemode = false;

export class OrderService {
  constructor(private readonly orders: OrderRepository) {}

  async create(caller: Caller, body: unknown): Promise<ApiPaymentOrder> {
    // The stage's own base URL (configuration) decides: only a stage served on loopback calls loopback URLs.
    const input = parseInput(createOrderSchema(livemode, isLoopbackUrl(caller.baseUrl)), body);
    const id = caller.newId?.('ord') ?? newId('ord');
    // The run that died may have written the order already: answer with it, never create a second one.
    const written = caller.resumed ? await this.orders.get(caller.merchantId, id) : undefined;
    if (written) return this.present(caller, written);
    const now = caller.now.toISOString();
    // The language is stored beside the sealed contact details, not inside them (order.ts payer_locale).
    const { locale, ...contact } = input.payer ?? {};
    const order: Order = {
      id,
      merchant_id: caller.merchantId,
      merchant_order_no: input.merchant_order_no,
      status: 'requires_payment',
      amount: input.amount,
      amount_refunded: 0,
      currency: input.currency,
      description: input.description,
      capture_method: input.capture_method,
      notify_url: input.notify_url,
      return_url: input.return_url,
      metadata: input.metadata,
      payer_ciphertext: Object.keys(contact).length ? await seal(new Secret(contact), payerContext({ id, merchant_id: caller.merchantId })) : undefined,
      payer_locale: locale,
      expires_at: new Date(caller.now.getTime() + input.expires_in * 1000).toISOString(),
      created_at: now,
      updated_at: now,
    };
    await this.orders.insert(order);
    return orderToApi(order, Object.keys(contact).length ? contact : undefined, caller.baseUrl, caller.now);
  }

  async list(caller: Caller, query: unknown) {
    const input = parseInput(listOrdersSchema, query);
    const after = input.starting_after ? await this.load(caller, input.starting_after, 'starting_after') : undefined;
    const filters = { status: input.status, createdGte: input['created[gte]'], createdLt: input['created[lt]'] };
    let page: { orders: Order[]; hasMore: boolean };
    if (input.merchant_order_no) {
      const one = await this.orders.findByMerchantOrderNo(caller.merchantId, input.merchant_order_no);
      page = { orders: one && matches(effective(one, caller.now), filters) ? [one] : [], hasMore: false };
    } else {
      page = await this.orders.list(caller.merchantId, { ...filters, limit: input.limit, after, now: caller.now });
    }
    return {
      object: 'list' as const,
      url: '/v1/orders',
      has_more: page.hasMore,
      data: await Promise.all(page.orders.map((order) => this.present(caller, order))),
    };
  }

  /**
   * Closes an order no payment has reached (`requires_payment`) and returns it as stored; a closed or
   * expired one is returned as it is. Any other status is a 409 naming it: an authorization or a 3-D Secure
   * attempt must be voided first, which `PaymentService.close` (the route's operation) does.
   */
  async closeUnpaid(caller: Caller, id: string): Promise<Order> {
    const order = await this.load(caller, id);
    if (effective(order, caller.now).status === 'closed') return order;
    const result = await this.orders.transition(
      caller.merchantId,
      order.id,
      'closed',
      caller.now,
      { closed_at: caller.now.toISOString(), close_reason: 'merchant' },
      ['requires_payment'],
    );
    if (result.ok) return result.order;
    if (!result.current) throw new NotFoundError('order', id);
    if (effective(result.current, caller.now).status === 'closed') return result.current;
    throw transitionConflict(id, result.current.status, 'closed');
  }

  /** The scheduled sweep: closes payable orders past their expiry. Returns how many it closed. */
  async expireDue(now: Date, perShard = 100): Promise<number> {
    let closed = 0;
    for (let shard = 0; shard < EXPIRY_SHARDS; shard++) {
      const due = await this.orders.dueForExpiry(shard, now, perShard);
      const results = await Promise.all(
        due.map((o) =>
          // Only a still-payable order expires: one that moved on since the query keeps its payment.
          this.orders.transition(o.merchant_id, o.id, 'closed', now, { close_reason: 'expired', closed_at: o.expires_at }, ['requires_payment']),
        ),
      );
      closed += results.filter((r) => r.ok).length;
    }
    return closed;
  }

  private async load(caller: Caller, id: string, param = 'id'): Promise<Order> {
    const valid = orderIdSchema.safeParse(id).success;
    const order = valid ? await this.orders.get(caller.merchantId, id) : undefined;
    if (!order) throw new NotFoundError('order', id, param);
    return order;
  }

  private async present(caller: Caller, order: Order): Promise<ApiPaymentOrder> {
    const payer = order.payer_ciphertext
      ? (await open<Payer>(order.payer_ciphertext, payerContext(order))).reveal()
      : undefined;
    // One shape for every order response: the payment fields are there (null / 0) before the first payment too.
    return orderToApi(order, payer, caller.baseUrl, caller.now);
  }
}

/** Binds payer ciphertext to its merchant and order: it cannot be replayed onto another record. */
function payerContext(order: Pick<Order, 'id' | 'merchant_id'>) {
  return { purpose: 'payer', merchantId: order.merchant_id, recordId: order.id };
}

function matches(order: Order, f: { status?: string; createdGte?: Date; createdLt?: Date }): boolean {
  const created = Date.parse(order.created_at);
  return (
    (!f.status || order.status === f.status) &&
    (!f.createdGte || created >= f.createdGte.getTime()) &&
    (!f.createdLt || created < f.createdLt.getTime())
  );
}
