/**
 * The AWS bill per million successful card payments (issue 12 §1): each payment is create + confirm with 4242… and
 * one `order.succeeded` delivered to a real receiver, run one at a time through the local cloud (concurrency 1:
 * durations on a shared 2-core machine under contention are not AWS's). Two passes:
 * - measured: Lambda billed durations, bytes logged, API Gateway requests, SQS and KMS calls, per function;
 * - recorded: every DynamoDB request through the proxy's recorder (local/dynamodb-recorder.ts), billed by AWS's
 *   rules (bench/cost/dynamodb.ts); the recorder's extra reads would otherwise inflate the durations.
 * Then the settlement's share: one Step Functions run over the same number of orders, recorded the same way.
 * Prices: bench/cost/prices.ts, the one table.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAssembly, localAssemblyDir, PROJECT_ROOT } from '../../local/assembly';
import type { LocalCloud } from '../../local/cloud';
import type { RecordedCall } from '../../local/dynamodb-recorder';
import type { FunctionStats } from '../../local/lambda';
import type { SqsStats } from '../../local/sqs';
import { settlementBench } from '../settlement';
import { startReceiver } from '../webhooks';
import { indexWrites, itemSize, readUnits, writeUnits, type Item, type RecordedWrite, type TableSchema } from './dynamodb';
import { PRICES } from './prices';

const MILLION = 1_000_000;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The product's promises (issue 12 §2) and the item types that keep them; any other item type is above the floor. */
const PROMISES: [RegExp, string][] = [
  [/^idempotency$/, 'idempotency claim and completion'],
  [/^ORDER\/ORDER$/, 'order'],
  [/^PAYMENT\/PAYMENT$/, "order's payment attempt"],
  [/ORDERNO/, 'order number claim'],
  [/^EVENT/, 'outbox event'],
  [/^TRANSFER/, 'ledger transfer'],
  [/ACCOUNT/, 'ledger balance'],
  [/DELIVERY|ATTEMPT/, 'delivery attempt'],
  [/SETTLEMENT|STL|ENTRY/, "settlement's share"],
];

/** An item's type from its keys: the upper-case words of pk and sk (`MERCHANT#mch_…#ORDERNO#…` → `MERCHANT#ORDERNO`). */
export function itemType(table: string, idempotencyTable: string | undefined, item: Item | undefined): string {
  if (table === idempotencyTable) return 'idempotency';
  const words = (s: string | undefined) => (s ?? '').split('#').filter((w) => /^[A-Z][A-Z_]*$/.test(w) && !/^[A-Z]{3}$/.test(w)).join('#');
  return `${words(item?.pk?.S)}/${words(item?.sk?.S)}`;
}

type Snapshot = { lambda: Record<string, FunctionStats>; api: number; sqs: Record<string, Record<string, number>>; kms: Record<string, Record<string, number>> };
const snapshot = (cloud: LocalCloud): Snapshot => {
  const s = cloud.stats();
  return { lambda: s.lambda, api: s.api.requests, sqs: (s.sqs as SqsStats | undefined)?.callsByCaller ?? {}, kms: s.kmsByCaller };
};

/** Waits until no function has been invoked for `quietMs`: the payment's asynchronous work (stream, queues) is done. */
async function quiet(cloud: LocalCloud, quietMs = 400) {
  const total = () => Object.values(cloud.stats().lambda).reduce((a, f) => a + f.invocations, 0);
  let last = total();
  for (let i = 0; i < 50; i++) {
    await sleep(quietMs);
    const now = total();
    if (now === last) return;
    last = now;
  }
}

