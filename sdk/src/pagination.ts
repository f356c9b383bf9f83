import type { HttpClient, Query, RequestOptions } from './http.js';

export interface ListPage<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url?: string;
}

/**
 * A list call: `await` it for one page, or `for await` it for every item of every page (it follows
 * `starting_after` with the last id of each page while `has_more`), as Stripe's auto-pagination does.
 */
export class ListCall<T extends { id: string }> implements PromiseLike<ListPage<T>>, AsyncIterable<T> {
  private first: Promise<ListPage<T>> | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly path: string,
    private readonly query: Query = {},
    private readonly options: RequestOptions = {},
  ) {}

  private page(startingAfter?: string): Promise<ListPage<T>> {
    const query = startingAfter ? { ...this.query, starting_after: startingAfter } : this.query;
    return this.http.request<ListPage<T>>('GET', this.path, { query }, this.options);
  }

  then<R1 = ListPage<T>, R2 = never>(onfulfilled?: ((value: ListPage<T>) => R1 | PromiseLike<R1>) | null, onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null): PromiseLike<R1 | R2> {
    return this.firstPage().then(onfulfilled, onrejected);
  }

  private firstPage(): Promise<ListPage<T>> {
    this.first ??= this.page(this.query.starting_after as string | undefined);
    return this.first;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    let page = await this.firstPage();
    for (;;) {
      yield* page.data;
      const last = page.data.at(-1);
      if (!page.has_more || !last) return;
      page = await this.page(last.id);
    }
  }

  /** Every item, up to `limit` of them (a guard against loading a huge list by accident). */
  async toArray({ limit }: { limit: number }): Promise<T[]> {
    const items: T[] = [];
    for await (const item of this) {
      if (items.length >= limit) break;
      items.push(item);
    }
    return items;
  }
}
