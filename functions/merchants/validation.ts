import { InvalidRequestError } from '../commons/errors';

export const MERCHANT_NAME_MAX = 100;
const MERCHANT_ID_PATTERN = /^mch_[A-Za-z0-9]{1,64}$/;
// C0/C1 controls (newlines, escapes): they would forge log lines and break text output.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Trims the name and checks it: 1–100 characters (code points), no control characters. */
export function validateMerchantName(input: unknown): string {
  if (typeof input !== 'string') {
    throw new InvalidRequestError(
      'parameter_missing',
      `Missing required parameter 'name': got ${describe(input)}. Pass the merchant's display name, 1 to ${MERCHANT_NAME_MAX} characters, e.g. "Acme Coffee".`,
      { param: 'name' },
    );
  }
  const name = input.trim();
  const length = [...name].length;
  if (length === 0 || length > MERCHANT_NAME_MAX) {
    throw new InvalidRequestError(
      'parameter_invalid',
      `Invalid 'name': got ${describe(input)} (${length} characters after trimming). A merchant name must be 1 to ${MERCHANT_NAME_MAX} characters; ${length === 0 ? 'pass a non-empty name' : 'shorten it'}, e.g. "Acme Coffee".`,
      { param: 'name' },
    );
  }
  if (CONTROL.test(name)) {
    throw new InvalidRequestError(
      'parameter_invalid',
      `Invalid 'name': got ${describe(input)}, which contains a control character (newline, tab, escape…). Use printable characters only.`,
      { param: 'name' },
    );
  }
  return name;
}

export function validateMerchantId(input: unknown, param = 'merchant_id'): string {
  if (typeof input !== 'string' || !MERCHANT_ID_PATTERN.test(input)) {
    throw new InvalidRequestError(
      input === undefined ? 'parameter_missing' : 'parameter_invalid',
      `Invalid '${param}': got ${describe(input)}. Merchant ids are 'mch_' followed by letters and digits (e.g. mch_3fZk9Qx…); copy the id printed when the merchant was created.`,
      { param },
    );
  }
  return input;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}..."` : text;
}
