// smmapd_allow_from: who may connect (as Cyrus master's tcpwrappers decide for its services).
// Addresses and CIDR ranges, IPv4 and IPv6; an IPv4 client on a dual-stack socket shows up as
// ::ffff:a.b.c.d and is matched as the IPv4 address it is. Pure: no sockets, no imports.

/** An address as 16 bytes (IPv4 as ::ffff:a.b.c.d), or null when it is not one. */
export function addressBytes(text: string): Uint8Array | null {
  const v4 = ipv4(text);
  if (v4 !== null) return mapped(v4);
  return ipv6(text.replace(/%.*$/, '')); // a zone (fe80::1%eth0) is not part of the address
}

function ipv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out.push(Number(p));
  }
  return out;
}

function mapped(v4: readonly number[]): Uint8Array {
  const b = new Uint8Array(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(v4, 12);
  return b;
}

function ipv6(text: string): Uint8Array | null {
  if (!text.includes(':')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      // the last part may be a dotted IPv4 address (::ffff:192.0.2.1)
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = ipv4(p);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const b = new Uint8Array(16);
  all.forEach((g, i) => {
    b[2 * i] = g >> 8;
    b[2 * i + 1] = g & 0xff;
  });
  return b;
}

interface Range {
  readonly net: Uint8Array;
  readonly bits: number;
}

function inRange(addr: Uint8Array, r: Range): boolean {
  const whole = r.bits >> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== r.net[i]) return false;
  const rest = r.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[whole]! & mask) === (r.net[whole]! & mask);
}

export class AllowListError extends Error {}

/** The parsed list; an empty list allows everyone (the option unset). */
export class AllowList {
  private constructor(
    private readonly ranges: readonly Range[],
    /** As written, for log lines. */
    readonly text: string,
  ) {}

  /** `smmapd_allow_from`'s value: addresses and ADDR/BITS ranges, separated by spaces or commas. */
  static parse(text: string): AllowList {
    const ranges: Range[] = [];
    for (const item of text.split(/[\s,]+/).filter((s) => s !== '')) {
      const slash = item.indexOf('/');
      const addrText = slash < 0 ? item : item.slice(0, slash);
      const net = addressBytes(addrText);
      if (net === null) throw new AllowListError(`"${item}" is not an IPv4 or IPv6 address or ADDR/BITS range`);
      const isV4 = ipv4(addrText) !== null;
      const max = isV4 ? 32 : 128;
      const bitsText = slash < 0 ? String(max) : item.slice(slash + 1);
      if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) throw new AllowListError(`"${item}": want a prefix length from 0 to ${max}`);
      // an IPv4 range is a range of the mapped addresses: 96 bits of prefix first
      ranges.push({ net, bits: Number(bitsText) + (isV4 ? 96 : 0) });
    }
    return new AllowList(ranges, ranges.length === 0 ? '' : text.trim());
  }

  /** No list: anyone may connect. */
  get open(): boolean {
    return this.ranges.length === 0;
  }

  /** May a client at `address` (as the socket reports it) connect? An unparsable address may not. */
  allows(address: string): boolean {
    if (this.ranges.length === 0) return true;
    const a = addressBytes(address);
    if (a === null) return false;
    return this.ranges.some((r) => inRange(a, r));
  }
}
