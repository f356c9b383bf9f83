import type { ChannelEvent } from '../channels';
import type { Caller } from '../orders/service';
import { capture } from './operations/capture';
import { applyChannelEvent } from './operations/channel-result';
import { confirm } from './operations/confirm';
import { PaymentContext, type ChannelEventOutcome, type PaymentServiceDeps, type ReconcileSummary } from './operations/context';
import { reconcileDue, syncPayment } from './operations/reconcile';
import { refund } from './operations/refund';
import { completeThreeDSecure } from './operations/three-d-secure';
import { close, voidAuthorization } from './operations/void';

export { RECONCILE_GRACE_MS, type ChannelEventOutcome, type PaymentServiceDeps, type ReconcileSummary } from './operations/context';

/**
 * The payment operations behind one facade, for handlers and tests: each method is one module of operations/
 * (validate → load → decide → persist through the writer → effects), the reads are the context's.
 *
 * | method | module |
 * |---|---|
 * | confirm | operations/confirm.ts |
 * | completeThreeDSecure | operations/three-d-secure.ts |
 * | applyChannelEvent | operations/channel-result.ts (decide: outcome.ts) |
 * | capture | operations/capture.ts |
 * | close, voidAuthorization | operations/void.ts |
 * | refund | operations/refund.ts |
 * | reconcileDue, syncPayment | operations/reconcile.ts |
 */
export class PaymentService {
  private readonly ctx: PaymentContext;

  constructor(deps: PaymentServiceDeps) {
    this.ctx = new PaymentContext(deps);
  }

  confirm = (caller: Caller, orderId: string, body: unknown) => confirm(this.ctx, caller, orderId, body);
  completeThreeDSecure = (caller: Caller, orderId: string, outcome: 'approve' | 'fail') => completeThreeDSecure(this.ctx, caller, orderId, outcome);
  applyChannelEvent = (event: ChannelEvent, now?: Date): Promise<ChannelEventOutcome> => applyChannelEvent(this.ctx, event, now);
  capture = (caller: Caller, orderId: string, body?: unknown) => capture(this.ctx, caller, orderId, body);
  close = (caller: Caller, orderId: string) => close(this.ctx, caller, orderId);
  voidAuthorization = (caller: Caller, orderId: string) => voidAuthorization(this.ctx, caller, orderId);
  refund = (caller: Caller, body: unknown) => refund(this.ctx, caller, body);
  syncPayment = (caller: Caller, orderId: string) => syncPayment(this.ctx, caller, orderId);
  reconcileDue = (now: Date, options?: { graceMs?: number; perShard?: number }): Promise<ReconcileSummary> => reconcileDue(this.ctx, now, options);

  getOrder = (caller: Caller, orderId: string) => this.ctx.getOrder(caller, orderId);
  getRefund = (caller: Caller, id: string) => this.ctx.getRefund(caller, id);
  listRefunds = (caller: Caller, orderId: string) => this.ctx.listRefunds(caller, orderId);
  balance = (caller: Caller) => this.ctx.balance(caller);
}
