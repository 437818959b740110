// WebSocket fallback for clients without WebRTC: the client sends JPEG frames (binary messages) and
// receives restyled JPEG frames; text messages carry the same control JSON as the DataChannel. The
// upgrade (and its token) is checked here; the stream is a session like a WHIP one (SessionManager.open:
// same admission and limits, listed under /sessions/<id>, ended by DELETE), with stream/websocket-jpeg.ts
// as its ingress and egress.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Restyler } from '../models/restyle-types.js';
import { WebSocketJpegEgress, WebSocketJpegIngress } from '../stream/websocket-jpeg.js';
import type { ServerConfig } from './config.js';
import { checkBearer, tokenMatches } from './api-routes.js';
import { CapacityError, type SessionManager } from './sessions.js';

const MAX_JPEG_BYTES = 4 * 1024 * 1024;

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
      live.add(ws);
      ws.once('close', () => live.delete(ws));
      ws.on('error', (error) => deps.logger.warn({ err: error.message }, 'websocket error'));
      openJpegStream(ws, request.socket.remoteAddress, deps).catch((error: Error) => {
        // Refused (capacity, per-client cap) or failed: say why, then close (a close reason is ≤ 123 bytes).
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'error', message: error.message }));
        ws.close(
          error instanceof CapacityError ? 1013 : 1011,
          error instanceof CapacityError ? 'server is full; retry later' : 'could not start the stream',
        );
      });
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

async function openJpegStream(ws: WebSocket, clientAddress: string | undefined, deps: WebSocketFallbackDeps): Promise<void> {
  const session = await deps.sessions.open({
    clientAddress,
    idPrefix: 'ws-',
    egress: (events, _size, logger) => new WebSocketJpegEgress(ws, events, logger),
    publisher: async (pipeline, link, { width, height }) =>
      new WebSocketJpegIngress(ws, {
        width,
        height,
        onFrame: (frame) => pipeline.push(frame),
        onText: (text) => link.session()?.handleControlMessage(text),
        onClosed: (reason) => link.close(reason),
      }),
  });
  // The socket may have closed while the session was being opened (its close event found no session yet).
  if (ws.readyState !== ws.OPEN) {
    await deps.sessions.close(session.id, 'websocket closed');
    return;
  }
  const { width, height } = deps.config.resolution ?? deps.restyler.info;
  session.publisher.sendData(JSON.stringify({ type: 'hello', session: session.id, width, height, params: session.engine.currentParams }));
}
