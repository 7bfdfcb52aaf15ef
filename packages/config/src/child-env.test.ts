import { describe, expect, it } from 'vitest';
import { childProcessEnv } from './child-env.ts';

const parent = {
  PATH: '/usr/bin',
  HOME: '/home/app',
  LANG: 'C.UTF-8',
  REDIS_URL: 'redis://:s3cret@redis:6379',
  HF_TOKEN: 'hf_secret',
  GEMBATCH_API_KEYS: 'tenant-a:key',
  AWS_SECRET_ACCESS_KEY: 'aws',
  NODE_OPTIONS: '--require /tmp/evil.js',
  GGML_CUDA_FORCE_MMQ: '1',
  CUDA_VISIBLE_DEVICES: '0',
};

describe('childProcessEnv', () => {
  it('passes only the allow-list: no Redis URL, token, API key, cloud credential or NODE_OPTIONS', () => {
    const env = childProcessEnv({}, parent);
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/app', LANG: 'C.UTF-8' });
  });

  it('adds named variables and prefixes a call site needs, and sets its own', () => {
    const env = childProcessEnv(
      { allow: ['CUDA_VISIBLE_DEVICES'], allowPrefixes: ['GGML_'], set: { OMP_THREAD_LIMIT: '1' } },
      parent,
    );
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/app',
      LANG: 'C.UTF-8',
      CUDA_VISIBLE_DEVICES: '0',
      GGML_CUDA_FORCE_MMQ: '1',
      OMP_THREAD_LIMIT: '1',
    });
  });
});
