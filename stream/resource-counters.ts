// Live native resources owned by stream/, counted so a lifecycle test (and /metrics) can prove that
// close() frees everything: a session that leaks a codec context leaks native memory forever.

export type StreamResource = 'sessions' | 'viewers' | 'peerConnections' | 'decoders' | 'encoders' | 'scalers' | 'timers';

const live: Record<StreamResource, number> = {
  sessions: 0,
  viewers: 0,
  peerConnections: 0,
  decoders: 0,
  encoders: 0,
  scalers: 0,
  timers: 0,
};

export function acquire(kind: StreamResource): void {
  live[kind]++;
}

export function release(kind: StreamResource): void {
  live[kind]--;
}

/** A snapshot of live resources; every value is 0 when no session is open. */
export function liveResources(): Readonly<Record<StreamResource, number>> {
  return { ...live };
}

/** Total codec contexts (decoders + encoders + scalers) still open. */
export function liveCodecContexts(): number {
  return live.decoders + live.encoders + live.scalers;
}
