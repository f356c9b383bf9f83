import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../functions/commons/errors';
import { errorResponse } from '../../functions/http/errors';
import { parseConfirm } from '../../functions/payments/schemas';

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
    expect(errorOf(card({ number: '4242424242424241' })).message).toContain('a string of 16 characters');
    expect(errorOf(card({ cvc: '98x7' })).message).not.toContain('98x7');
    expect(errorOf(card({ number: 4242424242424242 })).message).not.toContain('4242424242424242');
  });
});

/** Issue 7 finding 3: every shape that put the full number into a 400, through the one error mapping. */
describe('a card number anywhere in a confirm body never reaches the response', () => {
  const PAN = '4242424242424242';
  const GROUPED = '4242 4242 4242 4242';
  const details = { exp_month: 12, exp_year: 2034, cvc: '123' };
  it.each([
    ['type "Card" (wrong case)', { payment_method: { type: 'Card', card: { number: PAN, ...details } } }],
    ['no type', { payment_method: { card: { number: PAN, ...details } } }],
    ['card as a string', { payment_method: { type: 'card', card: PAN } }],
    ['card as a grouped string', { payment_method: { type: 'card', card: GROUPED } }],
    ['card as an array', { payment_method: { type: 'card', card: [PAN] } }],
    ['payment_method as a string', { payment_method: PAN }],
    ['payment_method as an array', { payment_method: [{ type: 'card', card: { number: PAN } }] }],
    ['a wallet with the card', { payment_method: { type: 'wallet', card: { number: PAN } } }],
    ['card.number with a bad check digit', card({ number: '4242424242424241' })],
    ['card.number as a number', card({ number: Number(PAN) })],
    ['card.number too long', card({ number: `${PAN}999` })],
    ['the number in card.cvc', card({ cvc: PAN })],
    ['the number in exp_month', card({ exp_month: PAN })],
    ['the number as an unknown card field', card({ [PAN]: 'x' })],
    ['the number as a grouped unknown field name', { payment_method: { type: 'wallet', [GROUPED]: 1 } }],
    ['the number beside payment_method', { payment_method: { type: 'wallet' }, pan: PAN }],
    ['the number as a top-level key', { payment_method: { type: 'wallet' }, [PAN]: true }],
  ])('%s', (_, body) => {
    const error = errorOf(body);
    expect(error).toBeInstanceOf(InvalidRequestError);
    const response = errorResponse(error, 'req_test');
    expect(response.statusCode).toBe(400);
    expect(response.body.replace(/(\d)[\s-](?=\d)/g, '$1')).not.toContain(PAN);
    expect(JSON.parse(response.body).error.param).toMatch(/payment_method|pan|•/);
  });
});
