import { isLoopbackUrl } from '../commons/addresses';
import { msg } from '../commons/messages';
import { ConflictError, InternalError, NotFoundError } from '../commons/errors';
import { newId } from '../commons/ids';
import { open, seal } from '../commons/crypto';
import { Secret } from '../commons/secret';
import { parseInput } from '../http/validation';
import { effective, orderToApi, transitionConflict, type ApiPaymentOrder, type Order, type Payer, type PayerLocale } from './order';
import { ChangeWriter, requestOf } from '../changes/writer';
import { maskPayer } from '../changes/snapshot';
import { EXPIRY_SHARDS, orderNoKey, OrderRepository } from './repository';
import { orderChange, writtenOrder } from './subject';
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
  /** The API request (ApiRequest.requestId), for events' `request.id`; absent outside the API (the hosted checkout). */
  requestId?: string;
  /** The request's Idempotency-Key, for events' `request.idempotency_key`. */
  idempotencyKey?: string | null;
  /** The hosted checkout's language: a confirm stores it as the order's payer.locale when the order has none. */
  payerLocale?: PayerLocale;
}

const livemode = false;

export class OrderService {
  private readonly writer: ChangeWriter;

  constructor(private readonly orders: OrderRepository) {
    this.writer = new ChangeWriter(orders.table);
  }

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
      payer_masked: Object.keys(contact).length ? maskPayer(contact) : undefined,
      payer_locale: locale,
      expires_at: new Date(caller.now.getTime() + input.expires_in * 1000).toISOString(),
      created_at: now,
      updated_at: now,
      version: 1,
    };
    // The order, its merchant_order_no claim and order.created: all or nothing.
    const result = await this.writer.write({
      objects: [orderChange(undefined, order)],
      items: {
        order_no: {
          Put: {
            TableName: this.orders.table,
            Item: { ...orderNoKey(order.merchant_id, order.merchant_order_no), type: 'order_no', order_id: order.id },
            ConditionExpression: 'attribute_not_exists(pk)',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          },
        },
      },
      request: requestOf(caller),
      now: caller.now,
      baseUrl: caller.baseUrl,
    });
    if (!result.committed) {
      const existing = result.current?.order_id;
      if (result.refused !== 'order_no' || typeof existing !== 'string') throw new InternalError('order_not_created', `Creating order ${order.id}: refused by ${result.refused}.`);
      throw new ConflictError(
        'duplicate_merchant_order_no',
        msg.duplicate_merchant_order_no({ no: String(order.merchant_order_no), existing }),
        { param: 'merchant_order_no', extra: { order_id: existing } },
      );
    }
    return orderToApi(writtenOrder(result), Object.keys(contact).length ? contact : undefined, caller.baseUrl, caller.now);
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
    if (order.status !== 'requires_payment') throw transitionConflict(id, order.status, 'closed');
    const result = await this.writer.write({
      objects: [orderChange(order, { ...order, status: 'closed', closed_at: caller.now.toISOString(), close_reason: 'merchant' })],
      request: requestOf(caller),
      now: caller.now,
      baseUrl: caller.baseUrl,
    });
    if (result.committed) return writtenOrder(result);
    // It moved since we read it (a confirm claimed it, the sweep closed it): answer from where it is now.
    const current = await this.orders.get(caller.merchantId, id);
    if (!current) throw new NotFoundError('order', id);
    if (effective(current, caller.now).status === 'closed') return current;
    throw transitionConflict(id, current.status, 'closed');
  }

  /** The scheduled sweep: closes payable orders past their expiry. Returns how many it closed. */
  async expireDue(now: Date, perShard = 100): Promise<number> {
    let closed = 0;
    for (let shard = 0; shard < EXPIRY_SHARDS; shard++) {
      const due = await this.orders.dueForExpiry(shard, now, perShard);
      const results = await Promise.all(due.map((entry) => this.expire(entry, now)));
      closed += results.filter(Boolean).length;
    }
    return closed;
  }

  /**
   * Closes one order of the sweep if it is still payable and past its expiry. The index is eventually consistent:
   * the order as stored decides. One that moved on since (a confirm claimed it) keeps its payment, and the write's
   * version condition refuses one that moves on between this read and the write. True if it closed it.
   */
  async expire(entry: Pick<Order, 'id' | 'merchant_id'>, now: Date): Promise<boolean> {
    const order = await this.orders.get(entry.merchant_id, entry.id);
    if (!order || order.status !== 'requires_payment' || Date.parse(order.expires_at) > now.getTime()) return false;
    const result = await this.writer.write({
      objects: [orderChange(order, { ...order, status: 'closed', close_reason: 'expired', closed_at: order.expires_at })],
      request: null,
      now,
    });
    return result.committed;
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
