import { Writable } from 'node:stream';
import { createLogger } from '@gembatch/telemetry';
import { describe, expect, it } from 'vitest';
import { guardTokenListener } from './token-listener.ts';

function captureLogger() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { logger: createLogger({ service: 'test', level: 'debug', destination }), lines };
}

describe('guardTokenListener', () => {
  it('passes every count on and is a no-op without a listener', () => {
    const seen: number[] = [];
    const onToken = guardTokenListener((n) => seen.push(n), undefined);
    onToken(1);
    onToken(2);
    expect(seen).toEqual([1, 2]);
    expect(() => guardTokenListener(undefined, undefined)(1)).not.toThrow();
  });

  it('swallows a throwing listener, keeps calling it, and logs the first failure without its message', () => {
    const { logger, lines } = captureLogger();
    const seen: number[] = [];
    const onToken = guardTokenListener((n) => {
      seen.push(n);
      throw new TypeError('SECRET-DOCUMENT-TEXT');
    }, logger);
    for (let n = 1; n <= 3; n++) expect(() => onToken(n)).not.toThrow();
    expect(seen).toEqual([1, 2, 3]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('onToken listener threw');
    expect(lines[0]).toContain('TypeError');
    expect(lines.join('\n')).not.toContain('SECRET-DOCUMENT-TEXT');
  });
});
