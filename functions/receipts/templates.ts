import { formatAmount } from '../checkout/i18n';
import type { PayerLocale } from '../orders/order';

/**
 * The receipts' words, in the payer's language (order payer.locale; en by default). Pure: the sender
 * (receipts/sender.ts) gathers the facts, this renders an email (subject, text, HTML) and an SMS.
 *
 * Amounts: minor units → exact decimal string (toMajorString, ISO 4217 exponent) → the locale's currency
 * format (checkout/i18n.ts formatAmount, which hands Intl the decimal string, never a float).
 * Times: UTC for en, China Standard Time for zh-CN (what a payer there reads on every other receipt), both named.
 */

export type ReceiptKind = 'payment' | 'refund';

export interface ReceiptFacts {
  kind: ReceiptKind;
  locale: PayerLocale;
  merchantName: string;
  /** Minor units of `currency`: the order's amount for a payment, the refund's for a refund. */
  amount: number;
  currency: string;
  orderId: string;
  merchantOrderNo: string;
  description?: string;
  refundId?: string;
  /** When it succeeded (ISO 8601): paid_at, or the event's created_at. */
  at: string;
}

export interface RenderedReceipt {
  subject: string;
  text: string;
  html: string;
  sms: string;
}

interface Words {
  subject: (f: ReceiptFacts, amount: string) => string;
  heading: (f: ReceiptFacts) => string;
  lead: (f: ReceiptFacts, amount: string) => string;
  sms: (f: ReceiptFacts, amount: string) => string;
  amount: string;
  merchant: string;
  orderNo: string;
  orderId: string;
  refundId: string;
  description: string;
  time: string;
  footer: string;
  zone: { timeZone: string; label: string };
}

const WORDS: Record<PayerLocale, Words> = {
  en: {
    subject: (f, a) => (f.kind === 'payment' ? `Your receipt from ${f.merchantName}: ${a}` : `Refund from ${f.merchantName}: ${a}`),
    heading: (f) => (f.kind === 'payment' ? 'Payment receipt' : 'Refund receipt'),
    lead: (f, a) => (f.kind === 'payment' ? `You paid ${a} to ${f.merchantName}.` : `${f.merchantName} refunded ${a} to you. It reaches your card or account within a few business days.`),
    sms: (f, a) =>
      f.kind === 'payment' ? `Payplane: you paid ${a} to ${f.merchantName} (order ${f.merchantOrderNo}).` : `Payplane: ${f.merchantName} refunded ${a} to you (order ${f.merchantOrderNo}).`,
    amount: 'Amount',
    merchant: 'Merchant',
    orderNo: 'Order number',
    orderId: 'Payplane order',
    refundId: 'Refund',
    description: 'Description',
    time: 'Time',
    footer: 'You get this receipt because you paid through Payplane. Keep it for your records; reply to the merchant with questions about your order.',
    zone: { timeZone: 'UTC', label: 'UTC' },
  },
  'zh-CN': {
    subject: (f, a) => (f.kind === 'payment' ? `${f.merchantName} 付款凭证：${a}` : `${f.merchantName} 退款凭证：${a}`),
    heading: (f) => (f.kind === 'payment' ? '付款凭证' : '退款凭证'),
    lead: (f, a) => (f.kind === 'payment' ? `您已向 ${f.merchantName} 成功付款 ${a}。` : `${f.merchantName} 已向您退款 ${a}，款项将在几个工作日内退回您的银行卡或账户。`),
    sms: (f, a) => (f.kind === 'payment' ? `【Payplane】您已向${f.merchantName}付款${a}（订单号 ${f.merchantOrderNo}）。` : `【Payplane】${f.merchantName}已向您退款${a}（订单号 ${f.merchantOrderNo}）。`),
    amount: '金额',
    merchant: '商户',
    orderNo: '订单号',
    orderId: 'Payplane 订单',
    refundId: '退款单号',
    description: '商品描述',
    time: '时间',
    footer: '您收到此凭证是因为您通过 Payplane 完成了支付。请妥善保存；如对订单有疑问，请联系商户。',
    zone: { timeZone: 'Asia/Shanghai', label: '北京时间' },
  },
};

/** `2026-12-01 16:30:00 北京时间` / `2026-12-01 08:30:00 UTC`: unambiguous in both languages. */
export function formatTime(iso: string, locale: PayerLocale): string {
  const { timeZone, label } = WORDS[locale].zone;
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${label}`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function renderReceipt(facts: ReceiptFacts): RenderedReceipt {
  const w = WORDS[facts.locale];
  const amount = formatAmount(facts.amount, facts.currency, facts.locale);
  const rows: [string, string][] = [
    [w.amount, amount],
    [w.merchant, facts.merchantName],
    [w.orderNo, facts.merchantOrderNo],
    ...(facts.description ? [[w.description, facts.description] as [string, string]] : []),
    [w.time, formatTime(facts.at, facts.locale)],
    [w.orderId, facts.orderId],
    ...(facts.refundId ? [[w.refundId, facts.refundId] as [string, string]] : []),
  ];
  const text = [w.heading(facts), '', w.lead(facts, amount), '', ...rows.map(([k, v]) => `${k}: ${v}`), '', w.footer, ''].join('\n');
  const html = [
    '<!doctype html>',
    `<html lang="${facts.locale}"><head><meta charset="utf-8"><title>${escapeHtml(w.heading(facts))}</title></head>`,
    '<body style="font-family: system-ui, -apple-system, \'PingFang SC\', \'Microsoft YaHei\', sans-serif; color: #1a1a1a; max-width: 560px; margin: 0 auto; padding: 24px">',
    `<h1 style="font-size: 20px">${escapeHtml(w.heading(facts))}</h1>`,
    `<p style="font-size: 16px">${escapeHtml(w.lead(facts, amount))}</p>`,
    '<table style="border-collapse: collapse; width: 100%">',
    ...rows.map(([k, v]) => `<tr><th style="text-align: left; padding: 6px 12px 6px 0; color: #555; font-weight: normal">${escapeHtml(k)}</th><td style="padding: 6px 0">${escapeHtml(v)}</td></tr>`),
    '</table>',
    `<p style="font-size: 12px; color: #777">${escapeHtml(w.footer)}</p>`,
    '</body></html>',
    '',
  ].join('\n');
  return { subject: w.subject(facts, amount), text, html, sms: w.sms(facts, amount) };
}
