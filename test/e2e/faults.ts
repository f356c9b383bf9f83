import { expect } from 'vitest';
import type { FaultSpec } from '../../local/faults';
import { call, cloud, type Response } from './support';

/**
 * Named points where a test makes a function die (local/faults.ts matches them on the function's AWS SDK
 * calls). Each is where a real Lambda can end: a timeout or a kill between two calls.
 */
export const POINTS = {
  /** Its transaction that moves money (a ledger transfer in the same TransactWriteItems) has committed. */
  afterCommit: { operation: 'TransactWriteItems', contains: '"TRANSFER#', when: 'after' },
  /** Create order: the order and its number are written. */
  afterInsert: { operation: 'TransactWriteItems', contains: '"ORDERNO"', when: 'after' },
  /** Confirm: the order is claimed (processing), the channel not asked yet. */
  afterClaim: { operation: 'TransactWriteItems', contains: '"processing"', when: 'after' },
  /** The channel acted (the sandbox bank's own write of the trade). */
  afterChannel: { operation: ['TransactWriteItems', 'UpdateItem', 'PutItem'], contains: '"SANDBOX#', when: 'after' },
  /** Create webhook endpoint: the endpoint and its slot in the merchant's count are written. */
  afterEndpointInsert: { operation: 'TransactWriteItems', contains: '#WEBHOOKENDPOINTS"', when: 'after' },
  /** Everything is done but the Idempotency-Key is not completed. */
  beforeCompletion: { operation: 'UpdateItem', contains: '":completed"', when: 'before' },
} satisfies Record<string, Omit<FaultSpec, 'function'>>;

export type PointName = keyof typeof POINTS;

/** Arms `point` for the next invocation of `fn` whose request carries `idempotencyKey`. */
export async function armFault(fn: string, point: PointName, idempotencyKey: string): Promise<void> {
  const res = await fetch(`${cloud().endpoints.admin}/__faults`, {
    method: 'POST',
    body: JSON.stringify({ function: fn, ...POINTS[point], event: idempotencyKey } satisfies FaultSpec),
  });
  expect(res.status, await res.clone().text()).toBe(201);
}

export async function faultFired(idempotencyKey: string): Promise<boolean> {
  const { faults } = (await (await fetch(`${cloud().endpoints.admin}/__faults`)).json()) as { faults: { event?: string; firedIn?: string }[] };
  return faults.some((f) => f.event === idempotencyKey && f.firedIn !== undefined);
}

/**
 * Sends the request, which dies at the armed point, then retries it with the same key as a merchant
 * would until the dead run's claim expires and the retry takes it over. Returns the retry's answer.
 */
export async function crashThenRetry(path: string, key: string, idempotencyKey: string, body: unknown = {}): Promise<Response> {
  const first = await call('POST', path, { key, body, idempotencyKey });
  expect(first.status, `the armed fault should have killed the first run: ${first.text}`).toBe(502);
  expect(await faultFired(idempotencyKey)).toBe(true);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const retry = await call('POST', path, { key, body, idempotencyKey });
    if (retry.status !== 409 || retry.body?.error?.code !== 'idempotency_key_in_use') return retry;
    if (Date.now() > deadline) throw new Error(`${path}: the dead run's claim was never taken over`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
