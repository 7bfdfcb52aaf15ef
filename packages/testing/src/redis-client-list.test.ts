import { describe, expect, test } from 'vitest';
import { parseClientList } from './redis-client-list.ts';

describe('parseClientList', () => {
  test('reads id, name, addr and cmd from each line', () => {
    const text = [
      'id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name= age=1 idle=0 flags=N db=0 cmd=client|list',
      'id=12 addr=127.0.0.1:50002 laddr=127.0.0.1:6379 fd=9 name=gbt-abc:ZXh0cmFjdA==:w:node age=0 idle=0 flags=b db=0 cmd=bzpopmin',
      '',
    ].join('\n');
    expect(parseClientList(text)).toEqual([
      { id: 3, name: '', addr: '127.0.0.1:50000', cmd: 'client|list' },
      { id: 12, name: 'gbt-abc:ZXh0cmFjdA==:w:node', addr: '127.0.0.1:50002', cmd: 'bzpopmin' },
    ]);
  });

  test('skips lines without an id', () => {
    expect(parseClientList('garbage\nname=x\n')).toEqual([]);
  });
});
