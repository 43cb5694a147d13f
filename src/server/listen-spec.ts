// The --listen grammar: `inet:HOST:PORT` (HOST may be `[v6]` or `*`), `unix:PATH`; plus the
// descriptors a supervisor hands over (systemd Accept=no), which have no textual form.

export type ListenSpec =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'unix'; path: string }
  /** A listening socket inherited from a supervisor (systemd Accept=no); `name` from LISTEN_FDNAMES. */
  | { kind: 'fd'; fd: number; name: string };

export class ListenSpecError extends Error {
  override readonly name = 'ListenSpecError';
}

const MAX_PORT = 65535;

export function parseListenSpec(spec: string): ListenSpec {
  if (spec.startsWith('unix:') && spec.length > 5) return { kind: 'unix', path: spec.slice(5) };
  const m = /^inet6?:(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(spec);
  if (m) {
    const port = Number(m[3]);
    if (port < 1 || port > MAX_PORT) throw new ListenSpecError(`bad port in --listen ${spec}`);
    const host = m[1] ?? m[2]!;
    return { kind: 'inet', host: host === '*' || host === '' ? '::' : host, port };
  }
  throw new ListenSpecError(`--listen wants inet:HOST:PORT or unix:PATH, not "${spec}"`);
}

/** How a spec is named in log lines. */
export function describeSpec(s: ListenSpec): string {
  switch (s.kind) {
    case 'unix':
      return `unix:${s.path}`;
    case 'inet':
      return `inet:${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`;
    case 'fd':
      return `fd ${s.fd}${s.name !== '' ? ` (${s.name})` : ''}`;
  }
}
