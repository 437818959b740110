// The lifecycle every WebRTC peer of the server shares, publisher or viewer: its peer connection, the
// timers and werift subscriptions it holds, the connection-state watch (failed or closed: gone;
// disconnected: gone after a grace period), reporting a vanished peer once, and close(), which frees all
// of it. A subclass adds what it owns (a decoder, a transceiver's counters) and its own liveness rule.
import type { RTCPeerConnection } from 'werift';
import { nowMs } from '../frame/clock.js';
import type { Log } from '../frame/log.js';
import { acquire, release } from './resource-counters.js';

/** How long a peer may stay ICE-disconnected before it counts as gone. */
export const DISCONNECT_GRACE_MS = 4000;

export abstract class PeerLifecycle {
  protected closed = false;
  private closedNotified = false;
  /** onClosed is for peers the owner holds; a peer that failed to start was never handed out. */
  protected started = false;
  protected disconnectedSince: number | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly unsubscribers: (() => void)[] = [];

  /**
   * @param role names the peer in log lines and reasons ('publisher', 'viewer').
   * @param onClosed told once when the peer vanishes, or when close() ends a started peer.
   */
  protected constructor(
    protected readonly pc: RTCPeerConnection,
    private readonly role: string,
    private readonly onClosed: (reason: string) => void,
    protected readonly log: Log | undefined,
  ) {
    acquire('peerConnections');
    this.sub(pc.connectionStateChange.subscribe((state) => this.onConnectionState(state)));
    this.sub(pc.iceConnectionStateChange.subscribe((state) => this.onConnectionState(state)));
  }

  /** ICE/DTLS reached 'connected' (or 'completed'): a subclass may start sending. */
  protected connected(): void {}

  private onConnectionState(state: string): void {
    if (state === 'failed' || state === 'closed') this.vanish(`${this.role === 'publisher' ? 'peer' : this.role} connection ${state}`);
    else if (state === 'disconnected') this.disconnectedSince ??= nowMs();
    else if (state === 'connected' || state === 'completed') {
      this.disconnectedSince = null;
      this.connected();
    }
  }

  /** Vanishes the peer if it has been disconnected past the grace period; true if it did. */
  protected disconnectedTooLong(now: number): boolean {
    if (this.disconnectedSince === null || now - this.disconnectedSince <= DISCONNECT_GRACE_MS) return false;
    this.vanish(`${this.role === 'publisher' ? 'peer' : this.role} disconnected for over ${DISCONNECT_GRACE_MS / 1000} s`);
    return true;
  }

  /** Report a vanished peer once; the owner then calls close(). */
  protected vanish(reason: string): void {
    if (this.closed || this.closedNotified) return;
    this.closedNotified = true;
    this.log?.info({ reason }, `${this.role} gone`);
    this.safe(() => this.onClosed(reason));
  }

  /** What the subclass owns besides the peer connection, freed after it closes. */
  protected abstract releaseOwn(): Promise<void>;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) {
      clearInterval(t);
      release('timers');
    }
    this.timers.clear();
    for (const u of this.unsubscribers.splice(0)) u();
    try {
      await this.pc.close();
    } catch (error) {
      this.log?.warn({ err: (error as Error).message }, `${this.role} peer connection close failed`);
    }
    release('peerConnections');
    await this.releaseOwn();
    if (!this.closedNotified && this.started) {
      this.closedNotified = true;
      this.safe(() => this.onClosed('closed'));
    }
  }

  protected every(ms: number, fn: () => void): void {
    const t = setInterval(() => this.safe(fn), ms);
    t.unref();
    this.timers.add(t);
    acquire('timers');
  }

  protected sub(s: { unSubscribe: () => void }): void {
    this.unsubscribers.push(s.unSubscribe);
  }

  /** Callbacks and timers must never throw into werift's event dispatch. */
  protected safe(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.log?.warn({ err: (error as Error).message }, `${this.role} callback threw`);
    }
  }
}
