// A bad configuration value: the server refuses to start with this message, which names the flag.
export class ConfigError extends Error {
  override name = 'ConfigError';
}