export async function costBench(cloud: LocalCloud, key: string, options: { measured?: number; recorded?: number; settlementOrders?: number; paymentsPerMonth?: number } = {}) {
  const measured = options.measured ?? 20;
  const recorded = options.recorded ?? 10;
  const settlementOrders = options.settlementOrders ?? 500;
  const paymentsPerMonth = options.paymentsPerMonth ?? MILLION;
  const recorder = cloud.dynamodbRecorder;
  if (!recorder) throw new Error('The cost bench needs the DynamoDB recorder: start the local cloud with PAYPLANE_DYNAMODB_RECORDER=1 (bench/run.ts sets it).');
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${cloud.url}${path}`, { method: 'POST', headers: { ...headers, 'idempotency-key': randomUUID() }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
  const endpoints = `${cloud.url}/v1/webhook_endpoints`;
  // One delivery per payment: this receiver is the merchant's only endpoint (an earlier bench's one is removed).
  const listed = (await (await fetch(`${endpoints}?limit=100`, { headers })).json()) as { data?: { id: string }[] };
  for (const e of listed.data ?? []) await fetch(`${endpoints}/${e.id}`, { method: 'DELETE', headers: { authorization: headers.authorization } });
  const receiver = await startReceiver();
  let endpointId: string | undefined;
  try {
    const endpoint = await post('/v1/webhook_endpoints', { url: receiver.url, enabled_events: ['order.succeeded'], description: 'cost bench' });
    if (endpoint.status !== 201) throw new Error(`POST /v1/webhook_endpoints answered ${endpoint.status}: ${JSON.stringify(endpoint.body)}`);
    endpointId = endpoint.body.id as string;
    receiver.setSecret(endpoint.body.secret as string);

    /** One payment, then its delivery, then quiet: nothing of it overlaps the next one. */
    const pay = async () => {
      const order = await post('/v1/orders', { merchant_order_no: randomUUID(), amount: 1999, currency: 'USD' });
      const paid = await post(`/v1/orders/${order.body.id}/confirm`, {
        payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' } },
      });
      if (paid.status !== 200 || paid.body.status !== 'succeeded') throw new Error(`The cost bench's payment answered ${paid.status}: ${JSON.stringify(paid.body)}`);
      for (let i = 0; i < 100 && ![...receiver.firsts.values()].some((r) => r.orderId === order.body.id); i++) await sleep(50);
      if (![...receiver.firsts.values()].some((r) => r.orderId === order.body.id)) throw new Error(`order.succeeded of ${order.body.id} never reached the receiver.`);
      await quiet(cloud);
    };

    for (let i = 0; i < 3; i++) await pay(); // cold starts and the caches' first fills are not a payment's cost
    const since = Date.now();
    const before = snapshot(cloud);
    for (let i = 0; i < measured; i++) await pay();
    const after = snapshot(cloud);
    const sent = Object.keys(cloud.queues).flatMap((q) => cloud.sqsSent(q, { since }));

    // One group per payment: the floor counts each promised item once per payment (ledger accounts are shared by all).
    const calls: RecordedCall[][] = [];
    for (let i = 0; i < recorded; i++) {
      recorder.start();
      await pay();
      calls.push(recorder.stop());
    }
    // The recorded requests themselves, for a look (and issue 12 §5's replay): bench/results is not committed.
    mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'dynamodb-requests.json'), JSON.stringify(calls.flat(), (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: v.length } : v)));

    // Settlement: one run over as many orders as a merchant's day of `settlementOrders` payments.
    const settlementBefore = snapshot(cloud);
    let settlementCalls: RecordedCall[][] = [];
    const settlement = await settlementBench(cloud, { entries: settlementOrders * 2, around: { start: () => recorder.start(), stop: () => (settlementCalls = [recorder.stop()]) } });
    const settlementAfter = snapshot(cloud);

    return await bill(cloud, {
      measured,
      recorded,
      settlementOrders,
      paymentsPerMonth,
      before,
      after,
      sentBytes: sent.map((r) => Buffer.byteLength(r.body)),
      calls,
      settlement: { transitions: settlement.state_transitions_per_merchant_run, before: settlementBefore, after: settlementAfter, calls: settlementCalls },
    });
  } finally {
    if (endpointId) await fetch(`${endpoints}/${endpointId}`, { method: 'DELETE', headers: { authorization: headers.authorization } });
    await receiver.close();
  }
}

interface Window {
  measured: number;
  recorded: number;
  settlementOrders: number;
  paymentsPerMonth: number;
  before: Snapshot;
  after: Snapshot;
  sentBytes: number[];
  /** Per payment (the settlement: one group, its run). */
  calls: RecordedCall[][];
  settlement: { transitions: number; before: Snapshot; after: Snapshot; calls: RecordedCall[][] };
}

/** Platform lines Lambda writes per invocation (text log format, active tracing): START, END, REPORT with its XRAY line. */
const PLATFORM_LOG_BYTES = Buffer.byteLength(
  [
    `START RequestId: ${randomUUID()} Version: $LATEST`,
    `END RequestId: ${randomUUID()}`,
    `REPORT RequestId: ${randomUUID()}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\tMax Memory Used: 96 MB\t`,
    `XRAY TraceId: 1-6756b1c2-0123456789abcdef01234567\tSegmentId: 0123456789abcdef\tSampled: true\t`,
    '',
  ].join('\n'),
);

