// The --listen grammar: `inet:HOST:PORT` (HOST may be `[v6]` or `*`), `unix:PATH`; plus the
// descriptors a supervisor hands over (systemd Accept=no), which have no textual form.

/** What a listener's clients speak: socketmap (Postfix, Sendmail) or Postfix's policy delegation. */
export type Protocol = 'socketmap' | 'policy';

export type ListenSpec = (
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'unix'; path: string }
  /** A listening socket inherited from a supervisor (systemd Accept=no); `name` from LISTEN_FDNAMES. */
  | { kind: 'fd'; fd: number; name: string }
) & { readonly proto: Protocol };

export class ListenSpecError extends Error {
  override readonly name = 'ListenSpecError';
}

const MAX_PORT = 65535;

export function parseListenSpec(spec: string, proto: Protocol = 'socketmap'): ListenSpec {
  if (spec.startsWith('unix:') && spec.length > 5) return { kind: 'unix', path: spec.slice(5), proto };
  const m = /^inet6?:(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(spec);
  if (m) {
    const port = Number(m[3]);
    if (port < 1 || port > MAX_PORT) throw new ListenSpecError(`bad port in --listen ${spec}`);
    const host = m[1] ?? m[2]!;
    return { kind: 'inet', host: host === '*' || host === '' ? '::' : host, port, proto };
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

/** The addresses of each protocol, for the start and "listening on" lines: socketmap ones bare (as always), policy ones marked. */
export function describeSpecs(specs: readonly ListenSpec[]): string {
  return specs.map((s) => (s.proto === 'policy' ? `${describeSpec(s)} (policy)` : describeSpec(s))).join(', ');
}
