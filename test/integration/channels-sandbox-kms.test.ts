import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import { KmsMacSigner } from '../../functions/channels/sandbox/signer';
import { TradeStore } from '../../functions/channels/sandbox/store';
import { notificationParams, signedNotificationBody, type WireTrade } from '../../functions/channels/sandbox/transformers';
import { useHmacKeys } from './hmac-keys';

/**
 * The production signer (KMS GenerateMac / VerifyMac with an HMAC_256 key) against the local KMS
 * emulator, with keys declared as the stack declares them.
 */
const keys = useHmacKeys('Payplane-channels-kms', ['SigningKey', 'OtherKey']);

const trade: WireTrade = {
  trade_no: 'SB20300301abcdefghijklmnopqrst',
  out_trade_no: 'pay_kms',
  trade_status: 'TRADE_SUCCESS',
  total_amount: '19.99',
  currency: 'USD',
  authorized_amount: '19.99',
  captured_amount: '19.99',
  refunded_amount: '0.00',
  refunds: [],
  seq: '2',
  gmt_modified: new Date().toISOString(),
};

describe('the KMS signer (local KMS with GenerateMac / VerifyMac)', () => {
  it('signs and verifies; a changed message or another key does not verify', async () => {
    const signer = new KmsMacSigner(keys.arn('SigningKey'), keys.client);
    const other = new KmsMacSigner(keys.arn('OtherKey'), keys.client);
    const message = randomBytes(100);
    const mac = await signer.sign(message);
    expect(mac).toHaveLength(32);
    await expect(signer.verify(message, mac)).resolves.toBe(true);
    await expect(signer.verify(Buffer.concat([message, Buffer.from('x')]), mac)).resolves.toBe(false);
    await expect(other.verify(message, mac)).resolves.toBe(false);
  });

  it('a notification signed through KMS is verified by the channel through KMS', async () => {
    const signer = new KmsMacSigner(keys.arn('SigningKey'), keys.client);
    const channel = new SandboxChannel({
      bank: new SandboxBank({ store: new TradeStore(() => 'unused'), queue: { enqueue: async () => {} } }),
      signer,
    });
    const body = await signedNotificationBody(notificationParams(trade, new Date()), signer);
    await expect(channel.parseNotification({}, body)).resolves.toMatchObject({ paymentId: 'pay_kms', status: 'succeeded', amount: 1999 });
    await expect(channel.parseNotification({}, body.replace('19.99', '1.99'))).rejects.toMatchObject({ code: 'invalid_signature' });
  });
});
