// A configuration that cannot be served: the daemon exits 78 (EX_CONFIG) naming the line.
export class ConfigError extends Error {}
