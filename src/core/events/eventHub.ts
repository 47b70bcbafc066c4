/**
 * Fan-out of the event stream to API clients. Publishing never waits for a subscriber. A subscriber
 * that writes to a stream passes it: while the stream's buffer is full (`writableNeedDrain`) its
 * events wait in a bounded buffer that drops the oldest, and are written on 'drain'. So a client
 * that reads slower than events arrive loses events (the listener is told how many) instead of
 * growing the control plane's memory.
 */

/** What a subscriber's listener writes to: an http.ServerResponse or any Writable. */
export interface DrainableStream {
  readonly writableNeedDrain: boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export interface SubscribeOptions {
  /** Events held while the stream is full; default the hub's (1000). */
  readonly bufferSize?: number;
  /** Where the listener writes: delivery pauses while it needs to drain. */
  readonly stream?: DrainableStream;
}

/** `dropped`: events lost just before this one because the subscriber's buffer was full. */
export type EventListener<T> = (event: T, dropped: number) => void;

/** A fixed-capacity FIFO that overwrites its oldest entry when full. */
class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  size = 0;
  constructor(private readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }
  /** Adds `item`; true when the oldest entry was dropped to make room. */
  push(item: T): boolean {
    const full = this.size === this.capacity;
    this.items[(this.head + this.size) % this.capacity] = item;
    if (full) this.head = (this.head + 1) % this.capacity;
    else this.size++;
    return full;
  }
  shift(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }
  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.size = 0;
  }
}

class Subscriber<T> {
  private readonly ring: Ring<T>;
  private dropped = 0;
  private waitingForDrain = false;
  closed = false;

  constructor(
    private readonly listener: EventListener<T>,
    capacity: number,
    private readonly stream: DrainableStream | undefined,
  ) {
    this.ring = new Ring(capacity);
  }

  offer(event: T): void {
    if (this.closed) return;
    if (this.ring.push(event)) this.dropped++;
    this.flush();
  }

  close(): void {
    this.closed = true;
    this.ring.clear();
  }

  private flush(): void {
    while (!this.closed && this.ring.size > 0 && !this.stream?.writableNeedDrain) {
      const event = this.ring.shift();
      const dropped = this.dropped;
      this.dropped = 0;
      try {
        this.listener(event, dropped);
      } catch {
        this.close(); // a broken listener loses its subscription, not the hub
      }
    }
    if (!this.closed && this.ring.size > 0 && this.stream && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.stream.once('drain', () => {
        this.waitingForDrain = false;
        this.flush();
      });
    }
  }
}

export class EventHub<T> {
  private readonly subscribers = new Set<Subscriber<T>>();
  private readonly bufferSize: number;

  constructor(options: { readonly bufferSize?: number } = {}) {
    this.bufferSize = capacityOf(options.bufferSize, 1000);
  }

  /** Adds a listener; returns the unsubscribe function. */
  subscribe(listener: EventListener<T>, options: SubscribeOptions = {}): () => void {
    const s = new Subscriber(listener, capacityOf(options.bufferSize, this.bufferSize), options.stream);
    this.subscribers.add(s);
    return () => {
      s.close();
      this.subscribers.delete(s);
    };
  }

  publish(event: T): void {
    for (const s of this.subscribers) {
      if (s.closed) this.subscribers.delete(s);
      else s.offer(event);
    }
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }
}

const capacityOf = (n: number | undefined, fallback: number): number => (n !== undefined && Number.isFinite(n) && n >= 1 ? Math.floor(n) : fallback);
