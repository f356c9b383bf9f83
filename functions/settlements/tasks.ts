// TEMPORARY (H3, branch h3-orchestration): the task contract of COMMON.md with no body, so that the handlers and
// the construct compile until H2's functions/settlements/tasks.ts lands (branch h2-engine). Dropped at that merge.
import type { SettlementStatus } from './settlement';

export interface RunInput {
  cutoff?: string;
  merchant_id?: string;
}
export type ScanState = Record<string, unknown>;
export interface SettleItem {
  merchant_id: string;
  currency: string;
  cutoff: string;
  run_id: string;
  scan?: ScanState;
}
export type SettleResult = (SettleItem & { done: false; scan: ScanState }) | { done: true; settlement_id?: string; status?: SettlementStatus; net?: number; currency: string };
export interface RunSummary {
  run_id: string;
  cutoff: string;
  [field: string]: unknown;
}

const missing = (): never => {
  throw new Error('functions/settlements/tasks.ts is a placeholder until the engine (h2-engine) is merged.');
};
export async function prepare(_i: { cutoff?: string; merchant_id?: string; run_id: string; next?: string }): Promise<{ cutoff: string; run_id: string; merchant_id?: string; items: SettleItem[]; next?: string }> {
  return missing();
}
export async function settle(_i: SettleItem): Promise<SettleResult> {
  return missing();
}
export async function payout(_i: { settlement_id: string }): Promise<{ settlement_id: string; status: 'paid' }> {
  return missing();
}
export async function compensate(_i: { settlement_id: string; error?: { Error: string; Cause: string } }): Promise<{ settlement_id: string; status: 'paid' | 'failed' }> {
  return missing();
}
export async function report(_i: { settlement_id: string }): Promise<{ settlement_id: string; lines: number; sha256: string }> {
  return missing();
}
export async function summarize(_i: { cutoff: string; run_id: string }): Promise<RunSummary> {
  return missing();
}
