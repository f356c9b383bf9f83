import { inspect } from 'node:util';

const REDACTED = '[REDACTED]';

/**
 * A value that refuses to print: JSON, string conversion and util.inspect all redact it,
 * so a card number, key or payer detail cannot reach a log by accident. Use `reveal()`
 * at the one place that needs the plaintext.
 */
export class Secret<T> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toJSON(): string {
    return REDACTED;
  }
  toString(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
