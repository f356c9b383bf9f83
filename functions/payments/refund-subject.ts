import { change, type ObjectChange, type Subject, type WriteResult } from '../changes/writer';
import { InternalError } from '../commons/errors';
import { inFlightKey } from '../orders/repository';
import { refundToApi, type Refund } from './payment';
import { refundKey } from './repository';

/** How the writer (changes/writer.ts) stores and shows a refund. */
export const refundSubject: Subject<Refund> = {
  kind: 'refund',
  key: (refund) => refundKey(refund.id),
  created: (refund) => ({
    type: 'refund',
    gsi1pk: `MERCHANT#${refund.merchant_id}`,
    gsi1sk: `REFUND#${refund.order_id}#${refund.created_at}#${refund.id}`,
    // In the in-flight index while pending: the reconciler asks the channel about it.
    ...(refund.status === 'pending' ? inFlightKey(refund.id, new Date(refund.created_at)) : {}),
  }),
  index: (_before, after) => (after.status === 'pending' ? {} : { remove: ['gsi2pk', 'gsi2sk'] }),
  snapshot: (refund) => refundToApi(refund),
  eventType(before, after) {
    if (!before) return 'refund.created';
    if (before.status === after.status) return undefined;
    return after.status === 'succeeded' ? 'refund.succeeded' : after.status === 'failed' ? 'refund.failed' : undefined;
  },
  check(before, after) {
    if (before.status !== 'pending' || after.status === 'pending') throw new InternalError('change_invalid', `Refund ${after.id} cannot move from ${before.status} to ${after.status}: only a pending refund settles, once.`);
  },
};

export const refundChange = (before: Refund | undefined, after: Refund): ObjectChange => change(refundSubject, before, after);

export const writtenRefund = (result: WriteResult): Refund => {
  if (!result.committed || !result.written.refund) throw new InternalError('change_not_written', 'No refund was written.');
  return result.written.refund as Refund;
};
