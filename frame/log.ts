// The two log shapes the server's parts take, both pino's (a pino Logger or a child passes as either), kept
// at the bottom so every folder logs the same way: structured (a context object, then the message) on
// the main thread, and plain lines where a message crosses from an inference worker thread as a string.
export interface Log {
  info(context: object, message?: string): void;
  warn(context: object, message?: string): void;
  error?(context: object, message?: string): void;
}

/** Plain lines: what the model runtime and its worker threads log (a worker posts each line as a string). */
export interface LineLog {
  info(message: string): void;
  warn(message: string): void;
}
