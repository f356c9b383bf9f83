import { api } from '../http/api';
import { payments } from '../payments';

/** GET /v1/balance: available, pending, in_payout and authorized per currency (ledger/balance.ts). */
export const handler = api(async (req) => ({ status: 200, body: await payments().balance(req) }));
