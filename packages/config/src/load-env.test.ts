import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, envBool, envBytes, envInt, envList, loadEnv } from './load-env.ts';

const schema = z.object({
  /** A port. */
  PORT: envInt(1, 65535).default(8080),
  DEBUG: envBool.default(false),
  LIMIT: envBytes.default(1024),
  NAMES: envList.default([]),
  URL: z.string().url(),
});

describe('loadEnv', () => {
  it('applies defaults and treats empty strings as unset', () => {
    const env = loadEnv(schema, { URL: 'http://x', PORT: '' });
    expect(env).toEqual({ PORT: 8080, DEBUG: false, LIMIT: 1024, NAMES: [], URL: 'http://x' });
    expect(Object.isFrozen(env)).toBe(true);
  });

  it('parses booleans strictly, sizes with units and lists', () => {
    const env = loadEnv(schema, { URL: 'http://x', DEBUG: 'Yes', LIMIT: '1.5GiB', NAMES: 'a, b,,c' });
    expect(env.DEBUG).toBe(true);
    expect(env.LIMIT).toBe(1.5 * 1024 ** 3);
    expect(env.NAMES).toEqual(['a', 'b', 'c']);
    expect(loadEnv(schema, { URL: 'http://x', DEBUG: 'off' }).DEBUG).toBe(false);
  });

  it('reports every problem with its variable name', () => {
    let error: unknown;
    try {
      loadEnv(schema, { PORT: '99999', DEBUG: 'maybe', LIMIT: '12 parsecs' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['PORT', 'DEBUG', 'LIMIT', 'URL']) expect(problems).toContain(name);
    expect(problems).not.toContain('maybe');
  });
});
