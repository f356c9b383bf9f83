import { lambda } from '../commons/lambda';
import { report } from '../settlements/tasks';

/** Settlement step Report: writes the settlement's report and records its digest. */
export const handler = lambda<{ settlement_id: string }, Awaited<ReturnType<typeof report>>>().handler((input) => report(input));
