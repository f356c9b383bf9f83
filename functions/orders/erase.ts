import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { commitAudited } from '../audit/append';
import type { AuditContext } from '../audit/context';
import { InternalError, InvalidRequestError, NotFoundError } from '../commons/errors';
import type { Order } from './order';
import { orderKey } from './repository';
import { orderIdSchema } from './schemas';

/**
 * A payer's erasure on request (`npx payplane payers erase --order <id>`, the operator route): the order forgets its
 * payer, in one transaction with its audit entry (`payer.erased`, on the merchant's chain).
 *
 * Where a payer lands, and what erasure does there (docs/data.md § Erasure):
 * - the order item (and its gsi1 copy, which DynamoDB keeps in step; gsi2 projects no payer): `payer_ciphertext`,
 *   `payer_masked` and `payer_locale` are removed and `payer_erased_at` set. The API then shows `payer: null` and
 *   `payer_erased_at`; the receipts sender finds no contact and sends nothing.
 * - events: their bodies carry the payer masked at creation (`J***`, `j***@example.com`, `+86*******1234`), never
 *   the payer; they expire 30 days after they were written. Events written after the erasure carry no payer.
 * - idempotency records: a replayable response of the order (create, confirm…) rests sealed in the idempotency
 *   table for at most 24 hours; it is keyed by the merchant's Idempotency-Key, not the order, so it goes by TTL.
 * - receipts claims, deliveries, attempts, the ledger, settlements and the audit trail hold no payer.
 * Nothing is opened: erasure needs no KMS.
 */
export interface ErasureDeps {
  db: Pick<DynamoDBDocumentClient, 'send'>;
  /** The main table (TABLE_NAME). */
  tableName: string;
  /** @default () => new Date() */
  now?: () => Date;
}

export interface ErasureResult {
  order_id: string;
  merchant_id: string;
  /** true: this call erased the payer; false: it was erased before (nothing changed). */
  erased: boolean;
  payer_erased_at: string;
  /** The items this call changed, as `pk / sk` (empty when it was erased before). */
  changed: string[];
  /** What still holds a copy, and when it goes by itself. */
  remaining: string[];
  message: string;
}

/** The order's payer attributes, all of which erasure removes. */
const PAYER_FIELDS = ['payer_ciphertext', 'payer_masked', 'payer_locale'] as const;

const REMAINING = [
  'events of the order: the payer masked (first letter, email domain, last 4 digits of the phone), until each event expires 30 days after it was written',
  'idempotency records: the sealed response of a request made with an Idempotency-Key, until it expires 24 hours after the request',
];

export async function erasePayer(deps: ErasureDeps, input: { orderId: unknown }, by: AuditContext): Promise<ErasureResult> {
  // validate
  const parsed = orderIdSchema.safeParse(input.orderId);
  if (!parsed.success) {
    throw new InvalidRequestError('parameter_invalid', `Invalid 'order': got ${JSON.stringify(input.orderId) ?? 'nothing'}. Give the order's id, e.g. --order ord_3xQ9Zk2LmN.`, { param: 'order' });
  }
  const orderId = parsed.data;
  // load
  const order = await load(deps, orderId);
  if (order.payer_erased_at) return already(order);
  // decide
  const now = (deps.now?.() ?? new Date()).toISOString();
  const had = PAYER_FIELDS.filter((f) => order[f] !== undefined);
  const key = orderKey(orderId);
  // persist: the order and its audit entry, or neither
  const result = await commitAudited(
    deps,
    [
      {
        Update: {
          TableName: deps.tableName,
          Key: key,
          UpdateExpression: `SET payer_erased_at = :now${had.length ? ` REMOVE ${had.join(', ')}` : ''}`,
          // An erasure that raced this one won: it stands, and this call says so.
          ConditionExpression: 'attribute_exists(pk) AND merchant_id = :merchant AND attribute_not_exists(payer_erased_at)',
          ExpressionAttributeValues: { ':now': now, ':merchant': order.merchant_id },
        },
      },
    ],
    {
      action: 'payer.erased',
      merchantId: order.merchant_id,
      target: { type: 'order', id: orderId },
      // Which fields were there, never their values: the audit trail holds no PII.
      before: { payer: had.length ? { fields: presentFields(order) } : null },
      after: { payer: null, payer_erased_at: now },
    },
    by,
  );
  if (!result.committed) {
    const current = await load(deps, orderId);
    if (result.reasons[0] === 'ConditionalCheckFailed' && current.payer_erased_at) return already(current);
    throw new InternalError('erasure_not_written', `Erasing the payer of order ${orderId} was cancelled (${result.reasons.join(', ')}); run it again.`);
  }
  return {
    order_id: orderId,
    merchant_id: order.merchant_id,
    erased: true,
    payer_erased_at: now,
    changed: [`${key.pk} / ${key.sk}`],
    remaining: REMAINING,
    message: had.length ? `The payer of order ${orderId} is erased.` : `Order ${orderId} had no payer; it is marked erased, so none can be added.`,
  };
}

async function load(deps: ErasureDeps, orderId: string): Promise<Order> {
  const { Item } = await deps.db.send(new GetCommand({ TableName: deps.tableName, Key: orderKey(orderId), ConsistentRead: true }));
  if (!Item) throw new NotFoundError('order', orderId, 'order');
  return Item as unknown as Order;
}

function already(order: Order): ErasureResult {
  return {
    order_id: order.id,
    merchant_id: order.merchant_id,
    erased: false,
    payer_erased_at: order.payer_erased_at!,
    changed: [],
    remaining: REMAINING,
    message: `The payer of order ${order.id} was erased already, at ${order.payer_erased_at}; nothing changed.`,
  };
}

/** The payer's fields as names (name, email, phone, locale): what the audit entry may say. */
function presentFields(order: Order): string[] {
  return [...Object.keys(order.payer_masked ?? {}), ...(order.payer_locale ? ['locale'] : [])].sort();
}
