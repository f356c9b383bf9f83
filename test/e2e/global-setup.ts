import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT } from '../../local/assembly';
import { startLocalCloud } from '../../local/cloud';

/**
 * End-to-end tier: the whole local cloud from the synthesized (bundled) template of the `test` stage, in memory, on a
 * random port, schedules off (tests fire them with POST {admin}/__schedules/{rule}/trigger). Event
 * source mappings (SQS queues, DynamoDB streams → Lambda) poll by themselves, as deployed: asynchronous
 * flows (e.g. the sandbox channel's delayed callbacks) complete on their own. Function output goes to
 * .payplane/logs/e2e-functions.log. Fault injection is on (`<admin>/__faults`). Tests read it with `inject('localCloud')`.
 */
export interface E2eCloud {
  /** API base URL, stage included: http://127.0.0.1:<port>/<stage> */
  url: string;
  region: string;
  stage: string;
  restApiId: string;
  /** admin: local routes (/__stats, /__schedules, /__event-sources/{mapping}/poll). */
  endpoints: { api: string; dynamodb: string; kms?: string; sqs?: string; apigateway: string; admin: string };
  tables: { main?: string; idempotency?: string; byLogicalId: Record<string, string> };
  /** Queue URLs by logical id (what `Ref` gives the functions). */
  queues: Record<string, string>;
  kmsKeyArn?: string;
  /** The seeded demo merchant and its test key. */
  demo?: { merchantId: string; keyId: string; secretKey: string };
}

declare module 'vitest' {
  export interface ProvidedContext {
    localCloud: E2eCloud;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Lambda runs Node 22; the SDK's Node 20 notice is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const cloud = await startLocalCloud({
    port: 0,
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
  });
  console.log(
    `[e2e] local cloud ready in ${(cloud.timings.totalMs / 1000).toFixed(1)} s at ${cloud.url} ` +
      `(assembly ${cloud.timings.synthesized ? 'synthesized' : 'reused'}; function logs in .payplane/logs/e2e-functions.log)`,
  );
  project.provide('localCloud', {
    url: cloud.url,
    region: cloud.region,
    stage: cloud.stage,
    restApiId: cloud.restApiId,
    endpoints: cloud.endpoints,
    tables: cloud.tables,
    queues: cloud.queues,
    kmsKeyArn: cloud.kmsKeyArn,
    demo: cloud.demo && { merchantId: cloud.demo.merchantId, keyId: cloud.demo.keyId, secretKey: cloud.demo.secretKey },
  });
  return () => cloud.stop();
}
