import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT } from '../../local/assembly';
import { startLocalCloud } from '../../local/cloud';
import { checkReport, formatReport, loadReasons, REPORT_FILE } from '../../local/iam-report';
import { ContractCheck } from './contract';

/**
 * End-to-end tier: the whole local cloud from the synthesized (bundled) template of the `test` stage, in memory, on a
 * random port, schedules off (tests fire them with POST {admin}/__schedules/{rule}/trigger). Event
 * source mappings (SQS queues, DynamoDB streams → Lambda) poll by themselves, as deployed: asynchronous
 * flows (e.g. the sandbox channel's delayed callbacks) complete on their own. Function output goes to
 * .payplane/logs/e2e-functions.log. Fault injection is on (`<admin>/__faults`). Tests read it with `inject('localCloud')`.
 * PAYPLANE_TIME_SCALE=N runs the cloud's timers (SQS delays and visibility timeouts, rate() schedules, pollers'
 * windows) N times faster (default 1); tests read it as `timeScale` and assert schedules from the delays the
 * local SQS recorded (`GET <admin>/__sqs/sent?queue=<logical id>`), never from arrival times.
 *
 * IAM is enforced from the template (local/iam.ts). When the whole tier ran, it ends with the IAM
 * check: no refusal, and every granted action used by some test or listed with a reason in
 * docs/iam-unused-grants.json; the report is written to .payplane/iam-report.json (`npm run iam-report`).
 */
