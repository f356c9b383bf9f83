import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors';
import { mask, parseConfirm } from '../../functions/payments/schemas';

const card = (over: Record<string, unknown> = {}) => ({ payment_method: { type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123', ...over } } });

function errorOf(body: unknown): InvalidRequestError {
  try {
    parseConfirm(body);
  } catch (error) {
    return error as InvalidRequestError;
  }
  throw new Error('expected a validation error');
}

describe('confirm body', () => {
  it('accepts a card (spaces in the number, two-digit year) and a wallet', () => {
    expect(parseConfirm(card({ number: '4242 4242-4242 4242', exp_year: 34 })).payment_method).toEqual({
      type: 'card',
      card: { number: '4242424242424242', exp_month: 12, exp_year: 2034, cvc: '123' },
    });
    expect(parseConfirm({ payment_method: { type: 'wallet' } }).payment_method).toEqual({ type: 'wallet' });
  });

  it.each([
    ['a bad check digit', card({ number: '4242424242424241' }), 'payment_method.card.number', /Luhn/],
    ['too few digits', card({ number: '4242' }), 'payment_method.card.number', /12-19 digits/],
    ['a month of 13', card({ exp_month: 13 }), 'payment_method.card.exp_month', /1 to 12/],
    ['a CVC with a letter', card({ cvc: '12a' }), 'payment_method.card.cvc', /3 or 4 digits/],
    ['an unknown method', { payment_method: { type: 'cash' } }, 'payment_method.type', /wallet/],
    ['an extra card field', card({ name: 'x' }), 'payment_method.card.name', /unknown parameter/],
  ])('refuses %s, naming the field and the fix', (_, body, param, fix) => {
    const error = errorOf(body);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error.param).toBe(param);
    expect(error.message).toMatch(fix);
  });

  it('never echoes a card number or CVC', () => {
    expect(errorOf(card({ number: '4242424242424241' })).message).not.toContain('4242424242424241');
    expect(errorOf(card({ number: '4242424242424241' })).message).toContain('4241');
    expect(errorOf(card({ cvc: '98x7' })).message).not.toContain('98x7');
    expect(errorOf(card({ number: 4242424242424242 })).message).not.toContain('4242424242424242');
    expect(mask('4000 0000 0000 0002')).toBe('"••••••••••••0002" (16 characters)');
  });
});
