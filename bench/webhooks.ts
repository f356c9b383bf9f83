/**
 * The webhook pipeline under load, through the local cloud: N payments (create + confirm with 4242…) at a modest
 * concurrency, each one's `order.succeeded` delivered to a real receiver (node:http on 127.0.0.1, registered with
 * POST /v1/webhook_endpoints, every delivery verified with `standardwebhooks`).
 *
 * Latency: from the event's `created_at` (written in the payment's transaction) and from the confirm response,
 * to the receiver's first receipt of the event. Stages (to find where the time goes): created_at → the
 * delivery message's SendMessage (the stream poll + PublishEvents) → the attempt's `at` as the deliverer
 * records it (SQS receive + the poller's invoke) → the receipt (the deliverer's reads, signing and the POST).
 *
 * Cost per delivered event, from the local cloud's own counters over the measured window: SQS calls (by action)
 * and KMS calls (by action) of the pipeline's functions (their pollers included: Lambda's SQS pollers read with
 * the function's role), Lambda invocations per function, and DynamoDB write/read units the functions reported
 * through ReturnConsumedCapacity (EMF metrics). The payment API's own cost is bench/run.ts' `per_payment`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { startLocalCloud } from '../local/cloud';
import type { SqsStats } from '../local/sqs';

type Cloud = Awaited<ReturnType<typeof startLocalCloud>>;

/** The notification pipeline's functions (lib/constructs/notifications.ts), by logical id prefix. */
const PIPELINE = /^(PublishEvents|SweepEvents|DeliverWebhooks|DeliverWebhooksSlow)/;
const isPipeline = (logicalId: string) => PIPELINE.test(logicalId.replace(/^Notifications/, ''));

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { count: 0, p50_ms: null, p99_ms: null, max_ms: null };
  return { count: sorted.length, p50_ms: round(percentile(sorted, 50)), p99_ms: round(percentile(sorted, 99)), max_ms: round(sorted[sorted.length - 1]!) };
}

interface Receipt {
  eventId: string;
  orderId: string;
  createdAt: number;
  receivedAt: number;
}

