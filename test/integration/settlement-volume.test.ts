import { beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../functions/commons/ids';
import { getAccounts, merchantAccount } from '../../functions/ledger';
import { MAX_HISTORY_EVENTS } from '../../local/stepfunctions';
import { useLocalServices } from './env';
import { inProcessMachine } from './settlement-machine';
import { seedEntries } from './settlement-seed';
import { putMerchantPayout } from './settlement-support';
import * as tasks from '../../functions/settlements/tasks';
import { SandboxPayoutChannel } from '../../functions/channels/payouts';

/**
 * Volume (issue 10 §6): 20,000 entries of one merchant, seeded directly (BatchWriteItem, balanced: the accounts'
 * counters move with them), settled in one run of the synthesized state machine, in-process. The run's totals
 * match what was seeded, and its execution history stays far under Step Functions' 25,000 events: the entries are
 * looped over inside Settle (chunks), never in the state machine. The bench (bench/settlement.ts) does 100,000.
 */
let table: string;
beforeAll(() => {
  table = useLocalServices().tables.main;
});

describe('volume', () => {
  it('settles 20,000 entries of one merchant in one run, under the history cap', async () => {
    // Prepare: 10,000 captures and their fees, three days ago (outside the statement day the Summary checks).
    const merchantId = newId('mch');
    const platform = `pf_${newId('x').slice(2, 14)}`;
    await putMerchantPayout(table, merchantId);
    const seeded = await seedEntries(table, merchantId, { orders: 10_000, createdAt: new Date(Date.now() - 3 * 86_400_000), platform });
    expect(seeded.entries).toBe(20_000);
    const deps = tasks.taskDeps({ table, channel: new SandboxPayoutChannel(() => table), platform });
    const machine = inProcessMachine({ deps: () => deps });
    // Act
    const started = performance.now();
    const execution = await machine.run({ cutoff: new Date().toISOString(), merchant_id: merchantId });
    const ms = performance.now() - started;
    // Assess
    expect(execution.status, `${execution.error}: ${execution.cause}`).toBe('SUCCEEDED');
    const summary = JSON.parse(execution.output!) as tasks.RunSummary;
    const usd = summary.currencies.USD!;
    expect(usd).toMatchObject({ gross: seeded.gross, fees: seeded.fees, refunds: 0, entry_count: 20_000, net: seeded.gross - seeded.fees, paid: seeded.gross - seeded.fees });
    expect(summary.by_status).toEqual({ paid: 1 });
    // The merchant's balance went out in full: nothing left, nothing reserved.
    const account = (await getAccounts([merchantAccount(merchantId, 'USD')], table)).get(merchantAccount(merchantId, 'USD'))!;
    expect(account.credits_posted - account.debits_posted).toBe(0);
    expect(account.debits_pending).toBe(0);
    const events = execution.events.length;
    expect(events).toBeLessThan(MAX_HISTORY_EVENTS / 10);
    console.log(`[volume] seeded ${seeded.entries} entries in ${Math.round(seeded.ms)} ms; settled in ${Math.round(ms)} ms (${Math.round(seeded.entries / (ms / 1000))} entries/s), ${machine.invocations.Settle} Settle invocations, ${events} history events`);
  }, 300_000);
});
