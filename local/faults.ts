import { randomUUID } from 'node:crypto';
import type { ControlPlane } from './control-plane';

/**
 * Fault injection: a test makes a named function die at a named point of its work, as a Lambda
 * environment dies on a timeout or an out-of-memory kill, to prove that a retry finishes the job once.
 *
 * A point is an AWS SDK call, seen on the wire by the function's worker (lambda-worker.mjs hooks
 * node:http before the handler loads): the Nth call whose `X-Amz-Target` operation and body match,
 * either `before` it is sent (it never happens) or `after` its response arrived (it happened, and the
 * handler never learns it). Handler code is untouched: nothing in the bundle knows about faults, and the
 * hook exists only in a local cloud started with `faults: true`.
 *
 * Faults are one-shot. Armed with `POST <admin>/__faults`, listed with `GET`, cleared with `DELETE`.
 */
export interface FaultSpec {
  /** The function: logical id, function name, or the construct id the logical id starts with (`CreateRefund`). */
  function: string;
  /** DynamoDB's `TransactWriteItems`, KMS's `GenerateDataKey`…: the operation part of `X-Amz-Target`. Any when omitted. */
  operation?: string | string[];
  /** A substring of the request body, e.g. `"TableName":"Payplane-dev-Idempotency…"` or a key prefix. */
  contains?: string;
  /** `before`: the call is never sent. `after`: its response has arrived, so it took effect. */
  when: 'before' | 'after';
  /** The Nth matching call of the invocation. @default 1 */
  nth?: number;
  /** Only invocations whose event contains this, e.g. the request's Idempotency-Key: tests in parallel do not collide. */
  event?: string;
}

/** What the worker gets with an invocation. */
export interface ArmedFault {
  id: string;
  operations?: string[];
  contains?: string;
  when: 'before' | 'after';
  nth: number;
}

export interface FaultState extends FaultSpec {
  id: string;
  /** The request id of the invocation it killed. */
  firedIn?: string;
}

export class FaultInjector {
  private readonly faults = new Map<string, FaultState>();
  /** Faults handed to a running invocation, so that two invocations never share one. */
  private readonly taken = new Set<string>();

  arm(spec: FaultSpec): FaultState {
    if (!spec || typeof spec.function !== 'string' || (spec.when !== 'before' && spec.when !== 'after')) {
      throw new Error(`A fault needs "function" (a logical id or name) and "when" ("before" | "after"); got ${JSON.stringify(spec)}.`);
    }
    if (spec.nth !== undefined && !(Number.isInteger(spec.nth) && spec.nth >= 1)) throw new Error(`"nth" must be an integer ≥ 1; got ${JSON.stringify(spec.nth)}.`);
    const state: FaultState = { ...spec, id: randomUUID() };
    this.faults.set(state.id, state);
    return state;
  }

  list(): FaultState[] {
    return [...this.faults.values()];
  }

  clear(): void {
    this.faults.clear();
    this.taken.clear();
  }

  /** The unfired faults for one invocation of a function, reserved for it until `release`. */
  take(fn: { logicalId: string; name: string }, eventJson: string): ArmedFault[] {
    const armed: ArmedFault[] = [];
    for (const f of this.faults.values()) {
      if (f.firedIn || this.taken.has(f.id)) continue;
      if (f.function !== fn.logicalId && f.function !== fn.name && !fn.logicalId.startsWith(f.function)) continue;
      if (f.event !== undefined && !eventJson.includes(f.event)) continue;
      this.taken.add(f.id);
      armed.push({ id: f.id, operations: f.operation === undefined ? undefined : [f.operation].flat(), contains: f.contains, when: f.when, nth: f.nth ?? 1 });
    }
    return armed;
  }

  /** The invocation ended: `firedId` killed it; the others go back to waiting for a later invocation. */
  release(armed: ArmedFault[], firedId: string | undefined, requestId: string): void {
    for (const a of armed) {
      this.taken.delete(a.id);
      const f = this.faults.get(a.id);
      if (f && a.id === firedId) f.firedIn = requestId;
    }
  }

  routes(control: ControlPlane): void {
    control.route('GET', '/__faults', async () => ({ status: 200, body: { faults: this.list() } }));
    control.route('DELETE', '/__faults', async () => {
      this.clear();
      return { status: 204 };
    });
    control.route('POST', '/__faults', async (_req, _params, body) => {
      try {
        return { status: 201, body: this.arm(JSON.parse(body.toString('utf8') || 'null') as FaultSpec) };
      } catch (error) {
        return { status: 400, body: { message: (error as Error).message } };
      }
    });
  }
}
