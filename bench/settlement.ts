import { newId } from '../functions/commons/ids';
import { resetClients } from '../functions/commons/clients';
import type { LocalCloud } from '../local/cloud';
import { PRICES } from './cost/prices';
import { seedEntries } from '../test/integration/settlement-seed';
import { putMerchantPayout } from '../test/integration/settlement-support';

/**
 * Settlement (issue 10 §7): one merchant with `entries` unsettled entries (default 100,000, seeded in bulk as the
 * volume test does), settled by one execution of the template's state machine in the local cloud: its Task states
 * run in the Lambda runtime's workers with their own roles, as `payplane settlements run --merchant` would start it.
 * Measures entries settled per second, the run's state transitions (each state entered is one billed transition),
 * the Lambda work per step, and from those the cost of settling one merchant for a day at AWS list prices.
 */


/** `around`: called just before the execution starts and after it ends (the cost bench records only the run, not the seeding). */
export async function settlementBench(cloud: LocalCloud, options: { entries?: number; around?: { start(): void; stop(): void } } = {}) {
  const entries = options.entries ?? 100_000;
  // The seeding and the payout settings write straight to the cloud's DynamoDB and KMS, as an administrator.
  Object.assign(process.env, {
    AWS_REGION: cloud.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: cloud.endpoints.dynamodb,
    AWS_ENDPOINT_URL_KMS: cloud.endpoints.kms,
    KMS_KEY_ARN: cloud.kmsKeyArn,
    TABLE_NAME: cloud.tables.main,
  });
  resetClients();
  const table = cloud.tables.main!;
  const sfn = cloud.stepFunctions!;
  const machine = [...sfn.machines.values()].find((m) => m.logicalId.startsWith('SettlementStateMachine'))!;
  const merchantId = newId('mch');
  await putMerchantPayout(table, merchantId);
  // Three days back: outside the statement day the Summary compares (the seeded captures have no channel lines).
  const seeded = await seedEntries(table, merchantId, { orders: Math.ceil(entries / 2), createdAt: new Date(Date.now() - 3 * 86_400_000) });

  const before = cloud.stats().lambda;
  options.around?.start();
  const started = performance.now();
  const { executionArn } = await sfn.startExecution({ stateMachineArn: machine.arn, name: `bench-${Date.now()}`, input: JSON.stringify({ cutoff: new Date().toISOString(), merchant_id: merchantId }) });
  const execution = await sfn.waitFor(executionArn);
  const seconds = (performance.now() - started) / 1000;
  options.around?.stop();
  if (execution.status !== 'SUCCEEDED') throw new Error(`The settlement bench run ${execution.status}: ${execution.error}: ${execution.cause}`);
  const after = cloud.stats().lambda;

  const transitions = execution.events.filter((e) => e.type.endsWith('StateEntered')).length;
  const steps: Record<string, { invocations: number; duration_ms: number }> = {};
  let invocations = 0;
  let gbSeconds = 0;
  for (const [id, stats] of Object.entries(after)) {
    if (!id.startsWith('Settlement')) continue;
    const calls = stats.invocations - (before[id]?.invocations ?? 0);
    const ms = stats.totalDurationMs - (before[id]?.totalDurationMs ?? 0);
    if (!calls) continue;
    steps[id.replace(/Function[0-9A-F]{8}$/, '')] = { invocations: calls, duration_ms: Math.round(ms) };
    invocations += calls;
    // Billed at the configured 512 MB (lib/constructs/payplane-function.ts), rounded up per ms.
    gbSeconds += (ms / 1000) * 0.5;
  }
  const cost = {
    step_functions_usd: transitions * PRICES.stepFunctionsTransition,
    lambda_usd: invocations * PRICES.lambda.request + gbSeconds * PRICES.lambda.gbSecond.arm64!,
  };
  // A merchant with a normal day (hundreds of entries) takes one Settle chunk: the same path less the loop.
  const settleLoops = steps.SettlementSettle?.invocations ?? 1;
  const typicalTransitions = transitions - 2 * (settleLoops - 1);
  const round = (n: number, digits = 6) => Number(n.toFixed(digits));
  return {
    entries: seeded.entries,
    seed_ms: Math.round(seeded.ms),
    run_seconds: round(seconds, 2),
    // The whole run (Prepare → Settle chunks → Payout → Report → Summary), and the Settle step alone.
    entries_per_second: Math.round(seeded.entries / seconds),
    settle_entries_per_second: steps.SettlementSettle ? Math.round(seeded.entries / (steps.SettlementSettle.duration_ms / 1000)) : null,
    history_events: execution.events.length,
    state_transitions_per_merchant_run: transitions,
    settle_invocations: settleLoops,
    steps,
    cost_per_merchant_day_usd: {
      step_functions: round(cost.step_functions_usd),
      lambda: round(cost.lambda_usd),
      total: round(cost.step_functions_usd + cost.lambda_usd),
      at: 'Step Functions Standard $0.025 per 1,000 transitions; Lambda arm64 $0.20 per 1M requests + $0.0000133334 per GB-s at 512 MB',
    },
    typical_merchant: { state_transitions: typicalTransitions, step_functions_usd_per_day: round(typicalTransitions * PRICES.stepFunctionsTransition) },
  };
}
