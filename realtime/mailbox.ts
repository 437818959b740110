// A one-slot mailbox between ingress and the engine: latest frame wins. If the consumer is busy, a
// newer frame replaces the waiting one and the replaced frame is reported as dropped, so latency never
// grows with load — frame rate degrades instead. There is deliberately no queue here.

export class LatestWinsMailbox<T> {
  private waiting: T | undefined;
  private busy = false;
  private closed = false;

  constructor(
    private readonly consume: (item: T) => Promise<void>,
    private readonly onDropped: (item: T) => void,
  ) {}

  put(item: T): void {
    if (this.closed) return;
    if (!this.busy) {
      void this.run(item);
      return;
    }
    if (this.waiting !== undefined) this.onDropped(this.waiting);
    this.waiting = item;
  }

  get isBusy(): boolean {
    return this.busy;
  }

  close(): void {
    this.closed = true;
    if (this.waiting !== undefined) this.onDropped(this.waiting);
    this.waiting = undefined;
  }

  private async run(item: T): Promise<void> {
    this.busy = true;
    let current: T | undefined = item;
    while (current !== undefined && !this.closed) {
      // consume() reports its own errors; the mailbox must keep draining whatever happens.
      await this.consume(current).catch(() => undefined);
      current = this.waiting;
      this.waiting = undefined;
    }
    this.busy = false;
  }
}
