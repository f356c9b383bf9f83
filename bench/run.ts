/**
 * `npm run bench`: order creation through the local cloud at concurrency 16, against raw DynamoDB
 * Local PutItem throughput as the floor, plus each function's bundle size and cold init time, and the
 * webhook pipeline: latency from a payment's success to its `order.succeeded` at a real local receiver,
 * and what each delivered event costs (bench/webhooks.ts); settlement of 100,000 entries through the state machine
 * (bench/settlement.ts: entries/s, state transitions, cost per merchant per day); the AWS bill per million payments
 * (bench/cost/run.ts, `cost`). BENCH_ONLY=settlement or BENCH_ONLY=cost runs that part alone, merged into latest.json;
 * BENCH_ONLY=bundles runs only the bundle sizes and cold inits, and prints the functions over their budget.
 * Figures are printed and written to bench/results/latest.json; no test asserts on them.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import autocannon from 'autocannon';
import { MAX_BURST_LIMIT, MAX_RATE_LIMIT, setMerchantLimits } from '../functions/merchants/usage';
import { PROJECT_ROOT } from '../local/assembly';
import { startLocalCloud } from '../local/cloud';
import { costBench, printBill } from './cost/run';
import { settlementBench } from './settlement';
import { webhooks } from './webhooks';

const CONCURRENCY = 16;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 400);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 4000);

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

async function createOrders(url: string, key: string, amount: number) {
  return autocannon({
    url,
    connections: CONCURRENCY,
    amount,
    requests: [
      {
        method: 'POST',
        path: new URL(`${url}/v1/orders`).pathname,
        setupRequest: (req: any) => ({
          ...req,
          headers: { ...req.headers, authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
          body: JSON.stringify({
            merchant_order_no: randomUUID(),
            amount: 1999,
            currency: 'USD',
            description: 'bench',
            payer: { email: 'bench@example.com' },
          }),
        }),
      },
    ],
  });
}

async function putItemFloor(endpoint: string, region: string, table: string, amount: number) {
  const db = new DynamoDBClient({ region, endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < amount) {
        const t = performance.now();
        await db.send(
          new PutItemCommand({
            TableName: table,
            Item: { pk: { S: `BENCH#${randomUUID()}` }, sk: { S: 'BENCH' }, amount: { N: '1999' }, currency: { S: 'USD' } },
          }),
        );
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { throughput: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

type Cloud = Awaited<ReturnType<typeof startLocalCloud>>;

/**
 * What the platform spent, from the local cloud's counters: KMS calls (the emulator counts them),
 * Lambda invocations, and the DynamoDB calls and capacity units every function reported through the
 * SDK's ReturnConsumedCapacity, published as EMF metrics (functions/commons/metrics.ts).
 */
function usage(cloud: Cloud) {
  const stats = cloud.stats();
  const functions = Object.values(stats.lambda);
  const metric = (name: string) => functions.reduce((sum, f) => sum + (f.metrics[`Payplane/${name}`] ?? 0), 0);
  return {
    kms: Object.values(stats.kms).reduce((a, b) => a + b, 0),
    invocations: functions.reduce((a, f) => a + f.invocations, 0),
    dynamodbCalls: metric('DynamoDBCalls'),
    readUnits: metric('DynamoDBReadUnits'),
    writeUnits: metric('DynamoDBWriteUnits'),
  };
}

/** Metrics are log lines, written just after the response; give the last ones time to arrive. */
async function settledUsage(cloud: Cloud) {
  await new Promise((resolve) => setTimeout(resolve, 500));
  return usage(cloud);
}

function perUnit(before: ReturnType<typeof usage>, after: ReturnType<typeof usage>, count: number) {
  const per = (k: keyof ReturnType<typeof usage>, digits = 2) => round((after[k] - before[k]) / count, digits);
  return {
    dynamodb_calls: per('dynamodbCalls'),
    dynamodb_read_units: per('readUnits'),
    dynamodb_write_units: per('writeUnits'),
    kms_calls: per('kms', 4),
    lambda_invocations: per('invocations'),
  };
}

