import { describe, expect, it } from 'vitest';
import { ConfigError } from '@gembatch/config';
import { ApiKeyRing } from './api-key-ring.ts';
import { loadApiEnv } from './env.ts';

function problemsOf(source: Record<string, string>): string[] {
  try {
    loadApiEnv(source);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('loadApiEnv', () => {
  it('has a default for everything', () => {
    expect(loadApiEnv({})).toEqual({
      GEMBATCH_API_PORT: 8080,
      GEMBATCH_API_HOST: '127.0.0.1',
      REDIS_URL: 'redis://127.0.0.1:6379',
      GEMBATCH_REDIS_PREFIX: 'gembatch',
      GEMBATCH_DATA_DIR: '.gembatch',
      GEMBATCH_MAX_UPLOAD_BYTES: 512 * 1024 ** 2,
      GEMBATCH_JOB_ATTEMPTS: 3,
      GEMBATCH_JOB_RETENTION_SECONDS: 604_800,
      GEMBATCH_FILE_RETENTION_SECONDS: 604_800,
      GEMBATCH_TENANT_MAX_QUEUED_JOBS: 10_000,
      GEMBATCH_TENANT_MAX_STORED_BYTES: 100 * 1024 ** 3,
      GEMBATCH_AUDIT_RETENTION_SECONDS: 90 * 24 * 60 * 60,
      GEMBATCH_AUDIT_MAX_ENTRIES: 1_000_000,
      GEMBATCH_SWEEP_INTERVAL_SECONDS: 300,
      GEMBATCH_BATCH_FEEDER: true,
      GEMBATCH_BATCH_WINDOW: 256,
      GEMBATCH_JOB_FAIR_SHARE: true,
      GEMBATCH_BATCH_MAX_REQUESTS: 200_000,
      GEMBATCH_MAX_METADATA_KEYS: 16,
      GEMBATCH_MAX_METADATA_BYTES: 4096,
      GEMBATCH_MAX_SCHEMA_BYTES: 65_536,
      GEMBATCH_MAX_SCHEMA_DEPTH: 64,
      GEMBATCH_MAX_INLINE_TEXT_BYTES: 1_048_576,
      GEMBATCH_SCHEDULE_MAX_FILES: 10_000,
      GEMBATCH_SCHEDULE_CONCURRENCY: 4,
      GEMBATCH_WEBHOOK_ALLOWED_URLS: [],
      GEMBATCH_WEBHOOK_ATTEMPTS: 8,
      GEMBATCH_WEBHOOK_BACKOFF_MS: 2_000,
      GEMBATCH_WEBHOOK_TIMEOUT_MS: 10_000,
      GEMBATCH_ADMIN_ENABLED: false,
      GEMBATCH_ALLOW_NO_AUTH: false,
      GEMBATCH_API_METRICS_PORT: 0,
      GEMBATCH_API_METRICS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    });
  });

  it('parses sizes, booleans and numbers', () => {
    const env = loadApiEnv({
      GEMBATCH_MAX_UPLOAD_BYTES: '2GiB',
      GEMBATCH_ADMIN_ENABLED: 'yes',
      GEMBATCH_ADMIN_TOKEN: 'admin-token-0123456789',
      GEMBATCH_API_PORT: '0',
      GEMBATCH_JOB_ATTEMPTS: '5',
    });
    expect(env).toMatchObject({
      GEMBATCH_MAX_UPLOAD_BYTES: 2 * 1024 ** 3,
      GEMBATCH_ADMIN_ENABLED: true,
      GEMBATCH_API_PORT: 0,
      GEMBATCH_JOB_ATTEMPTS: 5,
    });
  });

  it('names every bad variable at once', () => {
    const problems = problemsOf({
      GEMBATCH_API_PORT: '70000',
      REDIS_URL: 'http://x',
      GEMBATCH_MAX_UPLOAD_BYTES: 'lots',
      GEMBATCH_ADMIN_ENABLED: 'maybe',
      GEMBATCH_JOB_ATTEMPTS: '0',
      LOG_LEVEL: 'loud',
      GEMBATCH_REDIS_PREFIX: 'a:b',
    });
    for (const name of [
      'GEMBATCH_API_PORT',
      'REDIS_URL',
      'GEMBATCH_MAX_UPLOAD_BYTES',
      'GEMBATCH_ADMIN_ENABLED',
      'GEMBATCH_JOB_ATTEMPTS',
      'LOG_LEVEL',
      'GEMBATCH_REDIS_PREFIX',
    ]) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
  });

  it('refuses a non-loopback bind with auth off, naming the variables, unless GEMBATCH_ALLOW_NO_AUTH=true', () => {
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'api.internal']) {
      const problems = problemsOf({ GEMBATCH_API_HOST: host });
      expect(problems, host).toHaveLength(1);
      for (const name of ['GEMBATCH_API_HOST', 'GEMBATCH_API_KEYS', 'GEMBATCH_ADMIN_TOKEN', 'GEMBATCH_ALLOW_NO_AUTH'])
        expect(problems[0]).toContain(name);
      expect(problemsOf({ GEMBATCH_API_HOST: host, GEMBATCH_API_KEYS: '   ' }), 'blank keys are no keys').toHaveLength(
        1,
      );
      expect(problemsOf({ GEMBATCH_API_HOST: host, GEMBATCH_API_KEYS: 'key-for-acme-00000000:acme' })).toEqual([]);
      expect(problemsOf({ GEMBATCH_API_HOST: host, GEMBATCH_ADMIN_TOKEN: 'admin-token-0123456789' })).toEqual([]);
      expect(problemsOf({ GEMBATCH_API_HOST: host, GEMBATCH_ALLOW_NO_AUTH: 'true' })).toEqual([]);
    }
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1'])
      expect(problemsOf({ GEMBATCH_API_HOST: host }), host).toEqual([]);
  });

  it('refuses the admin board without an admin token', () => {
    expect(problemsOf({ GEMBATCH_ADMIN_ENABLED: 'true' })).toEqual([
      expect.stringMatching(/^GEMBATCH_ADMIN_ENABLED: .*GEMBATCH_ADMIN_TOKEN/),
    ]);
    expect(problemsOf({ GEMBATCH_ADMIN_ENABLED: 'true', GEMBATCH_ADMIN_TOKEN: 'admin-token-0123456789' })).toEqual([]);
  });

  it('checks secrets without ever repeating them', () => {
    const secret = 'shh-this-is-a-secret-key';
    const problems = problemsOf({
      GEMBATCH_API_KEYS: `${secret}:acme,short:globex,${secret}:acme2,another-long-key-000:Not_Valid`,
      GEMBATCH_ADMIN_TOKEN: 'tiny',
      GEMBATCH_API_PORT: 'x',
    });
    const text = problems.join('\n');
    expect(problems.filter((p) => p.startsWith('GEMBATCH_API_KEYS: entry'))).toHaveLength(3);
    expect(text).toContain('GEMBATCH_ADMIN_TOKEN');
    expect(text).toContain('GEMBATCH_API_PORT');
    expect(text).not.toMatch(/shh|short:|another-long|tiny/);
  });
});

