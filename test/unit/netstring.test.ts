import { describe, expect, it } from 'vitest';
import { encodeNetstring, keyOffset, NetstringDecoder, type FrameError } from '../../src/core/netstring';

function decode(chunks: (string | Buffer)[], max = 10_000): { frames: string[]; error: FrameError | null } {
  const frames: string[] = [];
  let error: FrameError | null = null;
  const d = new NetstringDecoder(max, (f) => frames.push(f.toString('latin1')), (r) => (error = r));
  for (const c of chunks) d.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return { frames, error };
}

describe('NetstringDecoder', () => {
  it('decodes one frame, pipelined frames, and frames split at every byte', () => {
    expect(decode(['8:any fred,'])).toEqual({ frames: ['any fred'], error: null });
    expect(decode(['8:any fred,3:a b,0:,'])).toEqual({ frames: ['any fred', 'a b', ''], error: null });
    const whole = '8:any fred,12:any fred+Sub,';
    expect(decode(whole.split(''))).toEqual({ frames: ['any fred', 'any fred+Sub'], error: null });
    expect(decode(['8', ':an', 'y fr', 'ed', ',7:any', ' bob,'])).toEqual({ frames: ['any fred', 'any bob'], error: null });
  });

  it('counts bytes, not characters', () => {
    const d: string[] = [];
    new NetstringDecoder(100, (f) => d.push(f.toString('utf8')), () => undefined).push(Buffer.from('11:any frédé,', 'utf8'));
    expect(d).toEqual(['any frédé']);
    expect(encodeNetstring('OK frédé')).toBe('10:OK frédé,');
  });

  it.each<[string, FrameError]>([
    ['abc', 'missing length'],
    [':', 'missing length'],
    ['-1:x,', 'missing length'],
    ['12x:any fred,', 'missing length'],
    ['5:any f;', 'missing terminator'],
    ['2000000000:any ', 'request too large'],
    ['99999999999999999999:x', 'request too large'],
    ['10001:', 'request too large'],
    [`${'0'.repeat(40)}11:smmapd fred,`, 'request too large'],
  ])('refuses %j with "%s"', (input, reason) => {
    expect(decode([input]).error).toBe(reason);
  });

  it('waits for the terminator of a complete body', () => {
    expect(decode(['3:any'])).toEqual({ frames: [], error: null });
  });

  it('stops at the first bad frame and never re-parses what follows', () => {
    expect(decode(['8:any fred,junk8:any fred,'])).toEqual({ frames: ['any fred'], error: 'missing length' });
    expect(decode(['5:any f;', '8:any fred,'])).toEqual({ frames: [], error: 'missing terminator' });
  });

  it('accepts exactly the maximum length', () => {
    const body = 'x'.repeat(16);
    expect(decode([`16:${body},`], 16)).toEqual({ frames: [body], error: null });
    expect(decode([`17:${body}x,`], 16).error).toBe('request too large');
  });

  it('judges a length by its value: leading zeros are fine (Cyrus, Postfix, Sendmail)', () => {
    expect(decode(['000011:smmapd fred,'], 16)).toEqual({ frames: ['smmapd fred'], error: null });
    expect(decode([`${'0'.repeat(23)}11:smmapd fred,`], 16)).toEqual({ frames: ['smmapd fred'], error: null });
    expect(decode(['00:,'])).toEqual({ frames: [''], error: null });
  });

  it('refuses a huge length at its first digits, before buffering anything', () => {
    const errors: FrameError[] = [];
    const d = new NetstringDecoder(10_000, () => undefined, (r) => errors.push(r));
    d.push(Buffer.from('99999'));
    expect(errors).toEqual(['request too large']);
  });

  it('reports a request cut short at end of input', () => {
    const errors: FrameError[] = [];
    const d = new NetstringDecoder(100, () => undefined, (r) => errors.push(r));
    d.push(Buffer.from('50:any fr'));
    d.end();
    expect(errors).toEqual(["request size doesn't match length"]);
    // The whole body, then end of input where the comma should be: Cyrus 3.6 says missing terminator.
    const noComma = new NetstringDecoder(100, () => undefined, (r) => errors.push(r));
    noComma.push(Buffer.from('11:smmapd fred'));
    noComma.end();
    expect(errors).toEqual(["request size doesn't match length", 'missing terminator']);
    const idle = new NetstringDecoder(100, () => undefined, (r) => errors.push(r));
    idle.push(Buffer.from('3:a b,'));
    idle.end();
    expect(errors).toHaveLength(2);
  });

  it('can be stopped from inside a frame callback', () => {
    const frames: string[] = [];
    const d = new NetstringDecoder(100, (f) => (frames.push(f.toString()), d.stop()), () => undefined);
    d.push(Buffer.from('1:a,1:b,'));
    expect(frames).toEqual(['a']);
  });
});

describe('keyOffset', () => {
  it('splits at the first space; the key may hold spaces or be empty', () => {
    const b = Buffer.from('map a b');
    expect(b.subarray(keyOffset(b)).toString()).toBe('a b');
    const e = Buffer.from('map ');
    expect(e.subarray(keyOffset(e)).toString()).toBe('');
    expect(keyOffset(Buffer.from('any'))).toBe(-1);
  });
});
