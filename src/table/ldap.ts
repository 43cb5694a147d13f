// ldap:FILE, Postfix's ldap_table(5) with `ldapts`. The key goes into query_filter escaped
// as dict_ldap.c's rfc2254_quote() escapes it (`*`, `(`, `)`, `\` as \XX; NUL too, which
// Postfix cannot receive) and into search_base as rfc2253_quote() does; values of the
// result attributes are joined with commas. Group and list expansion (special, leaf and
// terminal result attributes, DN and URL recursion, recursion_limit, expansion_limit,
// size_limit), dereferencing and referral chasing follow dict_ldap_get_values() step by
// step; the connection is set up in ldap-conn.ts. The server list is tried in order, as
// libldap tries it for Postfix.
import { FilterParser, NoSuchObjectError, type Entry, type Filter } from 'ldapts';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { StoreError, type LookupTable, type StoreLog } from '../core/contract';
import type { OpenNested, TableSettings } from './driver';
import { differs, openCfTable, secret, splitList, type CfFile } from './cf';
import { checkDomain, closeDomainTables, expand, parseTemplate, Results, templates, type Templates } from './expand';
import { connectTimeout, ConnPool, HostList } from './hosts';
import { ldapConnect, type LdapConn, type LdapConnSpec } from './ldap-conn';

