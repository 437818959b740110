// WHEP playback (draft-ietf-wish-whep): a viewer POSTs a recvonly offer to /whep/<name> and gets an answer
// and a viewer resource (/viewers/<id>) it DELETEs to leave. Routes translate HTTP to SessionManager calls;
// the media path (shared encoder, fan-out) lives in stream/.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerConfig } from './config.js';
import { hasContentType, httpError, sendError, withIceLinks } from './http-responses.js';
import type { SessionManager } from './sessions.js';

export interface WhepDeps {
  config: ServerConfig;
  sessions: SessionManager;
  /** May this request see ICE server credentials? */
  authorized(request: FastifyRequest): boolean;
}

/** A fastify plugin; it inherits the app's auth and CORS hooks and its error handler. */
export const whepRoutes =
  (deps: WhepDeps): FastifyPluginAsync =>
  async (app) => {
    const { sessions, config } = deps;

    // An unknown (not yet live) name answers 404 rather than holding the request open: the overlay page and
    // other players retry with backoff, and no server state is kept for a viewer of nothing.
    app.post<{ Params: { name: string } }>('/whep/:name', async (request, reply) => {
      if (!hasContentType(request.headers, 'application/sdp')) {
        return sendError(reply, httpError(415, 'WHEP offers must have Content-Type: application/sdp'));
      }
      const offer = request.body;
      if (typeof offer !== 'string' || offer.trim() === '') return sendError(reply, httpError(400, 'empty SDP offer'));
      const { id, viewer } = await sessions.createViewer(request.params.name, offer);
      return withIceLinks(reply, config.iceServers)
        .code(201)
        .header('Location', `${config.publicUrl ?? ''}/viewers/${id}`)
        .header('ETag', `"${id}"`)
        .type('application/sdp')
        .send(viewer.answerSdp);
    });

    app.options('/whep/:name', async (request, reply) => {
      if (deps.authorized(request)) withIceLinks(reply, config.iceServers);
      return reply.code(204).header('Accept-Post', 'application/sdp').send();
    });

    app.delete<{ Params: { id: string } }>('/viewers/:id', async (request, reply) => {
      if (!(await sessions.closeViewer(request.params.id, 'DELETE by viewer'))) return sendError(reply, notFound());
      return reply.code(200).send();
    });

    app.get<{ Params: { id: string } }>('/viewers/:id', async (request, reply) => {
      const found = sessions.getViewer(request.params.id);
      if (!found) return sendError(reply, notFound());
      return { stream: found.session.name, ...found.viewer.stats() };
    });

    // Same choice as for WHIP sessions: no trickle ICE, no ICE restart, so PATCH is not allowed (405 + Allow).
    app.patch<{ Params: { id: string } }>('/viewers/:id', async (request, reply): Promise<FastifyReply> => {
      if (!sessions.getViewer(request.params.id)) return sendError(reply, notFound());
      void reply.header('Allow', 'GET, DELETE');
      return sendError(reply, httpError(405, 'trickle ICE and ICE restarts are not supported; send a complete offer'));
    });
  };

function notFound(): Error & { status: number } {
  return httpError(404, 'no such viewer (it left, its stream ended, or the id is wrong)');
}
