/**
 * Fan-out of the event stream to API clients. Each subscriber gets a bounded buffer: a client that
 * reads slower than events arrive loses the oldest ones (counted, so it can say so) instead of
 * growing the control plane's memory. Publishing never waits for a subscriber.
 */

export interface EventBatch<T> {
  readonly events: T[];
  /** Events dropped since the previous batch because the buffer was full. */
  readonly dropped: number;
}

export interface HubOptions {
  /** Events each subscriber may hold unread; default 1000. */
  readonly bufferSize?: number;
}

/** A fixed-capacity ring that overwrites its oldest entry. */
class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  size = 0;
  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }
  /** Adds `item`; true when the oldest entry was overwritten to make room. */
  push(item: T): boolean {
    const full = this.size === this.capacity;
    this.items[(this.head + this.size) % this.capacity] = item;
    if (full) this.head = (this.head + 1) % this.capacity;
    else this.size++;
    return full;
  }
  drain(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.size; i++) {
      const index = (this.head + i) % this.capacity;
      out.push(this.items[index] as T);
      this.items[index] = undefined;
    }
    this.head = 0;
    this.size = 0;
    return out;
  }
}

export class Subscription<T> implements AsyncIterable<EventBatch<T>> {
  private readonly ring: Ring<T>;
  private droppedSinceTake = 0;
  private waiter: (() => void) | undefined;
  private closed = false;
  /** Every event this subscriber lost, over its life. */
  totalDropped = 0;

  constructor(
    capacity: number,
    private readonly onClose: (s: Subscription<T>) => void,
  ) {
    this.ring = new Ring(capacity);
  }

  /** Called by the hub. */
  deliver(event: T): void {
    if (this.closed) return;
    if (this.ring.push(event)) {
      this.droppedSinceTake++;
      this.totalDropped++;
    }
    this.wake();
  }

  /** Events waiting, oldest first, and how many were dropped since the last take. */
  take(): EventBatch<T> {
    const batch = { events: this.ring.drain(), dropped: this.droppedSinceTake };
    this.droppedSinceTake = 0;
    return batch;
  }

  get pending(): number {
    return this.ring.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Resolves when there is something to take, or the subscription is closed. */
  ready(): Promise<void> {
    if (this.closed || this.ring.size > 0 || this.droppedSinceTake > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.waiter;
      this.waiter = () => {
        previous?.();
        resolve();
      };
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.drain();
    this.onClose(this);
    this.wake();
  }

  /** Batches until closed: `for await (const { events, dropped } of hub.subscribe())`. */
  async *[Symbol.asyncIterator](): AsyncIterator<EventBatch<T>> {
    try {
      for (;;) {
        await this.ready();
        if (this.closed) return;
        yield this.take();
      }
    } finally {
      this.close();
    }
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

export class EventHub<T> {
  private readonly subscribers = new Set<Subscription<T>>();
  private readonly bufferSize: number;

  constructor(options: HubOptions = {}) {
    this.bufferSize = Math.max(1, Math.floor(options.bufferSize ?? 1000));
  }

  subscribe(options: HubOptions = {}): Subscription<T> {
    const capacity = Math.max(1, Math.floor(options.bufferSize ?? this.bufferSize));
    const s = new Subscription<T>(capacity, (gone) => this.subscribers.delete(gone));
    this.subscribers.add(s);
    return s;
  }

  publish(event: T): void {
    for (const s of this.subscribers) s.deliver(event);
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Ends every subscription (their iterators finish). */
  closeAll(): void {
    for (const s of [...this.subscribers]) s.close();
  }
}