export interface E2eCloud {
  /** API base URL, stage included: http://127.0.0.1:<port>/<stage> */
  url: string;
  /** The local cloud's time scale (env PAYPLANE_TIME_SCALE, default 1). */
  timeScale: number;
  region: string;
  stage: string;
  restApiId: string;
  /** admin: local routes (/__stats, /__schedules, /__event-sources/{mapping}/poll, /__faults, /__sqs/sent?queue=…). */
  endpoints: { api: string; dynamodb: string; kms?: string; sqs?: string; apigateway: string; admin: string; sesv2?: string; sns?: string; sfn?: string; s3?: string };
  /** The signed audit heads' bucket (local S3) and signing key. */
  auditHeads?: { bucket: string; keyArn: string };
  /** State machine ARNs by logical id (the settlement's: `SettlementStateMachine<hash>`). */
  stateMachines: Record<string, string>;
  /** Where the local SES and SNS write each email (.eml) and SMS (.json): a temporary directory of this run. */
  outbox: string;
  tables: { main?: string; idempotency?: string; byLogicalId: Record<string, string> };
  /** Queue URLs by logical id (what `Ref` gives the functions). */
  queues: Record<string, string>;
  kmsKeyArn?: string;
  /** Every route of the template, e.g. `{ method: 'POST', path: '/v1/orders/{id}/confirm' }` (tests that must cover them all). */
  routes: { method: string; path: string }[];
  /** The seeded demo merchant and its test key. */
  demo?: { merchantId: string; keyId: string; secretKey: string };
  /** What fixtures that do an operator's work (create merchants) sign with: docs/operator-policy.json applies. */
  operatorCredentials: { accessKeyId: string; secretAccessKey: string };
  /** A principal of the template without execute-api:Invoke (the GetOrder function's role): the operator API refuses it. */
  uninvitedCredentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    localCloud: E2eCloud;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Lambda runs Node 22; the SDK's Node 20 notice is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const contract = new ContractCheck();
  const cloud = await startLocalCloud({
    port: 0,
    // Every /v1 response of the tier is held to docs/openapi.json (test/e2e/contract.ts).
    onResponse: contract.record,
    inMemory: true,
    quiet: true,
    schedules: false,
    functionLogs: join(PROJECT_ROOT, '.payplane', 'logs', 'e2e-functions.log'),
    localFile: false,
    // dev with 5 s API timeouts: a crash-and-retry test waits out one dead run's claim (its lock is the
    // function's remaining time), so shorter timeouts make those tests fast (lib/stage-config.ts).
    stage: 'test',
    // The crash-and-retry tests kill functions mid-request (test/e2e/faults.ts).
    faults: true,
    // Not given: startLocalCloud reads PAYPLANE_TIME_SCALE (default 1).
  });
  console.log(
    `[e2e] local cloud ready in ${(cloud.timings.totalMs / 1000).toFixed(1)} s at ${cloud.url} ` +
      `(assembly ${cloud.timings.synthesized ? 'synthesized' : 'reused'}; function logs in .payplane/logs/e2e-functions.log)`,
  );
  // A principal of the template without execute-api:Invoke (the GetOrder function's role).
  const uninvited = Object.keys(cloud.iam.report().principals).find((name) => /^GetOrderFunction/.test(name))!;
  project.provide('localCloud', {
    url: cloud.url,
    timeScale: cloud.timeScale,
    region: cloud.region,
    stage: cloud.stage,
    restApiId: cloud.restApiId,
    endpoints: cloud.endpoints,
    stateMachines: cloud.stateMachines,
    tables: cloud.tables,
    queues: cloud.queues,
    outbox: cloud.outbox,
    kmsKeyArn: cloud.kmsKeyArn,
    auditHeads: cloud.auditHeads,
    routes: cloud.routes.map(({ method, path }) => ({ method, path })),
    demo: cloud.demo && { merchantId: cloud.demo.merchantId, keyId: cloud.demo.keyId, secretKey: cloud.demo.secretKey },
    operatorCredentials: cloud.operatorCredentials,
    uninvitedCredentials: cloud.iam.credentialsFor(uninvited),
  });
  return async () => {
    const report = cloud.iamReport();
    const overhead = cloud.iam.timing;
    await cloud.stop();
    console.log(`[e2e] contract: ${contract.checked} responses checked against docs/openapi.json, ${contract.failures.length} failed`);
    if (contract.failures.length) {
      process.exitCode = 1;
      throw new Error(`Responses that do not match docs/openapi.json (fix the response or openapi/responses.ts, then npm run openapi):\n  ${contract.failures.join('\n  ')}`);
    }
    mkdirSync(dirname(REPORT_FILE), { recursive: true });
    writeFileSync(REPORT_FILE, `${JSON.stringify({ ...report, overhead }, null, 2)}\n`);
    const ran = new Set(project.vitest.state.getFiles().map((f) => f.filepath));
    const tier = readdirSync(import.meta.dirname).filter((f) => f.endsWith('.test.ts')).map((f) => join(import.meta.dirname, f));
    if (!tier.every((f) => ran.has(f))) {
      console.log(`[e2e] IAM: part of the tier ran; the unused-grant check runs with the whole tier. Report: ${REPORT_FILE}`);
      return;
    }
    const reasons = loadReasons();
    const checked = checkReport(report, reasons);
    const { unlisted, stale } = checked;
    // The operator API test signs with the uninvited role on purpose, to see API Gateway refuse it: that refusal
    // is the test's assertion, not a missing grant. Any other refusal of that role still fails the tier.
    const refusals = checked.refusals.filter((r) => !r.startsWith(`${uninvited}: execute-api:Invoke `));
    console.log(
      `[e2e] IAM: ${overhead.calls} checked calls, ${overhead.evaluations} evaluations (${(overhead.evaluationMs / Math.max(1, overhead.evaluations)).toFixed(2)} ms each, the rest cached). Report: npm run iam-report`,
    );
    const problems = [
      ...refusals.map((r) => `refused: ${r}`),
      ...unlisted.map((u) => `granted but never used, and not in docs/iam-unused-grants.json: ${u}`),
      ...stale.map((r) => `docs/iam-unused-grants.json lists a grant that is no longer unused (remove it): ${r.principal} ${r.grant}`),
    ];
    if (problems.length) {
      // A teardown error alone does not fail vitest's run.
      process.exitCode = 1;
      throw new Error(`IAM check failed (${problems.length}):\n  ${problems.join('\n  ')}\n\n${formatReport(report, reasons)}`);
    }
  };
}
