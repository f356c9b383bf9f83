import { InternalError } from '../commons/errors';
import { conversionOf, type FxLock } from '../fx/convert';
import { DEFAULT_PLATFORM, feesAccount, fxAccount, fxSpreadAccount, merchantAccount } from './accounts';
import { feeAt, type PaymentFeeRate } from './fees';
import { authorizationTransfer, captureTransfers, refundTransfer, transferIds, voidTransfer, type ConversionDetails, type PaymentRef, type Transfer } from './transfers';

/**
 * Transfers of a converted payment (an order in another currency than its merchant's settlement currency),
 * TigerBeetle's currency-exchange recipe: two legs through the platform's fx liquidity accounts, one per currency,
 * so that every transfer, and every transaction, balances in its own currency.
 *
 *   authorize  receivable(src) → fx(src)          authorization  pending   source amount
 *              fx(settle)      → merchant(settle) conversion     pending   conv_base(amount)   (the merchant's `authorized`)
 *   capture    both posted (post_pending; a partial capture posts less and releases the rest), then
 *              merchant        → fx_spread        fx_spread      posted    conv_base − conv_merchant (the markup)
 *              merchant        → fees             fee            posted    on conv_base, at the locked fee rate
 *   void       both voided
 *   refund     fx(src)         → receivable(src)  refund         posted    source amount
 *              merchant        → fx(settle)       refund         posted    the cumulative reversal (fx/convert.ts refundReversal)
 *
 * The source legs keep the ids of a plain payment (tr_<order>_authorization, _capture, _void, tr_<refund>_refund):
 * they are what the channel's statement shows. A leg whose amount rounds to zero is not written.
 */
export const conversionTransferIds = {
  authorization: (orderId: string) => `tr_${orderId}_conversion_authorization`,
  conversion: (orderId: string) => `tr_${orderId}_conversion`,
  void: (orderId: string) => `tr_${orderId}_conversion_void`,
  spread: (orderId: string) => `tr_${orderId}_fx_spread`,
  refund: (refundId: string) => `tr_${refundId}_refund_fx`,
};

const settleAccounts = (ref: PaymentRef, lock: FxLock) => {
  const platform = ref.platform ?? DEFAULT_PLATFORM;
  return {
    merchant: merchantAccount(ref.merchant_id, lock.settlement_currency),
    fxSource: fxAccount(lock.source_currency, ref.order_id, platform),
    fxSettle: fxAccount(lock.settlement_currency, ref.order_id, platform),
    spread: fxSpreadAccount(lock.settlement_currency, ref.order_id, platform),
    fees: feesAccount(lock.settlement_currency, ref.order_id, platform),
  };
};

function checkLock(ref: PaymentRef, lock: FxLock): void {
  if (ref.currency !== lock.source_currency) {
    throw new InternalError('ledger_invalid_transfer', `Order ${ref.order_id} is in ${ref.currency} but its FX lock converts from ${lock.source_currency}.`);
  }
}

export function conversionDetails(lock: FxLock, sourceAmount: number): ConversionDetails {
  return {
    source_currency: lock.source_currency,
    source_amount: sourceAmount,
    base_rate: lock.base_rate,
    rate: lock.rate,
    markup_bps: lock.markup_bps,
    rate_effective_at: lock.rate_effective_at,
  };
}

const settleBase = (ref: PaymentRef, lock: FxLock, now: Date) => ({
  currency: lock.settlement_currency,
  order_id: ref.order_id,
  merchant_id: ref.merchant_id,
  created_at: now.toISOString(),
});

/**
 * The fee of a converted payment: in the settlement currency, on the amount converted at the base rate, at the
 * rate locked at confirm (method percentage + cross-border fee), and never more than the merchant keeps after the
 * spread, so a capture never takes the merchant's balance down.
 */
export function feeOnConversion(lock: FxLock, amount: number, rate: PaymentFeeRate): number {
  const c = conversionOf(lock, amount);
  return Math.min(feeAt(c.base, rate), c.merchant);
}

export function convertedAuthorizationTransfers(ref: PaymentRef, lock: FxLock, amount: number, now: Date): Transfer[] {
  checkLock(ref, lock);
  const a = settleAccounts(ref, lock);
  const source = { ...authorizationTransfer(ref, amount, now), credit: a.fxSource };
  const base = conversionOf(lock, amount).base;
  if (base === 0) return [source];
  return [
    source,
    { id: conversionTransferIds.authorization(ref.order_id), debit: a.fxSettle, credit: a.merchant, amount: base, kind: 'conversion', phase: 'pending', fx: conversionDetails(lock, amount), ...settleBase(ref, lock, now) },
  ];
}

