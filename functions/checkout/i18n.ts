import type { DeclineCode } from '../channels/errors';
import { currency, toMajorString } from '../commons/money';
import { negotiateLang, type Lang } from '../commons/lang';

export { LANGS, type Lang } from '../commons/lang';

/** `?lang=` wins; otherwise Accept-Language negotiation (the API's errors use the same one). */
export function chooseLang(query: string | undefined, acceptLanguage: string | undefined): Lang {
  if (query === 'en' || query === 'zh-CN') return query;
  return negotiateLang(acceptLanguage);
}

/**
 * The amount for people: minor units → exact decimal string (toMajorString, no float arithmetic) → the locale's
 * format with the ISO 4217 exponent as the fraction digits. Intl parses the decimal string exactly
 * (Intl.NumberFormat accepts strings as exact decimals), so large amounts do not round.
 */
export function formatAmount(amount: number, code: string, lang: Lang): string {
  const exponent = currency(code)?.exponent ?? 2;
  const major = toMajorString(amount, code);
  const nf = new Intl.NumberFormat(lang, { style: 'currency', currency: code, minimumFractionDigits: exponent, maximumFractionDigits: exponent });
  return nf.format(major as unknown as number); // a decimal string: formatted exactly (ES2023 Intl.NumberFormat v3)
}

const en = {
  title: 'Checkout',
  pay: 'Pay',
  payTo: 'Pay to',
  amount: 'Amount',
  description: 'Description',
  cardNumber: 'Card number',
  expiry: 'Expiry (MM/YY)',
  cvc: 'Security code (CVC)',
  cardholder: 'Name on card',
  language: 'Language',
  errNumber: 'Enter a valid card number (the check digit is wrong or it is too short).',
  errExpiry: 'Enter a valid expiry date MM/YY that is not in the past.',
  errCvc: 'Enter the 3 or 4 digit security code.',
  fixErrors: 'Please correct the highlighted fields.',
  declined: 'Your payment was declined.',
  tryAnother: 'Try again or use another card.',
  threeDsTitle: 'Verify your payment (3-D Secure)',
  threeDsText: 'Your bank asks you to confirm this payment. (Sandbox: choose the outcome.)',
  approve: 'Approve',
  fail: 'Fail authentication',
  threeDsFailed: 'Authentication failed.',
  succeeded: 'Payment successful',
  succeededText: 'Thank you. Your payment has been received.',
  returnToMerchant: 'Return to the merchant',
  processing: 'Payment processing',
  processingText: 'Your payment is being processed. You can close this page; the merchant will be notified.',
  closed: 'This order is closed',
  closedText: 'This order can no longer be paid. Contact the merchant for a new link.',
  attemptsExhausted: 'This order can no longer be paid',
  attemptsExhaustedText: 'Too many payment attempts on this order were declined. Ask the merchant for a new payment link.',
  notFound: 'Order not found',
  notFoundText: 'Check the link you were given.',
  error: 'Something went wrong',
  errorText: 'Please try again in a moment.',
  order: 'Order',
  secure: 'Card details go straight to the payment channel and are never stored.',
  /** Why an attempt failed, by decline code (failureText). */
  failures: {
    card_declined: 'Your card was declined.',
    insufficient_funds: 'Your card has insufficient funds.',
    expired_card: 'Your card has expired. Check the expiry date.',
    incorrect_cvc: "Your card's security code is incorrect.",
    incorrect_number: 'Your card number is incorrect.',
    invalid_expiry_month: "Your card's expiry month is invalid.",
    invalid_cvc: "Your card's security code is invalid.",
    authentication_failed: 'Your bank could not verify this payment (3-D Secure).',
    processing_error: 'An error occurred while processing your card.',
    card_velocity_exceeded: 'This card was declined too many times recently.',
    generic: 'The payment could not be completed.',
  } satisfies Record<DeclineCode | 'generic', string>,
};
export type Messages = typeof en;

const zh: Messages = {
  title: '收银台',
  pay: '支付',
  payTo: '收款方',
  amount: '金额',
  description: '商品描述',
  cardNumber: '卡号',
  expiry: '有效期 (MM/YY)',
  cvc: '安全码 (CVC)',
  cardholder: '持卡人姓名',
  language: '语言',
  errNumber: '请输入有效的卡号（校验位错误或位数不足）。',
  errExpiry: '请输入未过期的有效期，格式为 MM/YY。',
  errCvc: '请输入 3 或 4 位安全码。',
  fixErrors: '请更正标出的字段。',
  declined: '支付被拒绝。',
  tryAnother: '请重试或更换一张卡。',
  threeDsTitle: '验证您的支付 (3-D Secure)',
  threeDsText: '您的银行要求确认此笔支付。（沙箱：请选择结果。）',
  approve: '确认',
  fail: '拒绝验证',
  threeDsFailed: '验证失败。',
  succeeded: '支付成功',
  succeededText: '谢谢，您的付款已收到。',
  returnToMerchant: '返回商户',
  processing: '支付处理中',
  processingText: '您的支付正在处理中，可以关闭此页面，商户会收到通知。',
  closed: '订单已关闭',
  closedText: '此订单已无法支付，请联系商户获取新的链接。',
  attemptsExhausted: '此订单已无法支付',
  attemptsExhaustedText: '此订单被拒绝的支付尝试次数过多，请联系商户获取新的支付链接。',
  notFound: '未找到订单',
  notFoundText: '请检查您收到的链接。',
  error: '出错了',
  errorText: '请稍后重试。',
  order: '订单',
  secure: '卡信息直接发送给支付通道，不会被存储。',
  failures: {
    card_declined: '您的卡被拒绝。',
    insufficient_funds: '您的卡余额不足。',
    expired_card: '您的卡已过期，请检查有效期。',
    incorrect_cvc: '安全码不正确。',
    incorrect_number: '卡号不正确。',
    invalid_expiry_month: '有效期月份无效。',
    invalid_cvc: '安全码无效。',
    authentication_failed: '您的银行未能验证此笔支付 (3-D Secure)。',
    processing_error: '处理您的卡时出错。',
    card_velocity_exceeded: '此卡近期被拒绝次数过多。',
    generic: '支付未能完成。',
  },
};

export const MESSAGES: Record<Lang, Messages> = { en, 'zh-CN': zh };

/**
 * What the payer reads about a failed attempt, by decline code, then the retry hint. The channel's own message is
 * English and written for the merchant, so it never reaches the page; a code without words here gets the generic text.
 */
export function failureText(lang: Lang, code: string | undefined): string {
  const m = MESSAGES[lang];
  const reason = code && Object.hasOwn(m.failures, code) ? m.failures[code as DeclineCode] : m.failures.generic;
  return `${reason}${lang === 'en' ? ' ' : ''}${m.tryAnother}`;
}
