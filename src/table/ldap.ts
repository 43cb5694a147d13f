// ldap:FILE, Postfix's ldap_table(5) with `ldapts`. The key goes into query_filter escaped
// as dict_ldap.c's rfc2254_quote() escapes it (`*`, `(`, `)`, `\` as \XX; NUL too, which
// Postfix cannot receive) and into search_base as rfc2253_quote() does; values of the
// result attributes are joined with commas. Group and list expansion (special, leaf and
// terminal result attributes, DN and URL recursion, recursion_limit, size_limit) and
// referral chasing follow dict_ldap_get_values() step by step in ldap-expand.ts; the
// connection is set up in ldap-conn.ts. The server list is tried in order, as libldap
// tries it for Postfix.
import type { Filter } from 'ldapts';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { StoreError, type LookupTable, type StoreLog } from '../core/contract';
import type { OpenNested, TableSettings } from './driver';
import { differs, openCfTable, secret, splitList, type CfFile } from './cf';
import { checkDomain, expand, parseTemplate, Results, templates, type Templates } from './expand';
import { connectTimeout, ConnPool, HostList, HostTable } from './hosts';
import { ldapConnect, type LdapConn, type LdapConnSpec } from './ldap-conn';
import { parseFilter } from './ldap-filter';
import { Failed, getValues, isLdapUrl, SCOPES, search, type LdapSearchSpec, type Scope } from './ldap-expand';

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

const DEREF = ['never', 'search', 'find', 'always'] as const;

const BINDS: Record<string, LdapConnSpec['bind']> = { yes: 'simple', simple: 'simple', no: 'none', none: 'none', sasl: 'sasl' };

export class LdapTable extends HostTable<ConnPool<LdapConn>> implements LookupTable {
  protected readonly t: Templates;
  private readonly base: string;
  private readonly dynamicBase: boolean;
  private readonly scope: Scope;
  /** What the searches and the group expansion read (ldap-expand.ts). */
  private readonly spec: LdapSearchSpec;
  protected readonly hosts: HostList<ConnPool<LdapConn>>;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: TableSettings, private readonly log: StoreLog, open: OpenNested) {
    super();
    this.timeoutMs = cfg.mapTimeoutMs;
    const bindText = cf.str('bind', 'yes', 1).toLowerCase();
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
    const search = searchSpec(cf, this.t);
    const deref = DEREF[cf.int('dereference', 0, 0, 3)]!;
    const chase = cf.bool('chase_referrals', false);
    const port = cf.int('server_port', 389, 1, 65535);
    const urls = splitList(cf.str('server_host', 'localhost', 1)).map((h) => (isLdapUrl(h) ? h.replace(/\/+$/, '') : `ldap://${h.includes(':') ? h : `${h}:${port}`}`));
    const conn = connSpec(cf, cfg, bind, urls, deref, log);
    this.spec = { ...search, chase, conn, log };
    const pools = urls.map(
      (url) =>
        new ConnPool<LdapConn>(
          cfg.mapPoolSize,
          () => ldapConnect({ ...conn, url }),
          (c) => void c.client.unbind().catch(() => undefined),
          (c) => c.client.isConnected,
        ),
    );
    this.hosts = new HostList('ldap', pools, urls, log);
  }

  /** The search base and filter for `key`, quoted; null: Postfix does not search (NOTFOUND). */
  private expandBaseAndFilter(key: string): { base: string; filter: string } | null {
    const base: string[] = [];
    if (this.base !== '' && !expand(this.t.ctx, this.base, key, null, base, dnQuote)) return null;
    const filter: string[] = [];
    if (!expand(this.t.ctx, this.t.query, key, null, filter, filterQuote)) return null;
    return { base: base.join(''), filter: filter.join('') };
  }

  describe(key: string): string | null {
    const q = checkDomain(this.t.ctx, key) ? this.expandBaseAndFilter(key) : null;
    if (q === null) return null;
    return `search base "${q.base}" scope ${this.scope} filter ${q.filter} attributes ${this.spec.attrs.join(',')}`;
  }

  /**
   * One lookup, top-down: skip the keys Postfix skips, expand base and filter once; then on
   * the first server that answers (hosts.ts) acquire a connection, search, expand groups and
   * lists (ldap-expand.ts), release it; `until` is the lookup's one deadline, kept by the pool.
   */
  async lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    if (!(await checkDomain(this.t.ctx, key, true))) return null;
    const q = this.expandBaseAndFilter(key);
    if (q === null) return null;
    // parsed here, so that a filter ldapts cannot read is the table's fault, never a host's
    let filter: Filter;
    try {
      filter = parseFilter(q.filter);
    } catch (e) {
      this.log(`ldap: query_filter ${q.filter}: ${(e as Error).message}`, 'error', 'ldap: query_filter');
      throw new StoreError('ldap: bad query_filter', { cause: e });
    }
    const out = await this.hosts.run((pool, _i, hostUntil) => pool.use((c) => this.values(c, q.base, filter, key), hostUntil), until);
    if ('failed' in out) throw new StoreError(out.failed);
    return out.value;
  }

  /** The search on one connection and its values; a failure that is not the server's comes back as `failed`. */
  private async values(c: LdapConn, base: string, filter: Filter, key: string): Promise<{ value: string | null } | { failed: string }> {
    const res = new Results(this.t, key);
    try {
      const entries = await search(this.spec, c, base, this.scope, filter, this.spec.attrs);
      if (entries === null) {
        // no such base: not found when the base depends on the key, else the table is broken
        if (this.dynamicBase) return { value: null };
        return { failed: 'ldap: search base not found' };
      }
      await getValues(this.spec, c, entries, res, 1);
    } catch (e) {
      if (e instanceof Failed || e instanceof StoreError) return { failed: e.message };
      throw e;
    }
    return { value: res.value() };
  }
}

