// Errors a publisher session can return, as values with an HTTP status and a message the caller can act on.
// The HTTP layer maps `status` to the response; nothing here knows about HTTP beyond the number.

export abstract class StreamError extends Error {
  abstract readonly status: number;
}

/** The offer is not a usable SDP (HTTP 400). The message says which part is wrong. */
export class SdpError extends StreamError {
  readonly status = 400;
  constructor(message: string) {
    super(`Invalid SDP offer: ${message}`);
    this.name = 'SdpError';
  }
}

/** The offer's video section has none of the codecs this server decodes (HTTP 415). */
export class UnsupportedCodecError extends StreamError {
  readonly status = 415;
  constructor(offered: string[], supported: string[]) {
    super(
      `No supported video codec in the offer (offered: ${offered.length ? offered.join(', ') : 'none'}); ` +
        `this server accepts ${supported.join(' or ')} — enable one of them in the publisher.`,
    );
    this.name = 'UnsupportedCodecError';
  }
}

/**
 * The offer passed validation but the WebRTC stack could not apply it (HTTP 400): almost always something in
 * the offer this stack does not support, so the message carries the stack's reason.
 */
export class NegotiationError extends StreamError {
  readonly status = 400;
  constructor(message: string) {
    super(`WebRTC could not apply the offer: ${message}`);
    this.name = 'NegotiationError';
  }
}

/** A codec could not be opened in this FFmpeg build (HTTP 500): a deployment problem, not the client's. */
export class CodecUnavailableError extends StreamError {
  readonly status = 500;
  constructor(message: string) {
    super(message);
    this.name = 'CodecUnavailableError';
  }
}
