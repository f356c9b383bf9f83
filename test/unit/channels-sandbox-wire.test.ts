import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_AMOUNT } from '../../functions/commons/money';
import { Secret } from '../../functions/commons/secret';
import type { CardDetails } from '../../functions/channels/channel';
import { ChannelSignatureError } from '../../functions/channels/errors';
import { SandboxChannel } from '../../functions/channels/sandbox';
import { SandboxBank } from '../../functions/channels/sandbox/bank';
import { HmacSigner } from '../../functions/channels/sandbox/signer';
import { TradeStore } from '../../functions/channels/sandbox/store';
import {
  fromWireAmount,
  notificationAck,
  notificationParams,
  signedNotificationBody,
  signingString,
  toAuthorizeResult,
  toPayRequest,
  toWireAmount,
  verifyNotification,
  type WireTrade,
} from '../../functions/channels/sandbox/transformers';

const NOW = new Date('2030-03-01T12:00:00.000Z');
const signer = new HmacSigner(randomBytes(32));

const trade = (over: Partial<WireTrade> = {}): WireTrade => ({
  trade_no: 'SB20300301abcdefghijklmnopqrst',
  out_trade_no: 'pay_123',
  trade_status: 'TRADE_SUCCESS',
  total_amount: '19.99',
  currency: 'USD',
  authorized_amount: '19.99',
  captured_amount: '19.99',
  refunded_amount: '0.00',
  refunds: [],
  seq: '2',
  gmt_modified: '2030-03-01T11:59:58.000Z',
  ...over,
});

/** The channel's notification side needs no AWS: the bank is never called. */
const channelWith = (s = signer, now = NOW) =>
  new SandboxChannel({
    bank: new SandboxBank({ store: new TradeStore(() => 'unused'), queue: { enqueue: async () => {} }, callbackDelaySeconds: () => 0 }),
    signer: s,
    now: () => now,
  });

const FORM = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };

describe('amounts on the wire (major-unit decimal strings)', () => {
  it('uses each currency exponent', () => {
    expect(toWireAmount(1999, 'USD')).toBe('19.99');
    expect(toWireAmount(500, 'JPY')).toBe('500');
    expect(toWireAmount(1, 'KWD')).toBe('0.001');
    expect(fromWireAmount('19.99', 'USD')).toBe(1999);
    expect(fromWireAmount('19.9', 'USD')).toBe(1990);
    expect(fromWireAmount('19', 'USD')).toBe(1900);
    expect(fromWireAmount('500', 'JPY')).toBe(500);
    expect(fromWireAmount('0.001', 'KWD')).toBe(1);
  });

  it('refuses what is not an amount of that currency', () => {
    for (const [value, cur] of [['1.999', 'USD'], ['5.5', 'JPY'], ['-1', 'USD'], ['1e3', 'USD'], ['', 'USD'], [' 1', 'USD'], ['1', 'XXX']] as const) {
      expect(() => fromWireAmount(value, cur), `${value} ${cur}`).toThrow(RangeError);
    }
  });

  it('property: minor → wire → minor is the identity', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_AMOUNT }), fc.constantFrom('USD', 'JPY', 'KWD', 'CNY'), (minor, cur) => {
        expect(fromWireAmount(toWireAmount(minor, cur), cur)).toBe(minor);
      }),
    );
  });
});

describe('platform → wire', () => {
  it('maps an authorize request to sandbox.trade.pay, keeping the card secret', () => {
    const card = new Secret<CardDetails>({ number: '4242 4242 4242 4242', exp_month: 4, exp_year: 30, cvc: '123' });
    const req = toPayRequest(
      { paymentId: 'pay_1', amount: 500, currency: 'JPY', capture: false, method: { type: 'card', card }, notifyUrl: 'https://p.example/n' },
      (c) => new Secret(c),
    );
    expect(req).toMatchObject({
      method: 'sandbox.trade.pay',
      out_trade_no: 'pay_1',
      total_amount: '500',
      currency: 'JPY',
      capture_mode: 'MANUAL',
      pay_channel: 'CARD',
      notify_url: 'https://p.example/n',
    });
    expect(req.card?.reveal()).toEqual({ card_no: '4242424242424242', expiry_month: '04', expiry_year: '2030', cvv: '123' });
    // Nothing that prints the request shows the PAN or the CVC.
    for (const text of [JSON.stringify(req), inspect(req, { depth: 10 }), String(req.card)]) {
      expect(text).not.toContain('4242424242424242');
      expect(text).not.toContain('"123"');
    }
  });

  it('maps a wallet payment without card data', () => {
    const req = toPayRequest(
      { paymentId: 'pay_2', amount: 1999, currency: 'USD', capture: true, method: { type: 'wallet' }, notifyUrl: 'https://p.example/n' },
      (c) => new Secret(c),
    );
    expect(req).toMatchObject({ pay_channel: 'WALLET', capture_mode: 'AUTO', total_amount: '19.99' });
    expect(req.card).toBeUndefined();
  });
});

