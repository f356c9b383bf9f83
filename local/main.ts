/**
 * `npm start`: the whole platform offline, from the synthesized CDK template.
 *
 *   npm start [-- --in-memory] [--port 3000] [--quiet] [--no-schedules] [--no-event-sources] [--prewarm] [--access-log] [--faults]
 *             [--assembly <cloud assembly dir>] [--stage dev|prod|test] [--time-scale N] [--key-material <fingerprint>]
 *
 * Ctrl-C stops everything (DynamoDB Local's JVM included). Endpoints go to .payplane/local.json for
 * the operator CLI. Programmatic use: `startLocalCloud()` (re-exported here).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PROJECT_ROOT } from './assembly';
import { startLocalCloud, type LocalCloud } from './cloud';

export { startLocalCloud } from './cloud';

const LOCAL_FILE = join(PROJECT_ROOT, '.payplane', 'local.json');

function removeLocalFile(): void {
  try {
    if ((JSON.parse(readFileSync(LOCAL_FILE, 'utf8')) as { pid?: number }).pid === process.pid) rmSync(LOCAL_FILE, { force: true });
  } catch {
    // not there
  }
}
export type { LocalCloud, LocalCloudInfo, LocalCloudOptions, LocalCloudStats } from './cloud';

async function main(): Promise<void> {
  // The local cloud's own SDK clients (DynamoDB Local readiness, seeding): same notice, same noise.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      'in-memory': { type: 'boolean', default: false },
      port: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      'no-schedules': { type: 'boolean', default: false },
      'no-event-sources': { type: 'boolean', default: false },
      prewarm: { type: 'boolean', default: false },
      'access-log': { type: 'boolean', default: false },
      faults: { type: 'boolean', default: false },
      assembly: { type: 'string' },
      stage: { type: 'string', default: 'dev' },
      'time-scale': { type: 'string' },
      'key-material': { type: 'string' },
    },
  });
  const timeScale = values['time-scale'] === undefined ? undefined : Number(values['time-scale']);
  if (timeScale !== undefined && !(Number.isFinite(timeScale) && timeScale > 0)) {
    throw new Error(`--time-scale ${values['time-scale']} is not a positive number: use e.g. --time-scale 3600 (an hour of SQS delays per second).`);
  }

  const cloud = await startLocalCloud({
    port: values.port !== undefined ? Number(values.port) : undefined,
    inMemory: values['in-memory'],
    quiet: values.quiet,
    stage: values.stage,
    assemblyDir: values.assembly,
    schedules: !values['no-schedules'],
    eventSources: !values['no-event-sources'],
    prewarm: values.prewarm,
    accessLog: values['access-log'],
    faults: values.faults,
    timeScale,
    localFile: LOCAL_FILE,
    // A cloud started with a backup's key material is a restore target: empty, so no demo seed.
    ...(values['key-material'] ? { keyMaterialDir: join(PROJECT_ROOT, '.payplane', 'key-material', values['key-material']), seed: false } : {}),
  });
  printBanner(cloud, cloud.demo ? await demoCheckout(cloud) : undefined);

  // tsx relays the signal the terminal already sent to the whole process group: a repeat within
  // 2 s is that echo. A later one forces the exit (DynamoDB Local's guard still stops Java).
  let stoppingSince: number | undefined;
  const shutdown = (signal: string) => {
    if (stoppingSince !== undefined) {
      if (Date.now() - stoppingSince < 2000) return;
      process.stdout.write('\nForced exit.\n');
      removeLocalFile();
      process.exit(130);
    }
    stoppingSince = Date.now();
    process.stdout.write(`\n${signal}: stopping the local cloud…\n`);
    cloud.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGHUP', () => shutdown('SIGHUP'));
}

/** A payable demo order, created through the API like any merchant's, so the banner can link its checkout page. */
async function demoCheckout(cloud: LocalCloud): Promise<string | undefined> {
  try {
    const res = await fetch(`${cloud.apiUrl}/v1/orders`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${cloud.demo!.secretKey}`, 'Content-Type': 'application/json', 'Idempotency-Key': randomUUID() },
      body: JSON.stringify({ merchant_order_no: `demo-${Date.now()}`, amount: 1999, currency: 'USD', description: 'Demo order', expires_in: 86_400 }),
    });
    return ((await res.json()) as { checkout_url?: string }).checkout_url;
  } catch {
    return undefined;
  }
}

function printBanner(cloud: LocalCloud, checkoutUrl: string | undefined): void {
  const t = cloud.timings;
  const sinceProcessStart = performance.now();
  const lines = [
    '',
    `Payplane local cloud — stack ${cloud.stackName}, stage ${cloud.stage}`,
    `  ready in ${(t.totalMs / 1000).toFixed(2)} s (${(sinceProcessStart / 1000).toFixed(2)} s since process start; ` +
      `assembly ${t.synthesized ? `synthesized in ${(t.assemblyMs / 1000).toFixed(1)} s` : `reused in ${Math.round(t.assemblyMs)} ms`}, ` +
      `${Object.entries(t.servicesMs).map(([k, v]) => `${k} ${v} ms`).join(', ')})`,
    '',
    `  API         ${cloud.apiUrl}`,
    ...cloud.routes.map((r) => `                ${r.method.padEnd(7)} ${r.path}  → ${r.target}`),
    `  DynamoDB    ${cloud.endpoints.dynamodb}   tables: ${Object.values(cloud.tables.byLogicalId).join(', ')}`,
    `  KMS         ${cloud.endpoints.kms ?? '-'}`,
    ...(cloud.endpoints.sqs ? [`  SQS         ${cloud.endpoints.sqs}   queues: ${Object.values(cloud.queues).map((u) => u.split('/').pop()).join(', ')}`] : []),
    `  SES v2, SNS ${cloud.endpoints.sesv2 ?? '-'}, ${cloud.endpoints.sns ?? '-'}   receipts (email .eml, SMS .json) land in ${cloud.outbox}`,
    `  API Gateway ${cloud.endpoints.apigateway}   (control plane: FlushStageAuthorizersCache; /__stats, /__schedules, /__event-sources, /__sqs/sent)`,
    ...(cloud.timeScale !== 1 ? [`  Time scale  ${cloud.timeScale}× (SQS delays and visibility timeouts, rate() schedules, pollers' windows)`] : []),
    `  endpoints written to .payplane/local.json`,
    '',
  ];
  if (cloud.demo) {
    const body = JSON.stringify({ merchant_order_no: `demo-${Date.now()}`, amount: 1000, currency: 'USD', description: 'Demo order' });
    lines.push(
      `  Demo merchant ${cloud.demo.merchantId}, test key: ${cloud.demo.secretKey}`,
      '',
      '  Create an order:',
      `  curl -sS -X POST '${cloud.apiUrl}/v1/orders' -H 'Authorization: Bearer ${cloud.demo.secretKey}' -H 'Idempotency-Key: ${randomUUID()}' -H 'Content-Type: application/json' -d '${body}'`,
      '',
      ...(checkoutUrl ? ['  Pay a demo order in your browser (test card 4242 4242 4242 4242, any future expiry, any CVC):', `  ${checkoutUrl}`, ''] : []),
    );
  } else {
    lines.push('  No demo merchant (seeding unavailable).', '');
  }
  lines.push('  Ctrl-C to stop.', '');
  process.stdout.write(lines.join('\n'));
}

function isEntryPoint(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    process.stderr.write(`\nThe local cloud failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
