import { cardBrand, cvcValid, expMonthValid, isExpired, panValid } from '../cards';
import type { SubCode, WireCard } from './transformers';

/**
 * The sandbox's test cards (issue #3, documented in the README). Any expiry in the future and any
 * CVC of the right length work with them; `expired_card` and `incorrect_cvc` come from the number.
 */
export type Scenario =
  | { kind: 'approve' }
  | { kind: 'decline'; subCode: SubCode }
  | { kind: 'challenge' }
  | { kind: 'async'; result: 'SUCCESS' | 'FAILURE' }
  /** Approved and recorded, but the answer is lost: the caller sees a timeout. */
  | { kind: 'timeout' };

export const TEST_CARDS: ReadonlyArray<{ number: string; outcome: string; scenario: Scenario }> = [
  { number: '4242424242424242', outcome: 'success', scenario: { kind: 'approve' } },
  { number: '4000000000000002', outcome: '`card_declined`', scenario: { kind: 'decline', subCode: 'ACQ.CARD_DECLINED' } },
  { number: '4000000000009995', outcome: '`insufficient_funds`', scenario: { kind: 'decline', subCode: 'ACQ.INSUFFICIENT_FUNDS' } },
  { number: '4000000000000069', outcome: '`expired_card`', scenario: { kind: 'decline', subCode: 'ACQ.EXPIRED_CARD' } },
  { number: '4000000000000127', outcome: '`incorrect_cvc`', scenario: { kind: 'decline', subCode: 'ACQ.INCORRECT_CVC' } },
  { number: '4000000000003220', outcome: '3-D Secure required', scenario: { kind: 'challenge' } },
  { number: '4000000000000259', outcome: 'async: `processing`, then success by callback', scenario: { kind: 'async', result: 'SUCCESS' } },
  { number: '4000000000000341', outcome: 'async: `processing`, then failure (`card_declined`) by callback', scenario: { kind: 'async', result: 'FAILURE' } },
  {
    number: '4000000000000119',
    outcome: 'channel timeout: authorized at the channel, but the answer is lost (query finds it)',
    scenario: { kind: 'timeout' },
  },
];

const BY_NUMBER = new Map(TEST_CARDS.map((c) => [c.number, c.scenario]));

/** What the sandbox bank does with a card: format checks first, then the test card table, else approve. */
export function cardScenario(card: WireCard, now: Date): Scenario {
  const month = Number(card.expiry_month);
  const year = Number(card.expiry_year);
  if (!panValid(card.card_no)) return { kind: 'decline', subCode: 'ACQ.INVALID_CARD_NO' };
  if (!expMonthValid(month)) return { kind: 'decline', subCode: 'ACQ.INVALID_EXPIRY_MONTH' };
  if (isExpired(month, year, now)) return { kind: 'decline', subCode: 'ACQ.EXPIRED_CARD' };
  if (!cvcValid(card.cvv, cardBrand(card.card_no))) return { kind: 'decline', subCode: 'ACQ.INVALID_CVC' };
  return BY_NUMBER.get(card.card_no) ?? { kind: 'approve' };
}