describe('webhook variables', () => {
  it('are checked at start-up: every allowlist entry a plain http(s) URL, and a whsec_ secret when any is set', () => {
    expect(
      problemsOf({ GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/a,ftp://files.example.com/' }),
    ).toEqual([
      'GEMBATCH_WEBHOOK_ALLOWED_URLS: entry 2 must be an http:// or https:// URL',
      'GEMBATCH_WEBHOOK_SECRET: required when GEMBATCH_WEBHOOK_ALLOWED_URLS is set (deliveries are signed)',
    ]);
    const problems = problemsOf({
      GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/',
      GEMBATCH_WEBHOOK_SECRET: 'whsec_c2hvcnQ=',
    });
    expect(problems).toEqual(['GEMBATCH_WEBHOOK_SECRET: must decode to at least 24 bytes']);
    expect(problems.join('\n')).not.toContain('c2hvcnQ');
    expect(
      loadApiEnv({
        GEMBATCH_WEBHOOK_ALLOWED_URLS: 'https://hooks.example.com/',
        GEMBATCH_WEBHOOK_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}`,
      }).GEMBATCH_WEBHOOK_ALLOWED_URLS,
    ).toEqual(['https://hooks.example.com/']);
  });
});

describe('ApiKeyRing', () => {
  it('maps keys to tenants; unset or blank means auth is off', () => {
    const ring = ApiKeyRing.parse(' key-for-acme-00000000:acme , key-for-globex-000000:globex ');
    expect(ring?.size).toBe(2);
    expect(ring?.tenantFor('key-for-acme-00000000')).toBe('acme');
    expect(ring?.tenantFor('key-for-globex-000000')).toBe('globex');
    expect(ring?.tenantFor('key-for-acme-0000000')).toBeUndefined();
    expect(ApiKeyRing.parse(undefined)).toBeUndefined();
    expect(ApiKeyRing.parse('  ')).toBeUndefined();
  });

  it('allows colons inside a key (the tenant is after the last one)', () => {
    expect(ApiKeyRing.parse('a:b:c:d-0123456789abcdef:acme')?.tenantFor('a:b:c:d-0123456789abcdef')).toBe('acme');
  });
});
