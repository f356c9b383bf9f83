import { lambda } from '../commons/lambda';
import { summarize } from '../settlements/tasks';

/** Settlement step Summary: the run's totals and reconciliation; a break throws ReconciliationError and fails the execution. */
export const handler = lambda<{ cutoff: string; run_id: string }, Awaited<ReturnType<typeof summarize>>>().handler((input) => summarize(input));
