import type { PayoutChannel } from './channel';
import { SandboxPayoutChannel } from './sandbox';

export * from './channel';
export { SandboxPayoutChannel, SANDBOX_PAYOUT_ACCOUNTS } from './sandbox';

/** The configured payout rail, one per cold start (the sandbox: the only one today). */
let instance: PayoutChannel | undefined;

export function payoutChannel(): PayoutChannel {
  instance ??= new SandboxPayoutChannel();
  return instance;
}

/** Tests: put a rail with injected dependencies in place of the configured one (undefined: forget it). */
export function usePayoutChannel(channel: PayoutChannel | undefined): void {
  instance = channel;
}
