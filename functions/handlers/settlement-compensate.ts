import { lambda } from '../commons/lambda';
import { compensate } from '../settlements/tasks';

/** Settlement step Compensate (the Payout's Catch): voids the reserve, unless the channel says the payout went through. */
export const handler = lambda<{ settlement_id: string; error?: { Error: string; Cause: string } }, Awaited<ReturnType<typeof compensate>>>().handler((input) => compensate(input));
