import { describe, expect, it } from 'vitest';
import { canTransition, effective, ORDER_STATUSES, sourcesOf, transitionConflict, type Order } from '../../functions/orders/order';

const order = (over: Partial<Order> = {}): Order => ({
  id: 'ord_1',
  merchant_id: 'mch_1',
  merchant_order_no: 'A-1',
  status: 'requires_payment',
  amount: 1000,
  amount_refunded: 0,
  currency: 'USD',
  capture_method: 'automatic',
  version: 1,
  metadata: {},
  expires_at: '2026-01-01T00:30:00.000Z',
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
  ...over,
});

describe('order state rules', () => {
  it('lets an unpaid order be closed, and nothing leave a terminal state', () => {
    expect(canTransition('requires_payment', 'closed')).toBe(true);
    expect(canTransition('requires_capture', 'closed')).toBe(true);
    for (const terminal of ['succeeded', 'failed', 'closed'] as const) {
      for (const to of ORDER_STATUSES) expect(canTransition(terminal, to)).toBe(false);
    }
  });

  it('never lets a processing payment be closed under it', () => {
    expect(canTransition('processing', 'closed')).toBe(false);
    expect(sourcesOf('closed')).not.toContain('processing');
  });

  it('names the current status in the conflict code', () => {
    const error = transitionConflict('ord_1', 'succeeded', 'closed');
    expect(error.status).toBe(409);
    expect(error.code).toBe('order_status_succeeded');
    expect(error.message).toContain('succeeded');
  });
});

describe('expiry on read', () => {
  it('shows an unpaid order past expires_at as closed by expiry', () => {
    const o = order();
    expect(effective(o, new Date('2026-01-01T00:29:59.999Z')).status).toBe('requires_payment');
    const after = effective(o, new Date('2026-01-01T00:30:00.000Z'));
    expect(after).toMatchObject({ status: 'closed', close_reason: 'expired', closed_at: o.expires_at });
  });

  it('leaves orders in other states alone', () => {
    const paid = order({ status: 'succeeded' });
    expect(effective(paid, new Date('2027-01-01T00:00:00Z')).status).toBe('succeeded');
  });
});
