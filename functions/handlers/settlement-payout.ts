import { lambda } from '../commons/lambda';
import { payout } from '../settlements/tasks';

/** Settlement step Payout: sends the reserved net; PayoutTransientError is retried by the state machine, anything else compensates. */
export const handler = lambda<{ settlement_id: string }, Awaited<ReturnType<typeof payout>>>().handler((input) => payout(input));
