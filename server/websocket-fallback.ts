// WebSocket fallback for clients without WebRTC: the client sends JPEG frames (binary messages) and
// receives restyled JPEG frames; text messages carry the same control JSON as the DataChannel.
// Same engine and model runtime as WebRTC sessions; JPEG work runs in sharp's (libuv) threads.
import type { IncomingMessage, Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import sharp from 'sharp';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Restyler } from '../models/restyle-types.js';
import { nowMs } from '../frame/clock.js';
import { StreamEngine } from '../realtime/stream-engine.js';
import type { ServerConfig } from './config.js';
import { answerControlMessage } from './control-message.js';
import { checkBearer, tokenMatches } from './http-app.js';
import type { SessionManager } from './sessions.js';

const MAX_JPEG_BYTES = 4 * 1024 * 1024;
/** Stop producing output for a client whose socket is this far behind; latest frame wins there too. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export interface WebSocketFallbackDeps {
  config: ServerConfig;
  restyler: Restyler;
  sessions: SessionManager;
  logger: Logger;
}

export function attachWebSocketFallback(server: Server, deps: WebSocketFallbackDeps): { close(): Promise<void>; readonly size: number } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_JPEG_BYTES });
  const live = new Set<WebSocket>();
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') {
      socket.destroy();
      return;
    }
    // With --token, the upgrade needs the token: as `?token=` (a browser cannot set headers on a
    // WebSocket) or as `Authorization: Bearer`. The URL is never logged, so the token is not either.
    const token = deps.config.token;
    if (token !== undefined) {
      const presented = url.searchParams.get('token');
      const verdict =
        presented !== null ? (tokenMatches(token, presented) ? 'ok' : 'wrong') : checkBearer(token, request.headers.authorization);
      if (verdict !== 'ok') {
        const head = verdict === 'missing' ? '401 Unauthorized\r\nWWW-Authenticate: Bearer realm="sds"' : '403 Forbidden';
        socket.on('error', () => socket.destroy());
        socket.once('finish', () => socket.destroy());
        socket.end(`HTTP/1.1 ${head}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      if (live.size + deps.sessions.size >= deps.config.maxSessions) {
        ws.close(1013, 'server is full; retry later');
        return;
      }
      live.add(ws);
      ws.once('close', () => live.delete(ws));
      serveJpegStream(ws, deps);
    });
  };
  server.on('upgrade', onUpgrade);
  return {
    get size() {
      return live.size;
    },
    close: async () => {
      server.off('upgrade', onUpgrade);
      for (const ws of live) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

function serveJpegStream(ws: WebSocket, deps: WebSocketFallbackDeps): void {
  const { restyler, config } = deps;
  const id = `ws-${randomBytes(12).toString('base64url')}`;
  const log = deps.logger.child({ session: id });
  const { width, height } = config.resolution ?? restyler.info;
  const limits = deps.sessions.limits();
  let seq = 0;
  const send = (value: object): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(value));
  };
  const engine = new StreamEngine({
    streamId: id,
    restyler,
    budgetMs: config.budgetMs,
    params: deps.sessions.defaultParams(),
    onOutput: (frame) => {
      if (ws.readyState !== ws.OPEN || ws.bufferedAmount > MAX_BUFFERED_BYTES) return;
      const { data, width: w, height: h } = frame.image;
      sharp(data, { raw: { width: w, height: h, channels: 3 } })
        .jpeg({ quality: 80 })
        .toBuffer()
        .then((jpeg) => {
          if (ws.readyState !== ws.OPEN) return;
          ws.send(jpeg);
          engine.frameSent(frame, nowMs());
        })
        .catch((error: Error) => log.warn({ err: error.message }, 'jpeg encode failed'));
    },
    onError: (error) => send({ type: 'error', message: `restyle failed: ${error.message}` }),
  });
  send({ type: 'hello', session: id, width, height, params: engine.currentParams });
  log.info('websocket session started');

  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      send(answerControlMessage(data.toString(), engine, limits));
      return;
    }
    const arrivalMs = nowMs();
    const frameSeq = seq++;
    const jpeg = Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]);
    sharp(jpeg, { failOn: 'error' })
      .resize(width, height, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true })
      .then(({ data: rgb, info }) => {
        if (info.channels !== 3) throw new Error(`expected RGB, got ${info.channels} channels`);
        engine.push({
          // A copy, not a view: the buffer is transferred to the inference worker and must own its memory.
          image: { width, height, data: new Uint8Array(rgb) },
          rtpTimestamp: (frameSeq * 3000) >>> 0,
          arrivalMs,
          seq: frameSeq,
          stages: [{ name: 'decode', startMs: arrivalMs, endMs: nowMs() }],
        });
      })
      .catch((error: Error) => send({ type: 'error', message: `not a decodable JPEG frame: ${error.message}` }));
  });
  ws.once('close', () => {
    engine.close();
    log.info('websocket session closed');
  });
  ws.on('error', (error) => log.warn({ err: error.message }, 'websocket error'));
}
