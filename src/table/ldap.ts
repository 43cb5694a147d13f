// ldap:FILE, Postfix's ldap_table(5) with `ldapts`. The key goes into query_filter escaped
// as dict_ldap.c's rfc2254_quote() escapes it (`*`, `(`, `)`, `\` as \XX; NUL too, which
// Postfix cannot receive) and into search_base as rfc2253_quote() does; values of the
// result attributes are joined with commas. Simple bind (or none), ldaps:// or STARTTLS
// with a CA file; the server list is tried in order, as libldap tries it for Postfix.
import { Client, FilterParser, NoSuchObjectError, type ClientOptions, type Entry, type Filter } from 'ldapts';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { Config } from '../config';
import type { Log } from '../store/registry';
import { StoreError, type LookupTable } from '../core/contract';
import { CfError, openCfTable, secret, splitList, type CfFile } from './cf';
import { checkDomain, expand, parseTemplate, Results, templates, type Templates } from './expand';
import { connectTimeout, ConnPool, HostList, QueryError } from './hosts';

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

/** attrdesc_subtype() > 0: `got` is the attribute asked for or one of its subtypes (`mail;lang-en`). */
function isAttr(want: string, got: string): boolean {
  const w = want.toLowerCase();
  const g = got.toLowerCase();
  return g === w || g.startsWith(`${w};`);
}

const SCOPES: Record<string, 'sub' | 'one' | 'base'> = { sub: 'sub', one: 'one', base: 'base' };
const DEREF = ['never', 'search', 'find', 'always'] as const;

/** noSuchObject for the search base: the caller decides (not found, or a broken table). */
class NoBase extends QueryError {}

interface LdapConn {
  client: Client;
}

export class LdapTable implements LookupTable {
  private readonly t: Templates;
  private readonly base: string;
  private readonly dynamicBase: boolean;
  private readonly scope: 'sub' | 'one' | 'base';
  private readonly attrs: string[];
  private readonly sizeLimit: number;
  private readonly timeLimit: number;
  private readonly deref: (typeof DEREF)[number];
  private readonly hosts: HostList<ConnPool<LdapConn>>;
  private readonly timeoutMs: number;