export function openTable(file: string, cfg: TableSettings, log: StoreLog, open: OpenNested): LookupTable {
  return openCfTable(file, 'ldap', log, (cf) => new LdapTable(cf, cfg, log, open));
}

/** The result attributes and limits (terminal, leaf, ordinary, then special, as dict_ldap_open() lists them). */
function searchSpec(cf: CfFile, t: Templates): Omit<LdapSearchSpec, 'chase' | 'conn' | 'log'> {
  const terminal = splitList(cf.str('terminal_result_attribute', ''));
  const leaf = splitList(cf.str('leaf_result_attribute', ''));
  const ordinary = splitList(cf.str('result_attribute', 'maildrop'));
  const special = splitList(cf.str('special_result_attribute', ''));
  return {
    attrs: [...terminal, ...leaf, ...ordinary, ...special],
    numTerminal: terminal.length,
    numLeaf: leaf.length,
    numAttributes: terminal.length + leaf.length + ordinary.length,
    recursionLimit: cf.int('recursion_limit', 1000, 1),
    // Postfix's default size limit is the expansion limit
    sizeLimit: cf.int('size_limit', t.expansionLimit, 0),
    // Postfix's search timeout, sent as the server's time limit; smmapd_maps_timeout bounds the whole lookup
    timeLimit: cf.int('timeout', 10, 0),
  };
}

/** How every connection of the table is set up: TLS, the protocol version, the bind. */
function connSpec(cf: CfFile, cfg: TableSettings, bind: LdapConnSpec['bind'], urls: string[], deref: LdapConnSpec['deref'], log: StoreLog): Omit<LdapConnSpec, 'url'> {
  const startTls = cf.bool('start_tls', false);
  // LDAPv3 unless asked otherwise (Debian's Postfix 3.7 binds with v3 when version is not
  // set); any URL other than ldap:// and STARTTLS need v3 (dict_ldap_open())
  let version = cf.int('version', 3, 2, 3) as 2 | 3;
  if (startTls || urls.some((u) => !/^ldap:/i.test(u))) version = 3;
  const tls = tlsOptions(cf, startTls || urls.some((u) => /^ldaps:/i.test(u)), log);
  const sasl = bind === 'sasl' ? saslOptions(cf, startTls, urls) : { saslMech: '' as const, saslAuthz: '' };
  return {
    timeoutMs: cfg.mapTimeoutMs,
    connectTimeoutMs: connectTimeout(cfg, urls.length),
    startTls,
    tls,
    bind,
    bindDn: bind === 'none' ? '' : cf.str('bind_dn', ''),
    bindPw: bind === 'none' ? '' : secret(cf, 'bind_pw', 'bind_pw_file'),
    version,
    ...sasl,
    deref,
  };
}

/** bind = sasl: the mechanism (EXTERNAL or PLAIN) and the authorization identity. */
function saslOptions(cf: CfFile, startTls: boolean, urls: string[]): Pick<LdapConnSpec, 'saslMech' | 'saslAuthz'> {
  const mechs = splitList(cf.str('sasl_mechs', '')).map((m) => m.toUpperCase());
  const known = mechs.filter((m): m is 'EXTERNAL' | 'PLAIN' => m === 'EXTERNAL' || m === 'PLAIN');
  if (known.length === 0 || known.length !== mechs.length) cf.fail('sasl_mechs', `smmapd speaks SASL EXTERNAL and PLAIN, not "${mechs.join(' ')}"`);
  const saslMech = known[0]!;
  // libldap's default security properties (noplain) refuse PLAIN without TLS or ldapi for Postfix
  if (saslMech === 'PLAIN' && !startTls && urls.some((u) => /^ldap:/i.test(u))) {
    cf.fail('sasl_mechs', 'PLAIN over ldap:// without start_tls sends the password in the clear (libldap refuses it for Postfix too)');
  }
  const saslAuthz = cf.str('sasl_authz_id', '');
  cf.str('sasl_realm', '');
  if (cf.int('sasl_minssf', 0, 0, 4096) > 0) cf.fail('sasl_minssf', 'a minimum SASL security strength is not supported by smmapd (use TLS or ldapi://)');
  return { saslMech, saslAuthz };
}

/** The TLS parameters; `used`: some connection speaks TLS, so the certificate check matters. */
function tlsOptions(cf: CfFile, used: boolean, log: StoreLog): ConnectionOptions {
  const file = (param: string): Buffer | undefined => {
    const f = cf.str(param, '');
    return f === '' ? undefined : cf.readFor(param, f, (p) => readFileSync(p));
  };
  const ca: Buffer[] = [];
  const caFile = file('tls_ca_cert_file');
  if (caFile) ca.push(caFile);
  // every certificate file in the directory, as libldap with GnuTLS (Debian's) loads it
  const dir = cf.str('tls_ca_cert_dir', '');
  if (dir !== '') {
    for (const n of cf.readFor('tls_ca_cert_dir', dir, (d) => readdirSync(d)).sort()) {
      const p = join(dir, n);
      if (statSync(p, { throwIfNoEntry: false })?.isFile()) ca.push(cf.readFor('tls_ca_cert_dir', p, (f) => readFileSync(f)));
    }
  }
  // deliberate: Postfix's default is no (no check at all); smmapd checks unless told not to
  if (used && !cf.has('tls_require_cert')) {
    differs(cf, 'tls_require_cert', "not set: smmapd checks the server's certificate, Postfix's default is not to (set tls_require_cert = no for that)", log);
  }
  return { ca: ca.length > 0 ? ca : undefined, cert: file('tls_cert'), key: file('tls_key'), rejectUnauthorized: cf.bool('tls_require_cert', true) };
}