/**
 * Capture `amount` source units of a converted order, with `authorized` (its authorization's source amount) for a
 * two-phase one. `fee` is feeOnConversion's, in the settlement currency.
 */
export function convertedCaptureTransfers(ref: PaymentRef, lock: FxLock, input: { amount: number; fee: number; authorized?: number }, now: Date): Transfer[] {
  checkLock(ref, lock);
  const a = settleAccounts(ref, lock);
  const c = conversionOf(lock, input.amount);
  if (!Number.isSafeInteger(input.fee) || input.fee < 0 || input.fee > c.merchant) {
    throw new InternalError('ledger_invalid_transfer', `Fee ${input.fee} on a conversion of ${c.base} (${c.merchant} after the spread) must be an integer from 0 to ${c.merchant}.`);
  }
  const [capture] = captureTransfers(ref, { ...input, fee: 0 }, now);
  const out: Transfer[] = [{ ...capture!, credit: a.fxSource }];
  const details = { fx: conversionDetails(lock, input.amount), ...settleBase(ref, lock, now) };
  const authorizedBase = input.authorized === undefined ? 0 : conversionOf(lock, input.authorized).base;
  if (authorizedBase > 0 && c.base === 0) {
    // Nothing to credit after all: the pending conversion is released whole.
    out.push({ id: conversionTransferIds.void(ref.order_id), debit: a.fxSettle, credit: a.merchant, amount: authorizedBase, kind: 'conversion', phase: 'void_pending', pending_id: conversionTransferIds.authorization(ref.order_id), pending_amount: authorizedBase, ...details });
  } else if (c.base > 0) {
    out.push({
      id: conversionTransferIds.conversion(ref.order_id),
      debit: a.fxSettle,
      credit: a.merchant,
      amount: c.base,
      kind: 'conversion',
      ...(authorizedBase > 0 ? { phase: 'post_pending' as const, pending_id: conversionTransferIds.authorization(ref.order_id), pending_amount: authorizedBase } : { phase: 'posted' as const }),
      ...details,
    });
  }
  const settle = settleBase(ref, lock, now);
  if (c.spread > 0) out.push({ id: conversionTransferIds.spread(ref.order_id), debit: a.merchant, credit: a.spread, amount: c.spread, kind: 'fx_spread', phase: 'posted', ...settle });
  if (input.fee > 0) {
    out.push({ id: transferIds.fee(ref.order_id), debit: a.merchant, credit: a.fees, amount: input.fee, kind: 'fee', phase: 'posted', ...settle });
  }
  return out;
}

export function convertedVoidTransfers(ref: PaymentRef, lock: FxLock, authorized: number, now: Date): Transfer[] {
  checkLock(ref, lock);
  const a = settleAccounts(ref, lock);
  const source = { ...voidTransfer(ref, authorized, now), credit: a.fxSource };
  const base = conversionOf(lock, authorized).base;
  if (base === 0) return [source];
  return [
    source,
    {
      id: conversionTransferIds.void(ref.order_id),
      debit: a.fxSettle,
      credit: a.merchant,
      amount: base,
      kind: 'conversion',
      phase: 'void_pending',
      pending_id: conversionTransferIds.authorization(ref.order_id),
      pending_amount: base,
      fx: conversionDetails(lock, authorized),
      ...settleBase(ref, lock, now),
    },
  ];
}

/**
 * A refund of `amount` source units; `settlement_amount` is what it takes from the merchant (refundReversal, at the
 * locked rate). The platform, not the merchant, carries the rate's moves since confirm; spread and fee are kept.
 */
export function convertedRefundTransfers(ref: PaymentRef, lock: FxLock, input: { refund_id: string; amount: number; settlement_amount: number }, now: Date): Transfer[] {
  checkLock(ref, lock);
  const a = settleAccounts(ref, lock);
  const source = { ...refundTransfer(ref, input, now), debit: a.fxSource };
  if (input.settlement_amount === 0) return [source];
  return [
    source,
    {
      id: conversionTransferIds.refund(input.refund_id),
      debit: a.merchant,
      credit: a.fxSettle,
      amount: input.settlement_amount,
      kind: 'refund',
      phase: 'posted',
      refund_id: input.refund_id,
      fx: conversionDetails(lock, input.amount),
      ...settleBase(ref, lock, now),
    },
  ];
}
