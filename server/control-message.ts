// The control protocol shared by the WebRTC DataChannel and the WebSocket fallback: a client sends
// `{"type":"params","params":{...}}` as JSON text; the answer is the full accepted parameters or an
// error with a reason a person can act on.
import { ParamsError, parseParamsPatch, type ParamsLimits, type SessionParams } from '../realtime/params.js';
import type { RestyleEngine } from '../realtime/restyle-engine.js';

export type ControlReply = { type: 'params'; params: SessionParams } | { type: 'error'; message: string };

export function answerControlMessage(text: string, engine: RestyleEngine, limits: ParamsLimits): ControlReply {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    return { type: 'error', message: 'control messages must be JSON' };
  }
  if (typeof message !== 'object' || message === null || (message as { type?: unknown }).type !== 'params') {
    return { type: 'error', message: 'unknown control message type; expected "params"' };
  }
  try {
    return { type: 'params', params: engine.updateParams(parseParamsPatch((message as { params?: unknown }).params, limits)) };
  } catch (error) {
    return { type: 'error', message: error instanceof ParamsError ? error.message : 'invalid parameters' };
  }
}
