// behaviour §4, byte for byte (framing included), through the real daemon process in the
// listener model and the stdio model, on a store provisioned with the real smmapctl.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ctlBatch, tempConfig } from '../helpers/base';
import { runSmmapd, startSmmapd, type Smmapd } from '../helpers/daemon';
import { netstring, query, raw } from '../helpers/socketmap';
import { SPEC_TABLE, SPEC_TABLE_BATCH } from '../fixtures/spec-table';

/** Provision the behaviour §4 mailboxes with the real smmapctl. */
function provisionSpecTable(conf: string): void {
  ctlBatch(conf, SPEC_TABLE_BATCH);
}

describe('behaviour §4 table', () => {
  let env: ReturnType<typeof tempConfig>;
  let d: Smmapd;

  beforeAll(async () => {
    env = tempConfig('unixhierarchysep: no\nvirtdomains: off');
    provisionSpecTable(env.conf);
    d = await startSmmapd({ conf: env.conf });
  });
  afterAll(async () => {
    await d?.stop();
    rmSync(env.dir, { recursive: true, force: true });
  });

  it('listener: every key, one connection', async () => {
    const got = await query(d.target, SPEC_TABLE.map(([k]) => k));
    expect(got).toEqual(SPEC_TABLE.map(([, r]) => r));
  });

  it('listener: the wire bytes, pipelined in one write', async () => {
    const req = Buffer.concat(SPEC_TABLE.map(([k]) => netstring(`smmapd ${k}`)));
    const want = Buffer.concat(SPEC_TABLE.map(([, r]) => netstring(r)));
    const { data, closed } = await raw(d.target, req, { waitMs: 500 });
    expect(data.toString('latin1')).toBe(want.toString('latin1'));
    expect(closed).toBe(false);
  });

  it('listener: malformed requests of behaviour §4', async () => {
    expect(await raw(d.target, Buffer.from('3:any,'))).toEqual({ data: Buffer.from('31:PERM Bad protocol (missing key),'), closed: true });
    expect(await raw(d.target, Buffer.from('5:any f;'))).toEqual({ data: Buffer.from('38:PERM Bad protocol (missing terminator),'), closed: true });
  });

  it('stdio: the same bytes', () => {
    const req = Buffer.concat([...SPEC_TABLE.map(([k]) => netstring(`smmapd ${k}`)), Buffer.from('3:any,')]);
    const want = Buffer.concat([...SPEC_TABLE.map(([, r]) => netstring(r)), Buffer.from('31:PERM Bad protocol (missing key),')]);
    const r = runSmmapd(['-C', env.conf], req);
    expect(r.stdout.toString('latin1')).toBe(want.toString('latin1'));
    expect(r.status).toBe(0);
  });

  it('stdio: exits at EOF after answering', () => {
    const r = runSmmapd(['-C', env.conf], '8:any fred,12:any fred+Sub,');
    expect(r.stdout.toString()).toBe('7:OK fred,31:NOTFOUND Mailbox does not exist,');
    expect(r.status).toBe(0);
  });
});