describe('wire → platform', () => {
  it.each([
    ['TRADE_SUCCESS', 'succeeded'],
    ['TRADE_AUTHORIZED', 'requires_capture'],
    ['WAIT_BANK', 'processing'],
  ] as const)('%s → %s', (status, expected) => {
    expect(toAuthorizeResult(trade({ trade_status: status }))).toEqual({ status: expected, channelRef: trade().trade_no });
  });

  it('turns a closed trade into a decline with a Stripe-like code', () => {
    expect(toAuthorizeResult(trade({ trade_status: 'TRADE_CLOSED', sub_code: 'ACQ.INSUFFICIENT_FUNDS', sub_msg: 'no money' }))).toEqual({
      status: 'failed',
      channelRef: trade().trade_no,
      declineCode: 'insufficient_funds',
      message: 'no money',
    });
  });

  it('turns a pending challenge into a 3-D Secure action', () => {
    expect(toAuthorizeResult(trade({ trade_status: 'WAIT_AUTHENTICATION', challenge_id: 'chl_1' }))).toEqual({
      status: 'requires_action',
      channelRef: trade().trade_no,
      action: { type: 'three_d_secure', challengeId: 'chl_1' },
    });
  });
});

describe('notification signing', () => {
  it('signs Alipay-style: sorted k=v&k=v without sign, sign_type and empty values', () => {
    expect(signingString({ b: '2', a: '1', sign: 'x', sign_type: 'HMAC-SHA256', c: '', A: '0' })).toBe('A=0&a=1&b=2');
  });

  it('round-trips: what the sandbox signs, the channel verifies and reads in platform terms', async () => {
    // Prepare
    const body = await signedNotificationBody(notificationParams(trade(), NOW), signer);
    // Act
    const event = await channelWith().parseNotification(FORM, body);
    // Assess
    expect(new URLSearchParams(body).get('sign_type')).toBe('HMAC-SHA256');
    expect(event).toEqual({
      eventId: `ntf_${trade().trade_no}_2`,
      paymentId: 'pay_123',
      channelRef: trade().trade_no,
      status: 'succeeded',
      amount: 1999,
      currency: 'USD',
      sequence: 2,
      occurredAt: '2030-03-01T11:59:58.000Z',
    });
  });

  it('carries the decline of a failed trade, and accepts the body as bytes', async () => {
    const body = await signedNotificationBody(notificationParams(trade({ trade_status: 'TRADE_CLOSED', sub_code: 'ACQ.CARD_DECLINED', seq: '3' }), NOW), signer);
    const event = await channelWith().parseNotification(FORM, Buffer.from(body));
    expect(event).toMatchObject({ status: 'failed', declineCode: 'card_declined', sequence: 3 });
    expect(event.message).toMatch(/declined/);
  });

  it('gives the same event id to a redelivery of the same state, and a new one to the next state', async () => {
    const first = await channelWith().parseNotification(FORM, await signedNotificationBody(notificationParams(trade(), NOW), signer));
    const again = await channelWith().parseNotification(FORM, await signedNotificationBody(notificationParams(trade(), new Date(NOW.getTime() + 1000)), signer));
    const next = await channelWith().parseNotification(FORM, await signedNotificationBody(notificationParams(trade({ seq: '3' }), NOW), signer));
    expect(again.eventId).toBe(first.eventId);
    expect(next.eventId).not.toBe(first.eventId);
    expect(next.sequence).toBeGreaterThan(first.sequence);
  });

  it('rejects a tampered body: any changed, added or removed parameter', async () => {
    const body = await signedNotificationBody(notificationParams(trade(), NOW), signer);
    const tampered = [
      body.replace('total_amount=19.99', 'total_amount=1.99'),
      body.replace('trade_status=TRADE_SUCCESS', 'trade_status=TRADE_CLOSED'),
      `${body}&extra=1`,
      body.replace(/&?captured_amount=[^&]*/, ''),
      body.replace(/sign=[^&]*/, 'sign=' + encodeURIComponent(Buffer.alloc(32).toString('base64'))),
    ];
    for (const t of tampered) {
      await expect(channelWith().parseNotification(FORM, t), t).rejects.toMatchObject({ name: 'ChannelSignatureError', code: 'invalid_signature' });
    }
  });

  it('rejects a notification signed with another key', async () => {
    const body = await signedNotificationBody(notificationParams(trade(), NOW), new HmacSigner(randomBytes(32)));
    await expect(channelWith().parseNotification(FORM, body)).rejects.toBeInstanceOf(ChannelSignatureError);
  });

  it('rejects a replay older than the tolerance (5 minutes) and one from the future', async () => {
    const old = await signedNotificationBody(notificationParams(trade(), new Date(NOW.getTime() - 301_000)), signer);
    const future = await signedNotificationBody(notificationParams(trade(), new Date(NOW.getTime() + 301_000)), signer);
    const fresh = await signedNotificationBody(notificationParams(trade(), new Date(NOW.getTime() - 299_000)), signer);
    await expect(channelWith().parseNotification(FORM, old)).rejects.toMatchObject({ code: 'stale_notification' });
    await expect(channelWith().parseNotification(FORM, future)).rejects.toMatchObject({ code: 'stale_notification' });
    await expect(channelWith().parseNotification(FORM, fresh)).resolves.toMatchObject({ status: 'succeeded' });
  });

  it('rejects malformed notifications before trusting anything in them', async () => {
    const body = await signedNotificationBody(notificationParams(trade(), NOW), signer);
    const cases = ['', 'a=1', `${body}&notify_id=again`, body.replace(/&?sign=[^&]*/, ''), body.replace('sign_type=HMAC-SHA256', 'sign_type=RSA2')];
    for (const c of cases) {
      await expect(channelWith().parseNotification(FORM, c), c).rejects.toMatchObject({ code: 'invalid_notification' });
    }
    await expect(channelWith().parseNotification({ 'Content-Type': 'application/json' }, body)).rejects.toMatchObject({ code: 'invalid_notification' });
  });

  it('verifies with the same result through verifyNotification directly', async () => {
    const body = await signedNotificationBody(notificationParams(trade({ trade_status: 'TRADE_AUTHORIZED', captured_amount: '0.00' }), NOW), signer);
    await expect(verifyNotification(body, signer, { now: NOW })).resolves.toMatchObject({ status: 'requires_capture' });
  });
});

