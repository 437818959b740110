// The JSON the page exchanges with the server: the model description from GET /api/model and the
// messages on the `control` DataChannel. Incoming messages are checked here, at the edge.

export interface ModelInfo {
  name: string;
  width: number;
  height: number;
  conditioning: 'styles' | 'text';
  styles: { id: string; label: string }[];
  steps: number[];
  defaults: { style: string; strength: number; steps: number };
}

export interface SessionParams {
  style: string;
  prompt: string;
  strength: number;
  steps: number;
  seed: number;
  consistency: number;
  /** Reuse the previous output while the input barely changes. */
  similarityFilter: boolean;
}

export interface ServerStats {
  inputFps: number;
  outputFps: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  droppedFrames: number;
  deadlineMisses: number;
}

export type ClientMessage = { type: 'params'; params: Partial<SessionParams> };

export type ServerMessage =
  | { type: 'params'; params: Partial<SessionParams> }
  | ({ type: 'stats' } & Partial<ServerStats>)
  | { type: 'error'; message: string }
  /** The server ended the session, and why; `retry`: for its own sake (shutdown, drain), so publish again. */
  | { type: 'closed'; reason: string; retry: boolean };

export async function fetchModelInfo(): Promise<ModelInfo> {
  const response = await fetch('/api/model', { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`GET /api/model answered HTTP ${response.status}`);
  const info = (await response.json()) as ModelInfo;
  if (!Array.isArray(info.styles) || !Array.isArray(info.steps) || !info.defaults) {
    throw new Error('GET /api/model returned an unexpected document');
  }
  return info;
}

export function parseServerMessage(data: unknown): ServerMessage | undefined {
  if (typeof data !== 'string') return undefined;
  let message: unknown;
  try {
    message = JSON.parse(data);
  } catch {
    return undefined;
  }
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case 'params':
      return typeof m.params === 'object' && m.params !== null ? { type: 'params', params: m.params as Partial<SessionParams> } : undefined;
    case 'stats':
      return m as ServerMessage;
    case 'error':
      return { type: 'error', message: typeof m.message === 'string' ? m.message : 'The server reported an error.' };
    case 'closed':
      return { type: 'closed', reason: typeof m.reason === 'string' ? m.reason : 'the session ended', retry: m.retry === true };
    default:
      return undefined;
  }
}
