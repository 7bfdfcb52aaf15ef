import { describe, expect, it } from 'vitest';
import { parsePrometheusText, selectSamples } from './metrics-text-parser.ts';

describe('parsePrometheusText', () => {
  it('reads samples, labels with escapes, special values and TYPE lines', () => {
    const parsed = parsePrometheusText(
      [
        '# HELP x_total A counter.',
        '# TYPE x_total counter',
        'x_total{node="a",quote="say \\"hi\\"",path="c:\\\\dir",nl="1\\n2"} 42',
        'x_total{node="b",} 1.5e3 1700000000000',
        '# TYPE h histogram',
        'h_bucket{le="+Inf"} +Inf',
        'g NaN',
        'neg -Inf',
        '',
      ].join('\n'),
    );
    expect(parsed.errors).toEqual([]);
    expect(parsed.types.get('x_total')).toBe('counter');
    expect(parsed.types.get('h')).toBe('histogram');
    expect(selectSamples(parsed, 'x_total', { node: 'a' })).toEqual([
      { name: 'x_total', labels: { node: 'a', quote: 'say "hi"', path: 'c:\\dir', nl: '1\n2' }, value: 42 },
    ]);
    expect(selectSamples(parsed, 'x_total', { node: 'b' })[0]?.value).toBe(1500);
    expect(selectSamples(parsed, 'h_bucket')[0]?.value).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(selectSamples(parsed, 'g')[0]?.value)).toBe(true);
    expect(selectSamples(parsed, 'neg')[0]?.value).toBe(Number.NEGATIVE_INFINITY);
  });

  it('reports bad lines with their number and keeps the good ones', () => {
    const parsed = parsePrometheusText('ok 1\n{x="1"} 2\nbad{x=1} 3\nnovalue{a="b"}\nunterminated{a="b} 4\nalso_ok 5');
    expect(parsed.samples.map((s) => s.name)).toEqual(['ok', 'also_ok']);
    expect(parsed.errors.map((e) => e.line)).toEqual([2, 3, 4, 5]);
  });
});