/** One access log line of the stage's format (lib/constructs/payplane-api.ts) with typical values. */
const ACCESS_LOG_BYTES =
  Buffer.byteLength(
    JSON.stringify({
      requestId: randomUUID(),
      extendedRequestId: 'CdE1fGhIjKLmNoP=',
      requestTime: '02/Dec/2026:14:41:19 +0000',
      ip: '203.0.113.10',
      userAgent: 'payplane-node/1.0 (Node.js 22)',
      httpMethod: 'POST',
      resourcePath: '/v1/orders/{id}/confirm',
      path: '/dev/v1/orders/ord_0123456789abcdefghij/confirm',
      status: '200',
      responseLength: '1834',
      responseLatency: '123',
      integrationLatency: '118',
      merchantId: 'mch_0123456789abcdefghij',
      keyId: 'key_0123456789abcdefghij',
      authorizerError: '-',
      errorType: '-',
      errorMessage: '-',
      xrayTraceId: 'Root=1-6756b1c2-0123456789abcdef01234567',
    }),
  ) + 1;

function delta<T extends Record<string, Record<string, number>>>(after: T, before: T) {
  const out: Record<string, Record<string, number>> = {};
  for (const [caller, ops] of Object.entries(after)) {
    for (const [op, n] of Object.entries(ops)) {
      const d = n - (before[caller]?.[op] ?? 0);
      if (d) (out[caller] ??= {})[op] = d;
    }
  }
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function bill(cloud: LocalCloud, w: Window) {
  const recorder = cloud.dynamodbRecorder!;
  const idempotencyTable = cloud.tables.idempotency;
  const schemas: Record<string, TableSchema> = {};
  for (const name of Object.values(cloud.tables.byLogicalId)) schemas[name] = await recorder.describe(name);
  const { template } = loadAssembly(localAssemblyDir(PROJECT_ROOT));
  const architecture = (logicalId: string) => ((template.Resources[logicalId]?.Properties?.Architectures as string[] | undefined) ?? ['x86_64'])[0]!;

  // --- DynamoDB, by AWS's rules, from the recorded requests.
  const dynamo = (groups: RecordedCall[][], per: number) => {
    let write = 0;
    let read = 0;
    let localWrite = 0;
    let localRead = 0;
    let localIndexWrite = 0;
    let sandboxWrite = 0;
    let sandboxRead = 0;
    let floor = 0;
    const byType: Record<string, { writes: number; units: number; index_units: number; floor_units: number; max_item_bytes: number; promise: string | null }> = {};
    const byIndex: Record<string, number> = {};
    const leverTable: Record<string, WhatIf> = {};
    const failed: Record<string, number> = {};
    let distinct: Record<string, { type: string; promise: string; writes: number; transactional: boolean; indexes: Set<string> }> = {};
    const floorByPromise: Record<string, number> = {};
    const closeGroup = () => {
      // The floor: every promised item written once per payment at ≤ 1 KB (2 units if it is ever written in a
      // transaction; the idempotency key twice, its claim and its completion), plus 1 per index it enters.
      for (const d of Object.values(distinct)) {
        const units = (d.promise.startsWith('idempotency') ? Math.min(2, d.writes) : 1) * (d.transactional ? 2 : 1) + d.indexes.size;
        floorByPromise[d.promise] = (floorByPromise[d.promise] ?? 0) + units;
      }
      distinct = {};
    };
    const calls = groups.flatMap((group, i) => group.map((call) => ({ call, payment: i })));
    let group = 0;
    for (const { call, payment } of calls) {
      if (payment !== group) {
        closeGroup();
        group = payment;
      }
      // DynamoDB Local answers CapacityUnits (and per table / index with INDEXES) for either kind.
      const isWrite = call.writes.length > 0;
      for (const c of call.consumed) {
        if (isWrite) {
          localWrite += Number(c.CapacityUnits ?? c.WriteCapacityUnits ?? 0);
          localIndexWrite += sum(Object.values((c.GlobalSecondaryIndexes ?? {}) as Record<string, { CapacityUnits?: number }>).map((i) => Number(i.CapacityUnits ?? 0)));
        } else localRead += Number(c.CapacityUnits ?? c.ReadCapacityUnits ?? 0);
      }
      // The sandbox channel's own items (its simulated bank) would be the payment provider's, not ours, in a deployment.
      if (call.writes.length && call.writes.every((a) => itemType(a.table, idempotencyTable, a.after ?? a.before).startsWith('SANDBOX'))) {
        sandboxWrite += writeUnits({ transactional: call.transactional, succeeded: !call.error, actions: call.writes }, schemas).total;
        continue;
      }
      if (call.reads.length && call.reads.every((r) => r.items.every((i) => itemType(r.table, idempotencyTable, i).startsWith('SANDBOX')) && r.items.length)) {
        for (const r of call.reads) sandboxRead += readUnits({ transactional: call.transactional, consistent: r.consistent, perItem: r.perItem, sizes: r.items.map(itemSize) });
        continue;
      }
      if (call.error) failed[`${call.operation}: ${call.error}`] = (failed[`${call.operation}: ${call.error}`] ?? 0) + 1;
      if (call.writes.length) {
        const request: RecordedWrite = { transactional: call.transactional, succeeded: !call.error, actions: call.writes };
        write += writeUnits(request, schemas).total;
        for (const action of call.writes) {
          const one = writeUnits({ ...request, actions: [action] }, schemas);
          for (const [index, units] of Object.entries(one.byIndex)) byIndex[index] = (byIndex[index] ?? 0) + units;
          const type = itemType(action.table, idempotencyTable, action.after ?? action.before);
          const promise = PROMISES.find(([re]) => re.test(type))?.[1] ?? null;
          const t = (byType[type] ??= { writes: 0, units: 0, index_units: 0, floor_units: 0, max_item_bytes: 0, promise });
          t.writes++;
          t.units += one.total;
          t.index_units += one.indexes;
          t.max_item_bytes = Math.max(t.max_item_bytes, itemSize(action.before), itemSize(action.after));
          if (promise && !call.error && action.kind !== 'ConditionCheck') {
            const item = action.after ?? action.before;
            const keyOf = JSON.stringify([action.table, ...schemas[action.table]!.keys.map((k) => item?.[k])]);
            const d = (distinct[keyOf] ??= { type, promise, writes: 0, transactional: false, indexes: new Set<string>() });
            d.writes++;
            d.transactional ||= call.transactional;
            // An index entry it enters (or moves to a new key): 1 write; one it already had costs nothing with a keys-only projection.
            for (const x of indexWrites(action, schemas[action.table]!)) if (x.change === 'put' || x.change === 'key') d.indexes.add(x.index);
          }
          if (!call.error) {
            // What-ifs for the levers: the same write with the item ≤ 1 KB, and its index work with keys-only projections.
            const factor = call.transactional ? 2 : 1;
            const index = indexWrites(action, schemas[action.table]!);
            const lever = (leverTable[type] ??= { writes: 0, table: 0, table_at_1kb: 0, index: 0, index_keys_only: 0 });
            lever.writes++;
            lever.table += one.table;
            lever.table_at_1kb += factor;
            lever.index += one.indexes;
            lever.index_keys_only += sum(index.filter((x) => x.change !== 'update').map((x) => x.writes));
          }
          // The floor: each promised write at ≤ 1 KB (2 in a transaction), plus 1 per index entry put or deleted
          // (an index that projects only its keys costs nothing when other attributes change).
          if (promise && !call.error && action.kind !== 'ConditionCheck') {
            const units = (call.transactional ? 2 : 1) + sum(indexWrites(action, schemas[action.table]!).filter((x) => x.change !== 'update').map((x) => x.writes));
            t.floor_units += units;
            floor += units;
          }
        }
      }
      for (const r of call.reads) read += readUnits({ transactional: call.transactional, consistent: r.consistent, perItem: r.perItem, sizes: r.items.map(itemSize) });
    }
    closeGroup();
    const perPayment = (n: number) => round(n / per, 2);
    return {
      write_units: perPayment(write),
      read_units: perPayment(read),
      floor_write_units: perPayment(sum(Object.values(floorByPromise))),
      floor_by_promise: Object.fromEntries(Object.entries(floorByPromise).map(([k, v]) => [k, perPayment(v)])),
      // The same promised writes as today (how many times each item is written kept), each at ≤ 1 KB.
      floor_at_todays_write_count: perPayment(floor),
      // Everything the proxy saw, the sandbox's own requests included.
      dynamodb_local_consumed: { write_units: perPayment(localWrite), index_write_units: perPayment(localIndexWrite), read_units: perPayment(localRead) },
      sandbox_channel_excluded: { write_units: perPayment(sandboxWrite), read_units: perPayment(sandboxRead) },
      requests: perPayment(calls.length),
      failed_requests: Object.fromEntries(Object.entries(failed).map(([k, v]) => [k, perPayment(v)])),
      by_item_type: Object.fromEntries(
        Object.entries(byType)
          .sort((a, b) => b[1].units - a[1].units)
          .map(([k, t]) => [k, { promise: t.promise, writes: perPayment(t.writes), write_units: perPayment(t.units), index_write_units: perPayment(t.index_units), floor_write_units: perPayment(t.floor_units), max_item_bytes: t.max_item_bytes }]),
      ),
      index_write_units: Object.fromEntries(Object.entries(byIndex).map(([k, v]) => [k, perPayment(v)])),
      what_if: Object.fromEntries(Object.entries(leverTable).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([f, n]) => [f, perPayment(n)])) as unknown as WhatIf])),
    };
  };
  const payments = dynamo(w.calls, w.recorded);
  const settlement = dynamo(w.settlement.calls, w.settlementOrders);

  // --- Lambda, API Gateway, logs, SQS, KMS: measured per payment.
  const lambda = (after: Snapshot, before: Snapshot, per: number) => {
    const out: Record<string, { invocations: number; billed_ms: number; memory_mb: number; gb_seconds: number; log_bytes: number; architecture: string }> = {};
    for (const [id, f] of Object.entries(after.lambda)) {
      const b = before.lambda[id];
      const invocations = f.invocations - (b?.invocations ?? 0);
      if (!invocations) continue;
      const billedMs = f.billedDurationMs - (b?.billedDurationMs ?? 0);
      const memory = cloud.runtime.get(id).definition.memoryMb;
      out[id.replace(/[0-9A-F]{8}$/, '')] = {
        invocations: round(invocations / per, 3),
        billed_ms: round(billedMs / invocations, 1),
        memory_mb: memory,
        gb_seconds: round(((billedMs / 1000) * (memory / 1024)) / per, 5),
        log_bytes: Math.round((f.logBytes - (b?.logBytes ?? 0) + invocations * PLATFORM_LOG_BYTES) / per),
        architecture: architecture(id),
      };
    }
    return out;
  };
  const functions = lambda(w.after, w.before, w.measured);
  const settlementFunctions = lambda(w.settlement.after, w.settlement.before, w.settlementOrders);
  const apiRequests = (w.after.api - w.before.api) / w.measured;
  const sqs = delta(w.after.sqs, w.before.sqs);
  const kms = delta(w.after.kms, w.before.kms);
  // Empty receives (counted in ReceiveMessage and again as ReceiveMessage:empty) are the idle pollers' fixed cost, not a payment's.
  const sqsRequests = sum(Object.values(sqs).flatMap((ops) => Object.entries(ops).map(([op, n]) => (op.endsWith(':empty') ? -n : n))));
  const sqsExtraChunks = sum(w.sentBytes.map((b) => Math.max(0, Math.ceil(b / PRICES.sqsChunkBytes) - 1)));
  const kmsCalls = Object.values(kms).flatMap((ops) => Object.entries(ops));
  const kmsAsymmetric = sum(kmsCalls.filter(([op]) => op === 'Sign' || op === 'Verify').map(([, n]) => n)) / w.measured;
  const kmsSymmetric = sum(kmsCalls.filter(([op]) => op !== 'Sign' && op !== 'Verify').map(([, n]) => n)) / w.measured;

  // X-Ray's default rule (no sampling rule in the template): the first request each second, then 5%.
  const invocationsPerPayment = sum(Object.values(functions).map((f) => f.invocations));
  const asyncInvocations = Math.max(0, invocationsPerPayment - apiRequests - (functions.Authorizer?.invocations ?? 0));
  const tracesPerPayment = apiRequests + asyncInvocations;
  const sampled = (perMonth: number) => {
    const perSecond = (tracesPerPayment * perMonth) / (30 * 86_400);
    return perSecond <= 1 ? 1 : (1 + 0.05 * (perSecond - 1)) / perSecond;
  };

  const gbSeconds = (fs: typeof functions) => sum(Object.values(fs).map((f) => f.gb_seconds * (PRICES.lambda.gbSecond[f.architecture] ?? PRICES.lambda.gbSecond.x86_64!)));
  const lambdaUsd = (fs: typeof functions) => sum(Object.values(fs).map((f) => f.invocations)) * PRICES.lambda.request + gbSeconds(fs);
  const logBytes = (fs: typeof functions) => sum(Object.values(fs).map((f) => f.log_bytes));
  const perMonthBill = (perMonth: number) => {
    const usd = {
      dynamodb: payments.write_units * PRICES.dynamodb.writeRequestUnit + payments.read_units * PRICES.dynamodb.readRequestUnit,
      lambda: lambdaUsd(functions),
      api_gateway: apiRequests * PRICES.apiGatewayRestRequest,
      waf: apiRequests * PRICES.wafRequest,
      cloudwatch_logs: ((logBytes(functions) + apiRequests * ACCESS_LOG_BYTES) / 2 ** 30) * PRICES.cloudWatchLogsIngestionGb,
      sqs: ((sqsRequests + sqsExtraChunks) / w.measured) * PRICES.sqsRequest,
      kms: kmsSymmetric * PRICES.kms.symmetricRequest + kmsAsymmetric * PRICES.kms.asymmetricRequest,
      xray: tracesPerPayment * sampled(perMonth) * PRICES.xrayTraceRecorded,
      step_functions_settlement:
        (w.settlement.transitions / w.settlementOrders) * PRICES.stepFunctionsTransition +
        lambdaUsd(settlementFunctions) +
        (logBytes(settlementFunctions) / 2 ** 30) * PRICES.cloudWatchLogsIngestionGb +
        settlement.write_units * PRICES.dynamodb.writeRequestUnit +
        settlement.read_units * PRICES.dynamodb.readRequestUnit,
    };
    return Object.fromEntries(Object.entries(usd).map(([k, v]) => [k, round(v * MILLION, 2)]));
  };
  const byService = perMonthBill(w.paymentsPerMonth);
  const total = round(sum(Object.values(byService)), 2);
  const floorWrite = round(payments.floor_write_units + settlement.floor_write_units, 2);
  return {
    region: PRICES.region,
    prices_date: PRICES.date,
    payments: { measured: w.measured, recorded: w.recorded, settlement_orders: w.settlementOrders, at_payments_per_month: w.paymentsPerMonth },
    usd_per_million_payments: total,
    by_service: byService,
    dynamodb_write_units_per_payment: round(payments.write_units + settlement.write_units, 2),
    dynamodb_read_units_per_payment: round(payments.read_units + settlement.read_units, 2),
    floor: {
      dynamodb_write_units_per_payment: floorWrite,
      at_todays_write_count: round(payments.floor_at_todays_write_count + settlement.floor_at_todays_write_count, 2),
      by_promise: payments.floor_by_promise,
      dynamodb_usd_per_million_payments: round(floorWrite * PRICES.dynamodb.writeRequestUnit * MILLION + (payments.read_units + settlement.read_units) * PRICES.dynamodb.readRequestUnit * MILLION, 2),
    },
    dynamodb: { payment: payments, settlement_share: settlement },
    lambda: functions,
    settlement_lambda: settlementFunctions,
    api_gateway_requests_per_payment: round(apiRequests, 3),
    sqs_requests_per_payment: round((sqsRequests + sqsExtraChunks) / w.measured, 3),
    sqs_calls: sqs,
    kms_calls_per_payment: { symmetric: round(kmsSymmetric, 4), asymmetric: round(kmsAsymmetric, 4), by_caller: kms },
    xray: { traces_per_payment: round(tracesPerPayment, 2), sampled_fraction: round(sampled(w.paymentsPerMonth), 3) },
    settlement_transitions_per_payment: round(w.settlement.transitions / w.settlementOrders, 4),
    by_payments_per_month: Object.fromEntries(
      [100_000, MILLION, 10 * MILLION, 100 * MILLION].map((n) => {
        const b = perMonthBill(n);
        return [n, { usd_per_million_payments: round(sum(Object.values(b)), 2), usd_per_month: round((sum(Object.values(b)) * n) / MILLION, 2), xray: b.xray }];
      }),
    ),
    levers: levers(payments.what_if, functions, apiRequests),
    // The merchant's choice, not the platform's: one email and one SMS per payment if receipts are on.
    receipts_optional_usd_per_million: { ses_email: round(PRICES.sesEmail * MILLION, 2), sns_sms_us: round(PRICES.snsSmsUs * MILLION, 2) },
  };
}