const hex = (c: string): string =>
  [...Buffer.from(c, 'utf8')].map((b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

/** rfc2254_quote(), plus NUL as RFC 4515 asks. */
export function filterQuote(s: string): string {
  return s.replace(/[*()\\\0]/g, hex);
}

/** rfc2253_quote(): the key in search_base. */
export function dnQuote(s: string): string {
  return s.replace(/[ \t"#+,;<>\\]/g, hex);
}

type Scope = 'sub' | 'one' | 'base';
const SCOPES: Record<string, Scope> = { sub: 'sub', one: 'one', base: 'base' };
const DEREF = ['never', 'search', 'find', 'always'] as const;
/** libldap's LDAP_OPT_REFHOPLIMIT default: referrals followed at most this deep. */
const REFERRAL_HOPS = 5;

/** attrdesc_subtype(): 1 when `a2` is `a1` or a subtype of it, -1 when `a1` is a subtype of `a2`, else 0. */
export function attrSubtype(a1: string, a2: string): number {
  const x = a1.toLowerCase();
  const y = a2.toLowerCase();
  if (x === y || y.startsWith(`${x};`)) return 1;
  if (x.startsWith(`${y};`)) return -1;
  return 0;
}

/** An LDAP URL as ldap_url_parse() reads it for Postfix: the host is not used, scope defaults to base. */
export interface LdapUrl {
  readonly scheme: string;
  readonly hostport: string;
  readonly dn: string;
  readonly attrs: string[];
  readonly scope: Scope;
  readonly filter: string;
}

export const isLdapUrl = (v: string): boolean => /^ldap[si]?:\/\//i.test(v);

/** RFC 4516 `scheme://hostport/dn?attrs?scope?filter?exts`, percent-decoded; null when malformed. */
export function parseLdapUrl(u: string): LdapUrl | null {
  const m = /^(ldap[si]?):\/\/([^/?]*)(?:\/([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?(.*))?)?)?)?)?$/i.exec(u);
  if (!m) return null;
  try {
    const dec = (x: string | undefined): string => decodeURIComponent(x ?? '');
    const scopeText = dec(m[5]).toLowerCase();
    const scope = scopeText === '' ? 'base' : SCOPES[scopeText];
    if (scope === undefined) return null;
    return { scheme: m[1]!.toLowerCase(), hostport: dec(m[2]), dn: dec(m[3]), attrs: dec(m[4]).split(',').filter((a) => a !== ''), scope, filter: dec(m[6]) || '(objectclass=*)' };
  } catch {
    return null;
  }
}

const parenthesized = (f: string): string => (f.startsWith('(') ? f : `(${f})`);

/** A lookup that failed the way Postfix's does (dict->error set): TEMP, and not the host's fault. */
class Failed extends Error {}

/** An entry's values of exactly `name` (ldap_get_values_len), null when the entry has none. */
function valuesOf(entry: Entry, name: string): string[] | null {
  const n = name.toLowerCase();
  for (const [k, v] of Object.entries(entry)) {
    if (k === 'dn' || k.toLowerCase() !== n) continue;
    const vals = (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
    return vals.length > 0 ? vals : null;
  }
  return null;
}

export class LdapTable implements LookupTable {
  private readonly t: Templates;
  private readonly base: string;
  private readonly dynamicBase: boolean;
  private readonly scope: Scope;
  /** terminal, leaf, ordinary, then special result attributes, as dict_ldap_open() lists them. */
  private readonly attrs: string[];
  private readonly numTerminal: number;
  private readonly numLeaf: number;
  private readonly numAttributes: number;
  private readonly recursionLimit: number;
  private readonly sizeLimit: number;
  private readonly timeLimit: number;
  private readonly deref: (typeof DEREF)[number];
  private readonly chase: boolean;
  private readonly spec: Omit<LdapConnSpec, 'url'>;
  private readonly hosts: HostList<ConnPool<LdapConn>>;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: TableSettings, private readonly log: StoreLog, open: OpenNested) {
    this.timeoutMs = cfg.mapTimeoutMs;
    const bindText = cf.str('bind', 'yes', 1).toLowerCase();
    const BINDS: Record<string, LdapConnSpec['bind']> = { yes: 'simple', simple: 'simple', no: 'none', none: 'none', sasl: 'sasl' };
    const bind = BINDS[bindText] ?? cf.fail('bind', `want yes, no or sasl, not "${bindText}"`);
    let query = cf.str('query_filter', '(mailacceptinggeneralid=%s)', 1);
    const resultFormat = cf.has('result_format') ? cf.str('result_format', '%s', 1) : cf.str('result_filter', '%s', 1);
    this.base = cf.str('search_base', '');
    this.t = templates(cf, 'query_filter', query, resultFormat, cf.has('result_format') ? 'result_format' : 'result_filter', log, open);
    // the base is a template too, in the same context (db_common_parse() of search_base)
    this.dynamicBase = parseTemplate(this.t.ctx, this.base, true, cf.where('search_base'));
    if (!query.startsWith('(')) query = `(${query})`;
    this.t = { ...this.t, query };
    const scope = SCOPES[cf.str('scope', 'sub', 1).toLowerCase()];
    if (scope === undefined) cf.fail('scope', 'want sub, one or base');
    this.scope = scope;
    const terminal = splitList(cf.str('terminal_result_attribute', ''));
    const leaf = splitList(cf.str('leaf_result_attribute', ''));
    const ordinary = splitList(cf.str('result_attribute', 'maildrop'));
    const special = splitList(cf.str('special_result_attribute', ''));
    this.attrs = [...terminal, ...leaf, ...ordinary, ...special];
    this.numTerminal = terminal.length;
    this.numLeaf = leaf.length;
    this.numAttributes = terminal.length + leaf.length + ordinary.length;
    this.recursionLimit = cf.int('recursion_limit', 1000, 1);
    // Postfix's default size limit is the expansion limit
    this.sizeLimit = cf.int('size_limit', this.t.expansionLimit, 0);
    // Postfix's search timeout, sent as the server's time limit; smmapd_maps_timeout bounds the whole lookup
    this.timeLimit = cf.int('timeout', 10, 0);
    this.deref = DEREF[cf.int('dereference', 0, 0, 3)]!;
    this.chase = cf.bool('chase_referrals', false);
    if (this.chase) differs(cf, 'chase_referrals', 'continuation references are followed, but a search whose base lies under a referral answers TEMP (Postfix follows that referral too)', log);
    const port = cf.int('server_port', 389, 1, 65535);
    const names = splitList(cf.str('server_host', 'localhost', 1));
    const urls = names.map((h) => {
      if (isLdapUrl(h)) return h.replace(/\/+$/, '');
      return `ldap://${h.includes(':') ? h : `${h}:${port}`}`;
    });
    const startTls = cf.bool('start_tls', false);
    // LDAPv3 unless asked otherwise (Debian's Postfix 3.7 binds with v3 when version is not
    // set); any URL other than ldap:// and STARTTLS need v3 (dict_ldap_open())
    let version = cf.int('version', 3, 2, 3) as 2 | 3;
    if (startTls || urls.some((u) => !/^ldap:/i.test(u))) version = 3;
    const tls = this.tlsOptions(cf, startTls || urls.some((u) => /^ldaps:/i.test(u)));
    let saslMech: LdapConnSpec['saslMech'] = '';
    let saslAuthz = '';
    if (bind === 'sasl') {
      const mechs = splitList(cf.str('sasl_mechs', '')).map((m) => m.toUpperCase());
      const known = mechs.filter((m): m is 'EXTERNAL' | 'PLAIN' => m === 'EXTERNAL' || m === 'PLAIN');
      if (known.length === 0 || known.length !== mechs.length) cf.fail('sasl_mechs', `smmapd speaks SASL EXTERNAL and PLAIN, not "${mechs.join(' ')}"`);
      saslMech = known[0]!;
      // libldap's default security properties (noplain) refuse PLAIN without TLS or ldapi for Postfix
      if (saslMech === 'PLAIN' && !startTls && urls.some((u) => /^ldap:/i.test(u))) {
        cf.fail('sasl_mechs', 'PLAIN over ldap:// without start_tls sends the password in the clear (libldap refuses it for Postfix too)');
      }
      saslAuthz = cf.str('sasl_authz_id', '');
      cf.str('sasl_realm', '');
      if (cf.int('sasl_minssf', 0, 0, 4096) > 0) cf.fail('sasl_minssf', 'a minimum SASL security strength is not supported by smmapd (use TLS or ldapi://)');
    }
    this.spec = {
      timeoutMs: cfg.mapTimeoutMs,
      connectTimeoutMs: connectTimeout(cfg, urls.length),
      startTls,
      tls,
      bind,
      bindDn: bind === 'none' ? '' : cf.str('bind_dn', ''),
      bindPw: bind === 'none' ? '' : secret(cf, 'bind_pw', 'bind_pw_file'),
      version,
      saslMech,
      saslAuthz,
      deref: this.deref,
    };
    const pools = urls.map(
      (url) =>
        new ConnPool<LdapConn>(
          cfg.mapPoolSize,
          () => ldapConnect({ ...this.spec, url }),
          (c) => void c.client.unbind().catch(() => undefined),
          (c) => c.client.isConnected,
        ),
    );
    this.hosts = new HostList('ldap', pools, urls, log);
  }

  /** The TLS parameters; `used`: some connection speaks TLS, so the certificate check matters. */
  private tlsOptions(cf: CfFile, used: boolean): ConnectionOptions {
    const read = (param: string, f: string): Buffer => {
      try {
        return readFileSync(f);
      } catch (e) {
        return cf.fail(param, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    const file = (param: string): Buffer | undefined => {
      const f = cf.str(param, '');
      return f === '' ? undefined : read(param, f);
    };
    const ca: Buffer[] = [];
    const caFile = file('tls_ca_cert_file');
    if (caFile) ca.push(caFile);
    // every certificate file in the directory, as libldap with GnuTLS (Debian's) loads it
    const dir = cf.str('tls_ca_cert_dir', '');
    if (dir !== '') {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (e) {
        return cf.fail('tls_ca_cert_dir', `cannot read ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      for (const n of names.sort()) {
        const p = join(dir, n);
        if (statSync(p, { throwIfNoEntry: false })?.isFile()) ca.push(read('tls_ca_cert_dir', p));
      }
    }
    // deliberate: Postfix's default is no (no check at all); smmapd checks unless told not to
    if (used && !cf.has('tls_require_cert')) {
      differs(cf, 'tls_require_cert', "not set: smmapd checks the server's certificate, Postfix's default is not to (set tls_require_cert = no for that)", this.log);
    }
    return { ca: ca.length > 0 ? ca : undefined, cert: file('tls_cert'), key: file('tls_key'), rejectUnauthorized: cf.bool('tls_require_cert', true) };
  }

  private expandBaseAndFilter(key: string): { base: string; filter: string } | null {
    if (!checkDomain(this.t.ctx, key)) return null;
    const base: string[] = [];
    if (this.base !== '' && !expand(this.t.ctx, this.base, key, null, base, dnQuote)) return null;
    const filter: string[] = [];
    if (!expand(this.t.ctx, this.t.query, key, null, filter, filterQuote)) return null;
    return { base: base.join(''), filter: filter.join('') };
  }

  describe(key: string): string | null {
    const q = this.expandBaseAndFilter(key);
    if (q === null) return null;
    return `search base "${q.base}" scope ${this.scope} filter ${q.filter} attributes ${this.attrs.join(',')}`;
  }

  async lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    if (!(await checkDomain(this.t.ctx, key, true))) return null;
    const q = this.expandBaseAndFilter(key);
    if (q === null) return null;
    // parsed here, so that a filter ldapts cannot read is the table's fault, never a host's
    let filter: Filter;
    try {
      filter = FilterParser.parseString(q.filter);
    } catch (e) {
      this.log(`ldap: query_filter ${q.filter}: ${(e as Error).message}`, 'error', 'ldap: query_filter');
      throw new StoreError('ldap: bad query_filter', { cause: e });
    }
    const out = await this.hosts.run((pool, _i, hostUntil) =>
      pool.use(async (c): Promise<{ value: string | null } | { failed: string }> => {
        const res = new Results(this.t, key);
        try {
          const entries = await this.search(c, q.base, this.scope, filter, this.attrs);
          if (entries === null) {
            // no such base: not found when the base depends on the key, else the table is broken
            if (this.dynamicBase) return { value: null };
            return { failed: 'ldap: search base not found' };
          }
          await this.getValues(c, entries, res, key, 1);
        } catch (e) {
          if (e instanceof Failed || e instanceof StoreError) return { failed: e.message };
          throw e;
        }
        return { value: res.value() };
      }, hostUntil),
      until,
    );
    if ('failed' in out) throw new StoreError(out.failed);
    return out.value;
  }

  /**
   * One search as search_st() runs it: null for noSuchObject, entries otherwise; a result code
   * other than success (sizeLimitExceeded included) fails the lookup; continuation references
   * are followed when chase_referrals is on.
   */
  private async search(c: LdapConn, base: string, scope: Scope, filter: Filter, attributes: string[], hops = 0): Promise<Entry[] | null> {
    let entries: Entry[];
    try {
      entries = (await c.client.search(base, { scope, filter, attributes, sizeLimit: this.sizeLimit, timeLimit: this.timeLimit })).searchEntries;
    } catch (e) {
      if (e instanceof NoSuchObjectError) return null;
      // the server answered with an LDAP result code: the search is wrong, not the host
      if (typeof (e as { code?: unknown }).code === 'number') throw new Failed(`ldap: search error: ${(e as Error).message}`);
      throw e;
    }
    if (c.status === 4) {
      this.log(`ldap: query size limit (${this.sizeLimit}) exceeded`, 'error', 'ldap: size limit');
      throw new Failed('ldap: size limit exceeded');
    }
    if (!this.chase || c.refs.length === 0) return entries;
    if (hops >= REFERRAL_HOPS) throw new Failed('ldap: referral hop limit exceeded');
    for (const ref of c.refs) {
      const u = parseLdapUrl(ref);
      if (u === null || u.scheme === 'ldapi') throw new Failed(`ldap: bad referral ${ref}`);
      const rc = await ldapConnect({ ...this.spec, url: `${u.scheme}://${u.hostport}`, bind: 'none', startTls: false }).catch((e: unknown) => {
        throw new Failed(`ldap: referral ${ref}: ${(e as Error).message}`);
      });
      try {
        const f = /\?[^?]*\?[^?]*\?./.test(ref) ? FilterParser.parseString(parenthesized(u.filter)) : filter;
        const scopeGiven = /^[^?]*\?[^?]*\?[^?]/.test(ref);
        const more = await this.search(rc, u.dn || base, scopeGiven ? u.scope : scope, f, attributes, hops + 1);
        if (more !== null) entries = entries.concat(more);
      } finally {
        void rc.client.unbind().catch(() => undefined);
      }
    }
    return entries;
  }

  /** url_attrs(): the URL's attributes that are result attributes (all of ours when it names none); null: skip the URL. */
  private urlAttrs(u: LdapUrl): string[] | null {
    if (u.attrs.length === 0) return this.attrs;
    const out: string[] = [];
    for (const a1 of u.attrs) {
      for (const a2 of this.attrs) {
        const rel = attrSubtype(a1, a2);
        if (rel > 0) out.push(a2);
        else if (rel < 0) out.push(a1);
      }
    }
    return out.length > 0 ? out : null;
  }

  /** dict_ldap_get_values(): the result values of `entries`, recursing through special attributes. */
  private async getValues(c: LdapConn, entries: Entry[], res: Results, key: string, recursion: number): Promise<void> {
    // as in dict_ldap.c these carry over from one entry to the next when an entry has none of the attributes
    let isLeaf = true;
    let isTerminal = false;
    let count = 0;
    for (const entry of entries) {
      if (this.sizeLimit > 0 && ++count > this.sizeLimit) throw new Failed('ldap: size limit exceeded');
      for (let i = 0; i < this.numTerminal; i++) {
        const v = valuesOf(entry, this.attrs[i]!);
        if (v === null) continue;
        isTerminal = true;
        break;
      }
      if (!isTerminal && this.numLeaf > 0) {
        for (let i = this.numAttributes; i < this.attrs.length; i++) {
          const v = valuesOf(entry, this.attrs[i]!);
          if (v === null) continue;
          isLeaf = false;
          break;
        }
      }
      for (const attr of Object.keys(entry)) {
        if (attr === 'dn') continue;
        const vals = valuesOf(entry, attr);
        if (vals === null) continue;
        let i = this.attrs.findIndex((a) => attrSubtype(a, attr) > 0);
        if (i < 0) i = this.attrs.length;
        if (i < this.numAttributes || isTerminal) {
          if ((isTerminal && i >= this.numTerminal) || (!isLeaf && i < this.numTerminal + this.numLeaf)) continue;
          for (const v of vals) res.add(v);
        } else if (i < this.attrs.length) {
          if (recursion >= this.recursionLimit) {
            this.log(`ldap: recursion limit (${this.recursionLimit}) exceeded for ${attr}=${vals[0]}`, 'error', 'ldap: recursion limit');
            throw new Failed('ldap: recursion limit exceeded');
          }
          for (const v of vals) await this.expandSpecial(c, v, res, key, recursion);
        }
      }
    }
  }

  /** One value of a special result attribute: a DN or an LDAP URL to search, then recurse. */
  private async expandSpecial(c: LdapConn, v: string, res: Results, key: string, recursion: number): Promise<void> {
    let entries: Entry[] | null;
    if (isLdapUrl(v)) {
      const u = parseLdapUrl(v);
      if (u === null) throw new Failed(`ldap: malformed URL ${v}`);
      const attrs = this.urlAttrs(u);
      if (attrs === null) return;
      let f: Filter;
      try {
        f = FilterParser.parseString(parenthesized(u.filter));
      } catch {
        throw new Failed(`ldap: bad filter in URL ${v}`);
      }
      entries = await this.search(c, u.dn, u.scope, f, attrs);
    } else {
      entries = await this.search(c, v, 'base', FilterParser.parseString('(objectclass=*)'), this.attrs);
    }
    // a DN that is not there: as though it had no result attributes (Postfix warns and goes on)
    if (entries === null) return void this.log(`ldap: DN ${v} not found, skipping`, 'warning', 'ldap: DN not found');
    await this.getValues(c, entries, res, key, recursion + 1);
  }

  hostStates(): ReadonlyArray<{ readonly name: string; readonly failures: number }> {
    return this.hosts.states;
  }

  close(): void {
    closeDomainTables(this.t.ctx);
    for (const p of this.hosts.hosts) p.close();
  }
}

export function openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable {
  return openCfTable(file, 'ldap', log, (cf) => new LdapTable(cf, cfg, log, open));
}
