/**
 * Reads the engine's answer to an image pull (POST /images/create: JSON objects, one per layer
 * event) into a few progress lines a person can follow: bytes downloaded of the known total, layers
 * done, at most one line per tenth of the way. Pure: the caller feeds events and shows the lines.
 */
export interface PullEvent {
  readonly status?: string;
  readonly id?: string;
  readonly progressDetail?: { readonly current?: number; readonly total?: number };
  readonly error?: string;
  readonly errorDetail?: { readonly message?: string };
}

interface Layer {
  current: number;
  total: number;
  done: boolean;
}

const MB = 1_000_000;
const mb = (bytes: number): string => (bytes / MB).toFixed(1);

export class PullProgress {
  private readonly layers = new Map<string, Layer>();
  private lastTenth = -1;
  private lastDone = 0;
  error: string | undefined;
  /** The registry's digest of what was pulled (`Digest: sha256:…`), when it said. */
  digest: string | undefined;

  constructor(private readonly reference: string) {}

  /** The lines this event adds (often none). */
  push(event: PullEvent): string[] {
    const error = event.errorDetail?.message ?? event.error;
    if (typeof error === 'string' && error.trim() !== '') {
      this.error = error.trim();
      return [`error: ${this.error}`];
    }
    const status = event.status ?? '';
    const digest = /^Digest: (sha256:[0-9a-f]{64})$/.exec(status);
    if (digest) this.digest = digest[1];
    const id = event.id;
    // Layer events carry the layer's short id; the others (`Pulling from …`) the tag.
    if (!id || !/^[0-9a-f]{12,64}$/.test(id)) return [];
    const layer = this.layers.get(id) ?? { current: 0, total: 0, done: false };
    this.layers.set(id, layer);
    if (status === 'Downloading') {
      layer.current = event.progressDetail?.current ?? layer.current;
      layer.total = event.progressDetail?.total ?? layer.total;
    } else if (status === 'Download complete' || status === 'Already exists' || status === 'Pull complete') {
      if (layer.total > 0) layer.current = layer.total;
      layer.done = true;
    }
    return this.line();
  }

  private line(): string[] {
    const all = [...this.layers.values()];
    const done = all.filter((l) => l.done).length;
    const total = all.reduce((n, l) => n + l.total, 0);
    const current = all.reduce((n, l) => n + Math.min(l.current, l.total || l.current), 0);
    const tenth = total > 0 ? Math.floor((current / total) * 10) : 0;
    // A line per tenth of the bytes, and one when the last layer is done (not one per layer).
    if (tenth <= this.lastTenth && (done < all.length || done === this.lastDone)) return [];
    this.lastTenth = Math.max(tenth, this.lastTenth);
    this.lastDone = done;
    const bytes = total > 0 ? `${mb(current)} of ${mb(total)} MB, ` : '';
    return [`${this.reference}: ${bytes}${done}/${all.length} layers`];
  }
}
