// The one structured-log shape the server's parts take (pino's, so a pino Logger or a child passes as
// is): a context object, then the message. Kept at the bottom so every folder logs the same way.
export interface Log {
  info(context: object, message?: string): void;
  warn(context: object, message?: string): void;
  error?(context: object, message?: string): void;
}
