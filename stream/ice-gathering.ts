// Non-trickle signalling (WHIP/WHEP as OBS and these clients do it) sends a description only once every
// candidate is in it: wait for ICE gathering to complete, but never longer than `timeoutMs` (a slow
// interface then simply contributes no candidates). Shared by the server's sessions and the project's
// own werift clients.
import type { RTCPeerConnection } from 'werift';

export const GATHER_TIMEOUT_MS = 5000;

export function iceGatheringComplete(pc: RTCPeerConnection, timeoutMs = GATHER_TIMEOUT_MS): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') done();
    });
    function done(): void {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}
