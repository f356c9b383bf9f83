import { InvalidRequestError } from '../commons/errors';
import { msg } from '../commons/messages';
import type { ChannelId, PaymentChannel } from './channel';
import { SandboxChannel } from './sandbox';

/**
 * The configured payment channels, one instance per cold start. `channel(id)` is how platform code
 * reaches a channel; it never imports a channel's folder directly.
 */
const FACTORIES: Record<ChannelId, () => PaymentChannel> = {
  sandbox: () => SandboxChannel.fromEnv(),
};

export const CHANNEL_IDS = Object.keys(FACTORIES) as ChannelId[];

const instances = new Map<ChannelId, PaymentChannel>();

export function isChannelId(id: string): id is ChannelId {
  return Object.hasOwn(FACTORIES, id);
}

export function channel(id: string): PaymentChannel {
  if (!isChannelId(id)) {
    throw new InvalidRequestError('unknown_channel', msg.unknown_channel({ id, channels: CHANNEL_IDS.join(', ') }), { param: 'channel' });
  }
  let instance = instances.get(id);
  if (!instance) {
    instance = FACTORIES[id]();
    instances.set(id, instance);
  }
  return instance;
}

/** Tests: put a channel built with injected dependencies in place of the configured one. */
export function useChannel(instance: PaymentChannel): void {
  instances.set(instance.id, instance);
}

/** Tests: forget every instance, so the next `channel(id)` builds from the environment again. */
export function resetChannels(): void {
  instances.clear();
}

export type * from './channel';
export * from './errors';
