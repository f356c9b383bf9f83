import { describe, expect, it } from 'vitest';
import { ChangeWriter } from '../../functions/changes/writer';
import { maskPayer, previousAttributes } from '../../functions/changes/snapshot';
import type { Order } from '../../functions/orders/order';
import { orderChange, orderEventType } from '../../functions/orders/subject';

const order = (over: Partial<Order> = {}): Order => ({
  id: 'ord_1',
  merchant_id: 'mch_1',
  merchant_order_no: 'A-1',
  status: 'requires_payment',
  amount: 1000,
  amount_refunded: 0,
  currency: 'USD',
  capture_method: 'automatic',
  metadata: {},
  expires_at: '2030-01-01T00:30:00.000Z',
  created_at: '2030-01-01T00:00:00.000Z',
  updated_at: '2030-01-01T00:00:00.000Z',
  version: 1,
  ...over,
});
const now = new Date('2030-01-01T00:01:00.000Z');
const writer = new ChangeWriter('main');

describe('the payer in events', () => {
  it('is masked: first letter, the email domain, the phone number its country code and last four digits', () => {
    expect(maskPayer({ name: 'Jane Roe', email: 'jane.roe@example.com', phone: '+8613800001234' })).toEqual({ name: 'J***', email: 'j***@example.com', phone: '+86*******1234' });
    expect(maskPayer({ name: '李雷' })).toEqual({ name: '李***' });
    expect(maskPayer({})).toEqual({});
  });
});

describe('the writer builds one transaction per change', () => {
  it('conditions the order on the version it was decided on, bumps it, and puts the change’s one event', () => {
    // Act
    const { items, names, events, written } = writer.build({ objects: [orderChange(order(), order({ status: 'closed', close_reason: 'merchant' }))], request: { id: 'req_1', idempotency_key: null }, now, baseUrl: 'https://api.test' });
    // Assess
    expect(names).toEqual(['order', 'event']);
    expect(items[0]!.Update!.ConditionExpression).toContain('#version = :version');
    expect(items[0]!.Update!.ExpressionAttributeValues![':version']).toBe(1);
    expect(written.order).toMatchObject({ version: 2, updated_at: now.toISOString() });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'order.closed', request: { id: 'req_1' }, data: { object: { version: 2, status: 'closed' } } });
    expect(events[0]!.data.previous_attributes).toEqual({ status: 'requires_payment', close_reason: null, updated_at: '2030-01-01T00:00:00.000Z' });
  });

  it('refuses a change that makes no event, and a transition the lifecycle forbids', () => {
    expect(() => writer.build({ objects: [orderChange(order(), order({ description: 'x' }))], request: null, now, baseUrl: 'https://api.test' })).toThrow(/change_without_event|alters none/);
    expect(() => writer.build({ objects: [orderChange(order({ status: 'closed' }), order({ status: 'succeeded' }))], request: null, now, baseUrl: 'https://api.test' })).toThrow(/cannot move from closed/);
  });
});

describe('event types', () => {
  it.each([
    [undefined, 'requires_payment', 'order.created'],
    ['requires_payment', 'processing', 'order.processing'],
    ['processing', 'requires_payment', 'order.payment_failed'],
    ['requires_capture', 'succeeded', 'order.succeeded'],
    ['requires_action', 'closed', 'order.closed'],
  ] as const)('%s → %s is %s', (from, to, type) => {
    expect(orderEventType(from ? order({ status: from }) : undefined, order({ status: to }))).toBe(type);
  });

  it('a change of amount_refunded alone is order.refunded', () => {
    expect(orderEventType(order({ status: 'succeeded' }), order({ status: 'succeeded', amount_refunded: 100 }))).toBe('order.refunded');
  });

  it('previous_attributes are the changed API fields with their old values, version left out', () => {
    expect(previousAttributes({ a: 1, b: { x: 1 }, c: null, version: 1 }, { a: 1, b: { x: 2 }, c: 'now', version: 2 })).toEqual({ b: { x: 1 }, c: null });
  });
});
