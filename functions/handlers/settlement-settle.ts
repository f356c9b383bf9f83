import { lambda } from '../commons/lambda';
import { settle, type SettleItem } from '../settlements/tasks';

/** Settlement step Settle: one chunk of a merchant's entries; the state machine loops while `done` is false. */
export const handler = lambda<SettleItem, Awaited<ReturnType<typeof settle>>>().handler((item) => settle(item));