/** Create + confirm with 4242…, 16 payers at a time; what each successful payment cost (see `usage`). */
async function payments(cloud: Cloud, key: string, amount: number) {
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const post = (path: string, body: unknown) =>
    fetch(`${cloud.url}${path}`, { method: 'POST', headers: { ...headers, 'idempotency-key': randomUUID() }, body: JSON.stringify(body) });
  const before = usage(cloud);
  const latencies: number[] = [];
  let next = 0;
  let ok = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < amount) {
        const t = performance.now();
        const order = (await (await post('/v1/orders', { merchant_order_no: randomUUID(), amount: 1999, currency: 'USD' })).json()) as { id: string };
        const paid = await post(`/v1/orders/${order.id}/confirm`, {
          payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' } },
        });
        if (paid.status === 200 && ((await paid.json()) as { status: string }).status === 'succeeded') ok++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const after = await settledUsage(cloud);
  latencies.sort((a, b) => a - b);
  return {
    payments: amount,
    succeeded: ok,
    throughput_per_s: round(ok / seconds),
    p50_ms: round(percentile(latencies, 50)),
    p99_ms: round(percentile(latencies, 99)),
    per_payment: perUnit(before, after, ok),
  };
}

/** Issue 12 §3: every bundle within 250 KB minified and a cold init within 150 ms (median of `COLD_STARTS`). */
const BUNDLE_BUDGET_KB = 250;
const INIT_BUDGET_MS = 150;
const COLD_STARTS = Number(process.env.BENCH_COLD_STARTS ?? 5);
/** The one exception: the function that serves the API reference page may embed a renderer (1 MB, init not counted). */
const REFERENCE_PAGE = /ApiDocs/;

function bundleSize(dir: string) {
  let bytes = 0;
  let gzipBytes = 0;
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.map')) continue;
    const path = join(dir, file);
    if (!statSync(path).isFile()) continue;
    const content = readFileSync(path);
    bytes += content.length;
    gzipBytes += gzipSync(content).length;
  }
  return { bytes, gzipBytes };
}

/**
 * Each function's bundle and the median of `COLD_STARTS` sequential cold starts (one function, one environment
 * at a time: starting every function at once on 2 cores measures contention, not init), each against its budget.
 */
async function bundles(cloud: Cloud) {
  const functions: Record<string, { bundle_kb: number; bundle_gzip_kb: number; cold_init_ms: number | null; cold_inits_ms: number[]; over_budget: string[] }> = {};
  for (const fn of cloud.runtime.functions.values()) {
    const id = fn.definition.logicalId;
    // The last environment stays, warm for the traffic that follows, as one prewarm left it before.
    for (let i = 0; i < COLD_STARTS; i++) {
      await fn.retireIdle();
      await fn.prewarm();
    }
    const inits = (cloud.stats().lambda[id]?.initDurationsMs ?? []).slice(-COLD_STARTS).sort((a, b) => a - b);
    const median = inits.length ? inits[Math.floor(inits.length / 2)]! : null;
    const size = bundleSize(fn.definition.taskRoot);
    const reference = REFERENCE_PAGE.test(fn.label);
    const bundleKb = round(size.bytes / 1024);
    const over = [
      ...(bundleKb > (reference ? 1024 : BUNDLE_BUDGET_KB) ? [`bundle ${bundleKb} KB > ${reference ? 1024 : BUNDLE_BUDGET_KB} KB`] : []),
      ...(!reference && median !== null && median > INIT_BUDGET_MS ? [`init ${round(median)} ms > ${INIT_BUDGET_MS} ms`] : []),
    ];
    functions[id] = { bundle_kb: bundleKb, bundle_gzip_kb: round(size.gzipBytes / 1024), cold_init_ms: median === null ? null : round(median), cold_inits_ms: inits.map((t) => round(t)), over_budget: over };
  }
  const over = Object.entries(functions).filter(([, f]) => f.over_budget.length);
  console.log(`${Object.keys(functions).length} functions; ${over.length} over budget (${BUNDLE_BUDGET_KB} KB, ${INIT_BUDGET_MS} ms median of ${COLD_STARTS} cold inits, load ${(await import('node:os')).loadavg()[0]!.toFixed(2)}):`);
  for (const [id, f] of over) console.log(`  ${id}: ${f.over_budget.join(', ')}`);
  return functions;
}