/** A merchant's receiver: answers 200 at once and verifies every delivery as a merchant would. */
export async function startReceiver() {
  let secret: Webhook | undefined;
  const firsts = new Map<string, Receipt>();
  const counts = { deliveries: 0, duplicates: 0, verified: 0, unverified: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const receivedAt = Date.now();
      res.writeHead(200).end();
      const body = Buffer.concat(chunks).toString('utf8');
      counts.deliveries++;
      try {
        const event = secret!.verify(body, req.headers as IncomingHttpHeaders & Record<string, string>) as { id: string; type: string; created_at: string; data: { object: { id: string } } };
        counts.verified++;
        if (firsts.has(event.id)) counts.duplicates++;
        else firsts.set(event.id, { eventId: event.id, orderId: event.data.object.id, createdAt: Date.parse(event.created_at), receivedAt });
      } catch {
        counts.unverified++;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/payplane/webhooks`,
    setSecret: (s: string) => (secret = new Webhook(s)),
    firsts,
    counts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Everything the local cloud counted that the figures use, per function / caller. */
function snapshot(cloud: Cloud) {
  const stats = cloud.stats();
  const sqs = (stats.sqs as SqsStats | undefined)?.callsByCaller ?? {};
  // Event source mappings of the pipeline: stream records the publisher got (kept by FilterCriteria), per batch.
  const mappings = ((stats.triggers['event-sources'] ?? []) as { function: string; batches: number; records: number; filtered: number }[]).filter((m) => isPipeline(m.function));
  return { lambda: stats.lambda, sqs, kms: stats.kmsByCaller, mappings };
}
type Snapshot = ReturnType<typeof snapshot>;

/** after − before of nested counters, keeping only non-zero entries. */
function diff(after: Record<string, Record<string, number>>, before: Record<string, Record<string, number>>, keep: (caller: string) => boolean) {
  const out: Record<string, number> = {};
  for (const [caller, ops] of Object.entries(after)) {
    if (!keep(caller)) continue;
    for (const [op, n] of Object.entries(ops)) {
      const d = n - (before[caller]?.[op] ?? 0);
      if (d) out[op] = (out[op] ?? 0) + d;
    }
  }
  return out;
}

const perEvent = (counts: Record<string, number>, delivered: number, digits = 3) =>
  Object.fromEntries(Object.entries(counts).sort().map(([k, v]) => [k, round(v / delivered, digits)]));

function costs(before: Snapshot, after: Snapshot, delivered: number) {
  const invocations: Record<string, number> = {};
  const meanDurations: Record<string, number> = {};
  const coldStarts: Record<string, number> = {};
  const writeUnits: Record<string, number> = {};
  const readUnits: Record<string, number> = {};
  for (const [id, f] of Object.entries(after.lambda)) {
    if (!isPipeline(id)) continue;
    const b = before.lambda[id];
    const d = (get: (s: typeof f) => number) => get(f) - (b ? get(b) : 0);
    if (d((s) => s.invocations)) invocations[id] = d((s) => s.invocations);
    if (d((s) => s.coldStarts)) coldStarts[id] = d((s) => s.coldStarts);
    if (d((s) => s.invocations)) meanDurations[id] = round(d((s) => s.totalDurationMs) / d((s) => s.invocations));
    const w = d((s) => s.metrics['Payplane/DynamoDBWriteUnits'] ?? 0);
    const r = d((s) => s.metrics['Payplane/DynamoDBReadUnits'] ?? 0);
    if (w) writeUnits[id] = w;
    if (r) readUnits[id] = r;
  }
  const sqs = diff(after.sqs, before.sqs, isPipeline);
  const empty = sqs['ReceiveMessage:empty'] ?? 0;
  delete sqs['ReceiveMessage:empty'];
  const kms = diff(after.kms, before.kms, isPipeline);
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const batches = Object.fromEntries(
    after.mappings.map((m) => {
      const b = before.mappings.find((x) => x.function === m.function);
      const kept = m.records - m.filtered - (b ? b.records - b.filtered : 0);
      const invoked = m.batches - (b?.batches ?? 0);
      return [m.function, { records_per_delivered_event: round(kept / delivered, 2), mean_records_per_batch: invoked ? round(kept / invoked, 2) : null }];
    }),
  );
  return {
    // What a payment's events are for the pipeline: every event is published (order.created too), only order.succeeded is delivered here.
    event_source_batches: batches,
    lambda_mean_duration_ms_in_window: meanDurations,
    sqs_calls: perEvent(sqs, delivered),
    sqs_calls_total: round(sum(sqs) / delivered, 3),
    // Idle long polls that returned nothing: a cost per poller and minute (Lambda's pollers poll all the time), not per event.
    sqs_empty_receives_in_window: empty,
    lambda_invocations: perEvent(invocations, delivered),
    lambda_cold_starts_in_window: coldStarts,
    kms_calls: perEvent(kms, delivered, 4),
    kms_calls_total: round(sum(kms) / delivered, 4),
    dynamodb_write_units: round(sum(writeUnits) / delivered, 2),
    dynamodb_write_units_by_function: perEvent(writeUnits, delivered, 2),
    dynamodb_read_units: round(sum(readUnits) / delivered, 2),
  };
}

/** Waits until the pipeline has been idle (no new invocation) for `quietMs`: the previous phases' events are published. */
async function quiesce(cloud: Cloud, quietMs = 1500, maxMs = 120_000) {
  const total = () => Object.entries(cloud.stats().lambda).reduce((sum, [id, f]) => sum + (isPipeline(id) ? f.invocations : 0), 0);
  const deadline = Date.now() + maxMs;
  let last = total();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(250);
    const now = total();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= quietMs) return;
  }
}

export async function webhooks(cloud: Cloud, key: string, options: { payments: number; concurrency: number }) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${cloud.url}${path}`, { method: 'POST', headers: { ...headers, 'idempotency-key': randomUUID() }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const receiver = await startReceiver();
  try {
    const endpoint = await post('/v1/webhook_endpoints', { url: receiver.url, enabled_events: ['order.succeeded'], description: 'bench' });
    if (endpoint.status !== 201) throw new Error(`POST /v1/webhook_endpoints answered ${endpoint.status}: ${JSON.stringify(endpoint.body)}`);
    receiver.setSecret(endpoint.body.secret as string);

    const confirmedAt = new Map<string, number>();
    const pay = async (count: number) => {
      let next = 0;
      let failed = 0;
      await Promise.all(
        Array.from({ length: options.concurrency }, async () => {
          while (next++ < count) {
            const order = await post('/v1/orders', { merchant_order_no: randomUUID(), amount: 1999, currency: 'USD' });
            const paid = await post(`/v1/orders/${order.body.id}/confirm`, {
              payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' } },
            });
            if (paid.status === 200 && paid.body.status === 'succeeded') confirmedAt.set(order.body.id as string, Date.now());
            else failed++;
          }
        }),
      );
      return failed;
    };
    const arrived = async (orderIds: string[], maxMs: number) => {
      const wanted = new Set(orderIds);
      const deadline = Date.now() + maxMs;
      const have = () => [...receiver.firsts.values()].filter((r) => wanted.has(r.orderId)).length;
      while (have() < wanted.size && Date.now() < deadline) await sleep(50);
      return have();
    };

    const beforeWarmup = snapshot(cloud);
    // Warm-up: the previous phases' events published, then a few payments through the whole pipeline, so the
    // measured window starts from warm environments (the window's own cold starts are reported).
    await quiesce(cloud);
    await pay(Math.min(40, options.payments));
    await arrived([...confirmedAt.keys()], 30_000);
    await quiesce(cloud);
    confirmedAt.clear();
    receiver.firsts.clear();
    Object.assign(receiver.counts, { deliveries: 0, duplicates: 0, verified: 0, unverified: 0 });

    const before = snapshot(cloud);
    // KMS is spent per environment, not per event: the platform key and the endpoint secret are opened once per
    // cold start (the Encryption SDK's cache holds the secret 5 minutes). What the warm-up spent shows it.
    const warmupKms = diff(before.kms, beforeWarmup.kms, isPipeline);
    const warmupColdStarts = Object.fromEntries(
      Object.entries(before.lambda).flatMap(([id, f]) => (isPipeline(id) && f.coldStarts - (beforeWarmup.lambda[id]?.coldStarts ?? 0) ? [[id, f.coldStarts - (beforeWarmup.lambda[id]?.coldStarts ?? 0)]] : [])),
    );
    const started = performance.now();
    const failedPayments = await pay(options.payments);
    const orderIds = [...confirmedAt.keys()];
    const delivered = await arrived(orderIds, 120_000);
    const seconds = (performance.now() - started) / 1000;
    // The deliverers record their attempts after the POST, and flush metrics just after: let the last ones land.
    await quiesce(cloud, 1000, 30_000);
    const after = snapshot(cloud);

    const receipts = [...receiver.firsts.values()].filter((r) => confirmedAt.has(r.orderId));
    const fromCreated = receipts.map((r) => r.receivedAt - r.createdAt);
    const fromConfirm = receipts.map((r) => r.receivedAt - confirmedAt.get(r.orderId)!);

    // Where the time goes: the delivery message's send time (local SQS records) and the attempt's start (the
    // deliverer's record, through GET /v1/events/{id}).
    const deliveriesQueue = Object.keys(cloud.stats().sqs ? ((cloud.stats().sqs as { queueUrls: Record<string, string> }).queueUrls ?? {}) : {}).find((id) => /Deliveries(?!Dlq)/.test(id) && !/Slow/.test(id));
    const sentAt = new Map<string, number>();
    for (const m of deliveriesQueue ? cloud.sqsSent(deliveriesQueue) : []) {
      const id = (JSON.parse(m.body) as { event_id?: string }).event_id;
      if (id && !sentAt.has(id)) sentAt.set(id, Date.parse(m.sentAt));
    }
    const stages = { created_to_enqueued: [] as number[], enqueued_to_attempt: [] as number[], attempt_to_received: [] as number[] };
    for (const r of receipts) {
      const res = await fetch(`${cloud.url}/v1/events/${r.eventId}`, { headers });
      const attempt = ((await res.json()) as { delivery_attempts?: { attempted_at: string }[] }).delivery_attempts?.[0];
      const enqueued = sentAt.get(r.eventId);
      if (enqueued !== undefined) stages.created_to_enqueued.push(enqueued - r.createdAt);
      if (!attempt) continue;
      const attemptAt = Date.parse(attempt.attempted_at);
      if (enqueued !== undefined) stages.enqueued_to_attempt.push(attemptAt - enqueued);
      stages.attempt_to_received.push(r.receivedAt - attemptAt);
    }

    return {
      payments: options.payments,
      concurrency: options.concurrency,
      succeeded_payments: orderIds.length,
      failed_payments: failedPayments,
      delivered,
      not_delivered_within_120s: orderIds.length - delivered,
      receiver: { ...receiver.counts },
      seconds: round(seconds),
      latency_from_event_created: summary(fromCreated),
      latency_from_confirm_response: summary(fromConfirm),
      goal: 'p99 < 2000 ms',
      stages: {
        created_to_enqueued: summary(stages.created_to_enqueued),
        // The attempt's `at` is when the deliverer took the message (before its reads, signing and the POST).
        enqueued_to_deliverer_start: summary(stages.enqueued_to_attempt),
        deliverer_start_to_received: summary(stages.attempt_to_received),
      },
      per_delivered_event: delivered ? costs(before, after, delivered) : null,
      warmup: { payments: Math.min(40, options.payments), kms_calls: warmupKms, lambda_cold_starts: warmupColdStarts },
    };
  } finally {
    await receiver.close();
  }
}