  constructor(cf: CfFile, cfg: Config, private readonly log: Log) {
    for (const p of ['special_result_attribute', 'terminal_result_attribute', 'leaf_result_attribute']) {
      if (cf.str(p, '') !== '') cf.fail(p, 'not supported by smmapd (only result_attribute)');
    }
    this.timeoutMs = cfg.mapTimeoutMs;
    const bind = cf.str('bind', 'yes', 1).toLowerCase();
    if (bind === 'sasl') cf.fail('bind', 'SASL binds are not supported by smmapd (use bind = yes with bind_dn/bind_pw)');
    if (!['yes', 'simple', 'no', 'none'].includes(bind)) cf.fail('bind', `want yes, no or sasl, not "${bind}"`);
    cf.int('version', 2, 2, 3); // checked as Postfix checks it; we always speak LDAPv3 (ldapts has no v2)
    let query = cf.str('query_filter', '(mailacceptinggeneralid=%s)', 1);
    const resultFormat = cf.has('result_format') ? cf.str('result_format', '%s', 1) : cf.str('result_filter', '%s', 1);
    this.base = cf.str('search_base', '');
    this.t = templates(cf, 'query_filter', query, resultFormat, cf.has('result_format') ? 'result_format' : 'result_filter');
    // the base is a template too, in the same context (db_common_parse() of search_base)
    this.dynamicBase = parseTemplate(this.t.ctx, this.base, true, cf.where('search_base'));
    if (!query.startsWith('(')) query = `(${query})`;
    this.t = { ...this.t, query };
    const scope = SCOPES[cf.str('scope', 'sub', 1).toLowerCase()];
    if (scope === undefined) cf.fail('scope', 'want sub, one or base');
    this.scope = scope;
    this.attrs = splitList(cf.str('result_attribute', 'maildrop'));
    this.sizeLimit = cf.int('size_limit', 0, 0);
    // Postfix's search timeout, sent as the server's time limit; smmapd_maps_timeout bounds the whole lookup
    this.timeLimit = cf.int('timeout', 10, 0);
    this.deref = DEREF[cf.int('dereference', 0, 0, 3)]!;
    const port = cf.int('server_port', 389, 1, 65535);
    const startTls = cf.bool('start_tls', false);
    const requireCert = cf.bool('tls_require_cert', true);
    const readPem = (param: string): Buffer | undefined => {
      const f = cf.str(param, '');
      if (f === '') return undefined;
      try {
        return readFileSync(f);
      } catch (e) {
        return cf.fail(param, `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    const tls: ConnectionOptions = {
      ca: readPem('tls_ca_cert_file'),
      cert: readPem('tls_cert'),
      key: readPem('tls_key'),
      rejectUnauthorized: requireCert,
    };
    const bindDn = bind === 'no' || bind === 'none' ? '' : cf.str('bind_dn', '');
    const bindPw = secret(cf, 'bind_pw', 'bind_pw_file');
    const names = splitList(cf.str('server_host', 'localhost', 1));
    const urls = names.map((h) => {
      if (/^ldapi:/i.test(h)) throw new CfError(`${cf.where('server_host')}: server_host: ldapi:// is not supported by smmapd`);
      if (/^ldaps?:\/\//i.test(h)) return h.replace(/\/+$/, '');
      return `ldap://${h.includes(':') ? h : `${h}:${port}`}`;
    });
    const pools = urls.map((url) => {
      const opts: ClientOptions = { url, timeout: cfg.mapTimeoutMs, connectTimeout: connectTimeout(cfg, urls.length), strictDN: false };
      if (url.toLowerCase().startsWith('ldaps:')) opts.tlsOptions = tls;
      return new ConnPool<LdapConn>(
        cfg.mapPoolSize,
        async () => {
          const client = new Client(opts);
          try {
            if (startTls && !url.toLowerCase().startsWith('ldaps:')) await client.startTLS(tls);
            if (bindDn !== '') await client.bind(bindDn, bindPw);
          } catch (e) {
            void client.unbind().catch(() => undefined);
            throw e;
          }
          return { client };
        },
        (c) => void c.client.unbind().catch(() => undefined),
        (c) => c.client.isConnected || bindDn === '',
      );
    });
    this.hosts = new HostList('ldap', pools, urls, log);
  }

  describe(key: string): string | null {
    if (!checkDomain(this.t.ctx, key)) return null;
    const base: string[] = [];
    if (this.base !== '' && !expand(this.t.ctx, this.base, key, null, base, dnQuote)) return null;
    const filter: string[] = [];
    if (!expand(this.t.ctx, this.t.query, key, null, filter, filterQuote)) return null;
    return `search base "${base.join('')}" scope ${this.scope} filter ${filter.join('')} attributes ${this.attrs.join(',')}`;
  }

  async lookup(key: string, until = Date.now() + this.timeoutMs): Promise<string | null> {
    if (!checkDomain(this.t.ctx, key)) return null;
    const base: string[] = [];
    if (this.base !== '' && !expand(this.t.ctx, this.base, key, null, base, dnQuote)) return null;
    const filterText: string[] = [];
    if (!expand(this.t.ctx, this.t.query, key, null, filterText, filterQuote)) return null;
    // parsed here, so that a filter ldapts cannot read is the table's fault, never a host's
    let filter: Filter;
    try {
      filter = FilterParser.parseString(filterText.join(''));
    } catch (e) {
      this.log(`ldap: query_filter ${filterText.join('')}: ${(e as Error).message}`, 'error', 'ldap: query_filter');
      throw new StoreError('ldap: bad query_filter', { cause: e });
    }
    let entries: Entry[];
    try {
      entries = await this.hosts.run((pool, _i, hostUntil) =>
        pool.use(async (c) => {
          try {
            const r = await c.client.search(base.join(''), {
              scope: this.scope,
              filter,
              attributes: this.attrs,
              sizeLimit: this.sizeLimit,
              timeLimit: this.timeLimit,
              derefAliases: this.deref,
            });
            return r.searchEntries;
          } catch (e) {
            if (e instanceof NoSuchObjectError) throw new NoBase(e.message);
            // the server answered with an LDAP result code: the search is wrong, not the host
            if (typeof (e as { code?: unknown }).code === 'number') throw new QueryError((e as Error).message);
            throw e;
          }
        }, hostUntil),
      until,
      );
    } catch (e) {
      // no such base: not found when the base depends on the key, else the table is broken
      if ((e as { cause?: unknown }).cause instanceof NoBase) {
        if (this.dynamicBase) return null;
        throw new StoreError('ldap: search base not found');
      }
      throw e;
    }
    const res = new Results(this.t, key);
    if (this.sizeLimit > 0 && entries.length > this.sizeLimit) throw new StoreError('ldap: size limit exceeded');
    for (const entry of entries) {
      for (const [attr, v] of Object.entries(entry)) {
        if (attr === 'dn' || !this.attrs.some((a) => isAttr(a, attr))) continue;
        const vals = Array.isArray(v) ? v : [v];
        for (const x of vals) res.add(Buffer.isBuffer(x) ? x.toString('utf8') : String(x));
      }
    }
    return res.value();
  }

  hostStates(): ReadonlyArray<{ readonly name: string; readonly failures: number }> {
    return this.hosts.states;
  }

  close(): void {
    for (const p of this.hosts.hosts) p.close();
  }
}

export function openTable(file: string, cfg: Config, log: (m: string) => void): LookupTable {
  return openCfTable(file, 'ldap', log, (cf) => new LdapTable(cf, cfg, log));
}