/** Writes `part` into the last full run's results (partial runs: BENCH_ONLY). */
function mergeResults(part: Record<string, unknown>) {
  const file = join(PROJECT_ROOT, 'bench', 'results', 'latest.json');
  const previous = (() => {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch {
      return {};
    }
  })();
  mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ ...previous, ...part }, null, 2)}\n`);
}

const costOptions = () => ({
  measured: Number(process.env.BENCH_COST_PAYMENTS ?? 20),
  recorded: Number(process.env.BENCH_COST_RECORDED ?? 10),
  settlementOrders: Number(process.env.BENCH_COST_SETTLEMENT_ORDERS ?? 500),
});

async function main() {
  // The DynamoDB proxy's recorder (idle until the cost bench starts it): the bill's requests.
  process.env.PAYPLANE_DYNAMODB_RECORDER = '1';
  // BENCH_ASSEMBLY runs an assembly as it is (e.g. another checkout's .payplane/cdk.out-test, to compare bundles).
  const assembly = process.env.BENCH_ASSEMBLY;
  const cloud = await startLocalCloud({
    port: 0,
    inMemory: true,
    quiet: true,
    schedules: false,
    functionLogs: 'silent',
    ...(assembly ? { assemblyDir: assembly, stage: process.env.BENCH_STAGE ?? 'test' } : {}),
  });
  try {
    const key = cloud.demo!.secretKey;
    // The bench measures the platform, not the demo merchant's rate limit: raise it as an operator would.
    const apiGateway = new APIGatewayClient({ endpoint: cloud.endpoints.apigateway, region: cloud.region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await setMerchantLimits({ apiGateway, restApiId: cloud.restApiId, stageName: cloud.stage }, cloud.demo!.merchantId, { rateLimit: MAX_RATE_LIMIT, burstLimit: MAX_BURST_LIMIT });
    console.log(`local cloud ready in ${(cloud.timings.totalMs / 1000).toFixed(1)} s (assembly ${cloud.timings.synthesized ? 'synthesized' : 'reused'})`);
    const settlementEntries = Number(process.env.BENCH_SETTLEMENT_ENTRIES ?? 100_000);
    if (process.env.BENCH_ONLY === 'settlement') {
      const settlement = await settlementBench(cloud, { entries: settlementEntries });
      mergeResults({ settlement: { date: new Date().toISOString(), ...settlement } });
      console.log(JSON.stringify(settlement, null, 2));
    } else if (process.env.BENCH_ONLY === 'cost') {
      const cost = { date: new Date().toISOString(), ...(await costBench(cloud, key, costOptions())) };
      mergeResults({ cost });
      console.log(JSON.stringify(cost, null, 2));
      printBill(cost);
      return;
    }
    if (process.env.BENCH_ONLY === 'bundles') {
      const functions = await bundles(cloud);
      mergeResults({ functions });
      console.table(Object.fromEntries(Object.entries(functions).map(([id, f]) => [cloud.runtime.get(id).label, { kb: f.bundle_kb, gzip_kb: f.bundle_gzip_kb, init_ms: f.cold_init_ms }])));
      return;
    }
    const functions = await bundles(cloud);

    await createOrders(cloud.url, key, WARMUP);
    const beforeOrders = await settledUsage(cloud);
    const api = await createOrders(cloud.url, key, REQUESTS);
    const ok = api['2xx'];
    const perOrder = perUnit(beforeOrders, await settledUsage(cloud), ok);
    await payments(cloud, key, 100);
    const payment = await payments(cloud, key, Number(process.env.BENCH_PAYMENTS ?? 1000));
    const webhook = await webhooks(cloud, key, { payments: Number(process.env.BENCH_WEBHOOK_PAYMENTS ?? 200), concurrency: Number(process.env.BENCH_WEBHOOK_CONCURRENCY ?? 8) });
    const settlement = await settlementBench(cloud, { entries: settlementEntries });
    const cost = await costBench(cloud, key, costOptions());
    const floor = await putItemFloor(cloud.endpoints.dynamodb, cloud.region, cloud.tables.main!, REQUESTS);
    const kms = cloud.stats().kms;

    const results = {
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      concurrency: CONCURRENCY,
      create_order: {
        requests: REQUESTS,
        ok,
        non2xx: api.non2xx,
        errors: api.errors,
        throughput_rps: round(api.requests.average),
        p50_ms: api.latency.p50,
        p99_ms: api.latency.p99,
        per_order: perOrder,
      },
      payment_create_and_confirm: payment,
      dynamodb_local_put_item: { throughput_ops: round(floor.throughput), p50_ms: round(floor.p50, 2), p99_ms: round(floor.p99, 2) },
      ratio_api_to_put_item: round(api.requests.average / floor.throughput, 3),
      kms_calls: kms,
      webhooks: webhook,
      settlement,
      cost,
      functions,
    };
    mkdirSync(join(PROJECT_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify(results, null, 2));
    printBill(cost);
  } finally {
    await cloud.stop();
  }
}

await main();
