// One connection of an ldap: table, set up as dict_ldap_connect() sets up libldap for Postfix:
// ldap://, ldaps:// or ldapi:// (a unix socket), STARTTLS checked against the host named in
// server_host (an IP address too), a simple bind (anonymous when bind_dn is empty, and with
// the protocol version Postfix asks for) or a SASL EXTERNAL/PLAIN bind.
//
// ldapts 8.2 falls short of libldap in four ways that change answers: the result code of a
// search that returned entries is hidden (sizeLimitExceeded looks like success when a size
// limit was asked for), the bind request always says version 3, Client.search() drops
// its derefAliases option (every search goes out as "never"), and the referral URLs of a
// search result (resultCode 10, the base under a referral object) are not read. The fixes
// for upstream are in patches/ (ldapts-search-result, -bind-version, -deref). Until a
// release has them, the first three are carried here as a wrapper around the client's
// message sender (`_send`), the fourth as a reader of the result's referral field after
// ldapts's own; pinned by the package lock and covered by the size_limit, version,
// dereference and chase_referrals tests.
import { BindRequest, Client, SearchRequest, SearchResponse, type BerReader, type ClientOptions } from 'ldapts';
import net from 'node:net';
import { checkServerIdentity, type Certificate, type ConnectionOptions, type PeerCertificate } from 'node:tls';

export interface LdapConnSpec {
  /** ldap://host:port, ldaps://host:port or ldapi://%2Fpath (as written in server_host). */
  readonly url: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly startTls: boolean;
  readonly tls: ConnectionOptions;
  /** none, simple (Postfix's `yes`) or sasl. */
  readonly bind: 'none' | 'simple' | 'sasl';
  readonly bindDn: string;
  readonly bindPw: string;
  /** 2 or 3: the version a simple bind asks for. */
  readonly version: 2 | 3;
  readonly saslMech: 'EXTERNAL' | 'PLAIN' | '';
  readonly saslAuthz: string;
  /** derefAliases of every search (Postfix's dereference, a connection option in libldap). */
  readonly deref: 'never' | 'search' | 'find' | 'always';
}

export interface LdapConn {
  readonly client: Client;
  /** The result code of the last search (0 success, 4 sizeLimitExceeded, ...). */
  status: number;
  /** Continuation references of the last search. */
  refs: string[];
  /** The referral URLs of the last search's result (status 10). */
  referral: string[];
}

/** LDAPResult's `referral [3] Referral OPTIONAL` (RFC 4511 4.1.9), after resultCode, matchedDN and diagnosticMessage. */
const REFERRAL_TAG = 0xa3;

/** A search result with the referral URLs ldapts leaves unread (read by the hook below). */
type SearchResult = SearchResponse & { referral?: string[] };

// what ldapts's SearchResponse reads, then the referral it skips (its controls come after)
const parseResult = SearchResponse.prototype.parseMessage;
SearchResponse.prototype.parseMessage = function (this: SearchResult, reader: BerReader): void {
  parseResult.call(this, reader);
  if (reader.peek() !== REFERRAL_TAG || reader.readSequence(REFERRAL_TAG) === null) return;
  const end = reader.offset + reader.length;
  const urls: string[] = [];
  while (reader.offset < end) {
    const url = reader.readString();
    if (url === null) break;
    urls.push(url);
  }
  this.referral = urls;
};

interface Sender {
  _send(m: unknown): Promise<unknown>;
}

/** ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi → /var/run/slapd/ldapi (libldap's default path when empty). */
export function ldapiPath(url: string): string {
  const rest = url.replace(/^ldapi:\/\//i, '').replace(/\/.*$/, '');
  return rest === '' ? '/var/run/slapd/ldapi' : decodeURIComponent(rest);
}

const isIp = (h: string): boolean => net.isIP(h) !== 0;

/** The host the server's certificate must name: the one in the URL, as libldap checks it. */
export function urlHost(url: string): string {
  try {
    const h = new URL(url).hostname;
    return h.startsWith('[') ? h.slice(1, -1) : h;
  } catch {
    return 'localhost';
  }
}

/**
 * The name check of GnuTLS (Debian's libldap): a certificate with subject alternative names
 * is judged by them alone; Node would fall back to the common name when none is a DNS name.
 */
export function checkName(host: string, cert: PeerCertificate): Error | undefined {
  if (cert.subjectaltname) return checkServerIdentity(host, { ...cert, subject: {} as Certificate });
  return checkServerIdentity(host, cert);
}

/** TLS options for a connection to `host`: the name checked is `host` (an IP address too), SNI only for a name. */
export function tlsFor(tls: ConnectionOptions, host: string): ConnectionOptions {
  return { ...tls, host, checkServerIdentity: checkName, ...(isIp(host) ? {} : { servername: host }) };
}

export async function ldapConnect(s: LdapConnSpec): Promise<LdapConn> {
  const ldapi = /^ldapi:/i.test(s.url);
  const host = ldapi ? 'localhost' : urlHost(s.url);
  const opts: ClientOptions = { url: ldapi ? 'ldap://localhost' : s.url, timeout: s.timeoutMs, connectTimeout: s.connectTimeoutMs, strictDN: false };
  if (ldapi) {
    const path = ldapiPath(s.url);
    opts.createConnection = (() => net.connect(path)) as unknown as typeof net.connect;
  }
  if (/^ldaps:/i.test(s.url)) opts.tlsOptions = tlsFor(s.tls, host);
  const client = new Client(opts);
  const conn: LdapConn = { client, status: 0, refs: [], referral: [] };
  const sender = client as unknown as Sender;
  // the wrapper below is what makes size_limit, version and dereference right: never run without it
  if (typeof sender._send !== 'function') throw new Error('ldapts without Client._send: smmapd needs ldapts 8.2 (package.json pins it)');
  const send = sender._send.bind(client);
  sender._send = async (m: unknown): Promise<unknown> => {
    if (m instanceof BindRequest && m.mechanism === undefined) m.version = s.version;
    if (m instanceof SearchRequest) m.derefAliases = s.deref;
    const r = await send(m);
    if (r instanceof SearchResponse) {
      conn.status = r.status;
      conn.refs = r.searchReferences.flatMap((x) => x.uris);
      conn.referral = (r as SearchResult).referral ?? [];
    }
    return r;
  };
  try {
    if (s.startTls && !/^ldaps:/i.test(s.url)) await client.startTLS(tlsFor(s.tls, host));
    if (s.bind === 'simple') await client.bind(s.bindDn, s.bindPw);
    else if (s.bind === 'sasl') {
      // PLAIN: authzid NUL authcid NUL password, authcid being bind_dn as Postfix passes it
      const cred = s.saslMech === 'PLAIN' ? `${s.saslAuthz}\0${s.bindDn}\0${s.bindPw}` : s.saslAuthz;
      await client.bindSASL(s.saslMech, cred);
    }
  } catch (e) {
    void client.unbind().catch(() => undefined);
    throw e;
  }
  return conn;
}
