import { lambda } from '../commons/lambda';
import { prepare, type RunInput } from '../settlements/tasks';

/**
 * Settlement step Prepare (lib/constructs/settlement.ts): one page of merchant accounts to settle. `run` is the
 * execution's input on the first page and the previous page's output after; only its run fields are read.
 */
export const handler = lambda<{ run: RunInput & { next?: string }; run_id: string }, Awaited<ReturnType<typeof prepare>>>().handler(({ run, run_id }) =>
  prepare({ cutoff: run.cutoff, merchant_id: run.merchant_id, next: run.next, run_id, actor: run.actor, request_id: run.request_id }),
);
