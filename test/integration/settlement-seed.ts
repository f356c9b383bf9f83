import { BatchWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../../functions/commons/clients';
import { newId } from '../../functions/commons/ids';
import { captureTransfers, transferWrites, type Transfer } from '../../functions/ledger/transfers';

/**
 * Ledger entries in bulk, for the volume test and the settlement bench: captures with their fees, built by the
 * ledger's own builders (captureTransfers) and written as transferWrites would write them, except that the
 * transfer items go in with BatchWriteItem (25 a call, unconditioned: the ids are new) and each account's counters
 * move once by the sum of its deltas (the same UpdateItem transferWrites makes for a batch). The result is a
 * balanced ledger, indexed exactly as real captures are: gsi1 ENTRY#<CUR>#delayed#<created_at>#<id>, the merchant
 * account in gsi2 SETTLE_ACCOUNTS.
 */
export interface SeededEntries {
  /** Entries written: a capture and a fee per order. */
  entries: number;
  gross: number;
  fees: number;
  ms: number;
}

export async function seedEntries(table: string, merchantId: string, options: { orders: number; createdAt: Date; amount?: (i: number) => number; platform?: string; concurrency?: number }): Promise<SeededEntries> {
  const started = performance.now();
  const transfers: Transfer[] = [];
  let gross = 0;
  let fees = 0;
  const runId = newId('vol').slice(4, 14);
  for (let i = 0; i < options.orders; i++) {
    const amount = options.amount?.(i) ?? 1_000 + (i % 97) * 10;
    const fee = Math.floor(amount * 0.029) + 30;
    // Spread over the day before createdAt's minute, a millisecond apart: entries keep a stable order.
    const at = new Date(options.createdAt.getTime() + i);
    transfers.push(...captureTransfers({ order_id: `ord_${runId}${i}`, merchant_id: merchantId, currency: 'USD', channel: 'volume', platform: options.platform, payment_id: `pay_${runId}${i}` }, { amount, fee }, at));
    gross += amount;
    fees += fee;
  }
  // transferWrites per 40 orders (80 transfers and at most 17 accounts: one transaction's worth), then its account
  // updates merged per account: the counters (and headroom) are sums, the SET parts the same for one account.
  const puts: { PutRequest: { Item: Record<string, unknown> } }[] = [];
  const updates = new Map<string, NonNullable<ReturnType<typeof transferWrites>[number]['Update']>>();
  for (let k = 0; k < transfers.length; k += 80) {
    for (const it of transferWrites(table, transfers.slice(k, k + 80), options.createdAt)) {
      if (it.Put) puts.push({ PutRequest: { Item: it.Put.Item! } });
      if (!it.Update) continue;
      const key = JSON.stringify(it.Update.Key);
      const seen = updates.get(key);
      if (!seen) {
        // The seeded ledger is balanced by construction: no headroom condition to check.
        const { ConditionExpression: _c, ...update } = it.Update;
        const values = { ...update.ExpressionAttributeValues };
        delete values[':need'];
        updates.set(key, { ...update, ExpressionAttributeValues: values });
        continue;
      }
      for (const name of [':dp', ':dP', ':cp', ':cP', ':headroom']) {
        if (typeof it.Update.ExpressionAttributeValues?.[name] === 'number') seen.ExpressionAttributeValues![name] = (seen.ExpressionAttributeValues![name] as number) + (it.Update.ExpressionAttributeValues[name] as number);
      }
    }
  }
  const batches: (typeof puts)[] = [];
  for (let k = 0; k < puts.length; k += 25) batches.push(puts.slice(k, k + 25));
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency ?? 8 }, async () => {
      while (next < batches.length) {
        let batch = batches[next++]!;
        while (batch.length) {
          const out = await dynamo().send(new BatchWriteCommand({ RequestItems: { [table]: batch } }));
          batch = (out.UnprocessedItems?.[table] ?? []) as typeof batch;
        }
      }
    }),
  );
  for (const u of updates.values()) {
    await dynamo().send(
      new UpdateCommand({ TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression, ExpressionAttributeNames: u.ExpressionAttributeNames, ExpressionAttributeValues: u.ExpressionAttributeValues }),
    );
  }
  return { entries: transfers.length, gross, fees, ms: performance.now() - started };
}
