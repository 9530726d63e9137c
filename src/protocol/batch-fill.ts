/**
 * Collects items into batches bounded by count and by bytes: the one rule for every
 * batch this store sends (replica traffic, hand-offs, transfers, anti-entropy, client
 * batches). An item joins the open batch unless the batch is full or the item would
 * take it past `maxBytes`; an item alone always fits, so no item is ever refused here
 * (the transport's own message limit is checked where values come in).
 */
export class BatchFill<T> {
  private items: T[] = [];
  private bytes = 0;

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {
    if (!(maxItems >= 1) || !(maxBytes >= 1)) throw new RangeError(`a batch holds at least one item and one byte (got ${maxItems}, ${maxBytes})`);
  }

  get length(): number {
    return this.items.length;
  }

  /** True when an item of `size` bytes does not fit the open batch (never when it is empty). */
  wouldOverflow(size: number): boolean {
    return this.items.length > 0 && (this.items.length >= this.maxItems || this.bytes + size > this.maxBytes);
  }

  add(item: T, size: number): void {
    this.items.push(item);
    this.bytes += size;
  }

  /** The open batch; the fill starts a new one. */
  take(): T[] {
    const out = this.items;
    this.items = [];
    this.bytes = 0;
    return out;
  }
}

/** The body of every batch message, client or node-to-node: `{"items":[...]}` from items' JSON texts, spliced in as they are. */
export function itemsBody(items: readonly string[]): string {
  return `{"items":[${items.join(',')}]}`;
}
