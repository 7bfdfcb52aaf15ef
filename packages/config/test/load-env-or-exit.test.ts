import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

// A child process each (the function exits), so this lives with the integration tests, not `pnpm test:unit`.
describe('loadEnvOrExit', () => {
  const script = `import { z } from 'zod'; import { loadEnvOrExit } from ${JSON.stringify(new URL('../src/load-env.ts', import.meta.url).pathname)};
const env = loadEnvOrExit(z.object({ GB_TEST_PORT: z.string().regex(/^\\d+$/, 'must be digits') }), 'gembatch-test');
process.stdout.write(env.GB_TEST_PORT);`;
  const run = (port: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('.', import.meta.url).pathname,
      env: { ...process.env, GB_TEST_PORT: port },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('returns the parsed environment', () => {
    const child = run('8080');
    expect(child.status).toBe(0);
    expect(child.stdout).toBe('8080');
  });

  it('prints every problem under the service name and exits 1', () => {
    const child = run('eighty');
    expect(child.status).toBe(1);
    expect(child.stderr).toBe('gembatch-test: invalid configuration:\n  - GB_TEST_PORT: must be digits\n');
  });
});
