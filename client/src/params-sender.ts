// Sends parameter changes to the server: coalesces edits for ~50 ms, then sends one partial update
// over the `control` DataChannel, or PATCHes <session>/params when the channel is not open.

import type { ClientMessage, SessionParams } from './protocol.js';
import { authHeaders } from './signaling.js';

export class ParamsSender {
  private pending: Partial<SessionParams> = {};
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly channel: RTCDataChannel,
    private readonly resourceUrl: string,
    private readonly onReply: (params: Partial<SessionParams>) => void,
    private readonly onError: (message: string) => void,
    private readonly debounceMs = 50,
  ) {}

  /** Queues a change; `delayMs` lets slow-to-apply edits (typing a prompt) wait for a pause. */
  update(params: Partial<SessionParams>, delayMs = this.debounceMs): void {
    Object.assign(this.pending, params);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), delayMs);
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const params = this.pending;
    this.pending = {};
    if (Object.keys(params).length === 0) return;
    if (this.channel.readyState === 'open') {
      const message: ClientMessage = { type: 'params', params };
      this.channel.send(JSON.stringify(message));
      return;
    }
    await this.patch(params);
  }

  close(): void {
    clearTimeout(this.timer);
    this.pending = {};
  }

  private async patch(params: Partial<SessionParams>): Promise<void> {
    const url = `${this.resourceUrl.replace(/\/$/, '')}/params`;
    try {
      const response = await fetch(url, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json', ...authHeaders() },
        body: JSON.stringify(params),
      });
      const text = await response.text();
      if (!response.ok) {
        this.onError(errorText(text) ?? `Could not change settings (HTTP ${response.status}).`);
        return;
      }
      const reply = parseJson(text);
      if (reply && typeof reply === 'object') {
        const full = 'params' in reply ? (reply as { params: unknown }).params : reply;
        if (full && typeof full === 'object') this.onReply(full as Partial<SessionParams>);
      }
    } catch {
      this.onError('Could not reach the server to change settings.');
    }
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorText(body: string): string | undefined {
  const json = parseJson(body) as { message?: unknown; error?: unknown } | undefined;
  if (json && typeof json.message === 'string') return json.message;
  if (json && typeof json.error === 'string') return json.error;
  return body.trim() || undefined;
}