describe('acknowledgement', () => {
  it('answers the literal body success, as Alipay expects', () => {
    expect(notificationAck(true)).toEqual({ statusCode: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'success' });
    expect(channelWith().notificationAck(true).body).toBe('success');
  });

  it('answers anything else when the notification was not applied, so the sandbox sends it again', () => {
    const nack = channelWith().notificationAck(false);
    expect(nack.body).not.toBe('success');
    expect(nack.statusCode).toBe(400);
  });
});

describe('the KMS signer, as it calls KMS', () => {
  it('asks for HMAC_SHA_256 with the configured key, and reads KMSInvalidMacException as "does not verify"', async () => {
    const { GenerateMacCommand, KMSInvalidMacException, VerifyMacCommand } = await import('@aws-sdk/client-kms');
    const { KmsMacSigner } = await import('../../functions/channels/sandbox/signer');
    const sent: unknown[] = [];
    const fake = {
      send: async (command: unknown) => {
        sent.push(command);
        if (command instanceof GenerateMacCommand) return { Mac: new Uint8Array(32).fill(7) };
        if (command instanceof VerifyMacCommand) {
          if (Buffer.from(command.input.Mac!).every((b) => b === 7)) return { MacValid: true };
          throw new KMSInvalidMacException({ message: 'invalid', $metadata: {} });
        }
        throw new Error('unexpected command');
      },
    };
    const signer = new KmsMacSigner(() => 'arn:aws:kms:us-east-1:111122223333:key/k', () => fake as never);
    const mac = await signer.sign(Buffer.from('m'));
    await expect(signer.verify(Buffer.from('m'), mac)).resolves.toBe(true);
    await expect(signer.verify(Buffer.from('m'), new Uint8Array(32))).resolves.toBe(false);
    expect((sent[0] as InstanceType<typeof GenerateMacCommand>).input).toMatchObject({
      KeyId: 'arn:aws:kms:us-east-1:111122223333:key/k',
      MacAlgorithm: 'HMAC_SHA_256',
    });
  });
});