/**
 * Each lever's saving per million payments, from the model applied to the recorded writes (issue 12 §2). Estimates:
 * they keep today's write pattern and change one thing.
 */
interface WhatIf {
  writes: number;
  table: number;
  table_at_1kb: number;
  index: number;
  index_keys_only: number;
}

function levers(whatIf: Record<string, WhatIf>, functions: Record<string, { invocations: number; gb_seconds: number; log_bytes: number; architecture: string }>, apiRequests: number) {
  const wru = PRICES.dynamodb.writeRequestUnit * MILLION;
  const of = (re: RegExp) => Object.entries(whatIf).filter(([type]) => re.test(type)).map(([, v]) => v);
  const shrink = (re: RegExp) => sum(of(re).map((v) => v.table - v.table_at_1kb));
  const units = {
    // The sealed payer and card data in write-once items: the hot order item ≤ 1 KB; the write-once item is 2 more units at create.
    order_item_under_1kb: shrink(/^(ORDER|PAYMENT)\//) - 2,
    keys_only_projections: sum(Object.values(whatIf).map((v) => v.index - v.index_keys_only)),
    lean_idempotency: shrink(/^idempotency$/),
    small_events: shrink(/^EVENTS?\//),
    // One ledger transfer item fewer per payment: what one transfer write costs today (its units in the transaction, its gsi1 put).
    one_ledger_transfer_fewer: sum(of(/^TRANSFER\//).map((v) => v.table + v.index)) / Math.max(1, sum(of(/^TRANSFER\//).map((v) => v.writes))),
  };
  const create = Object.entries(functions).find(([id]) => id.startsWith('CreateOrder'))?.[1];
  const createUsd = create ? create.invocations * PRICES.lambda.request + create.gb_seconds * (PRICES.lambda.gbSecond[create.architecture] ?? 0) + (create.log_bytes / 2 ** 30) * PRICES.cloudWatchLogsIngestionGb : 0;
  const idempotencyPerRequest = sum(of(/^idempotency$/).map((v) => v.table + v.index)) / Math.max(1, apiRequests);
  return {
    ...Object.fromEntries(Object.entries(units).map(([k, u]) => [k, { write_units: round(u, 2), usd: round(u * wru, 2) }])),
    // POST /v1/orders with confirm: true: one API request, WAF request and CreateOrder invocation fewer, and one idempotency key's writes.
    one_request_payment: {
      write_units: round(idempotencyPerRequest, 2),
      usd: round((PRICES.apiGatewayRestRequest + PRICES.wafRequest + createUsd) * MILLION + idempotencyPerRequest * wru, 2),
    },
  };
}

/** The itemized table printed by `npm run bench`. */
export function printBill(cost: Awaited<ReturnType<typeof costBench>>): void {
  const line = (label: string, value: string) => console.log(`  ${label.padEnd(34)} ${value}`);
  console.log(`\nAWS bill per million payments (${cost.region}, list prices of ${cost.prices_date}, at ${cost.payments.at_payments_per_month.toLocaleString('en-US')} payments/month)`);
  for (const [service, usd] of Object.entries(cost.by_service).sort((a, b) => b[1] - a[1])) line(service, `$${usd.toFixed(2)}`);
  line('total', `$${cost.usd_per_million_payments.toFixed(2)}`);
  line('DynamoDB write units / payment', `${cost.dynamodb_write_units_per_payment} (floor ${cost.floor.dynamodb_write_units_per_payment}; ${cost.floor.at_todays_write_count} at today's write count)`);
  line('floor', `$${cost.floor.dynamodb_usd_per_million_payments.toFixed(2)} of DynamoDB per million payments`);
  line('DynamoDB read units / payment', `${cost.dynamodb_read_units_per_payment}`);
  line('DynamoDB Local ConsumedCapacity', `${cost.dynamodb.payment.dynamodb_local_consumed.write_units} WCU, ${cost.dynamodb.payment.dynamodb_local_consumed.read_units} RCU (payment)`);
  for (const [lever, v] of Object.entries(cost.levers)) line(`lever: ${lever}`, `−${v.write_units} WU, −$${v.usd.toFixed(2)}`);
  line('payer receipts (optional)', `SES $${cost.receipts_optional_usd_per_million.ses_email} per million emails; SNS SMS (US) $${cost.receipts_optional_usd_per_million.sns_sms_us} per million`);
}
