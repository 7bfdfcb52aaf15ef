import { existsSync } from 'node:fs';
import { describe, expect, onTestFinished, test } from 'vitest';
import { GembatchError } from '@gembatch/contracts';
import {
  findFreePort,
  isDockerEngineReachable,
  openTestRedis,
  startRedis,
  type RedisHandle,
  type StartRedisOptions,
} from '../src/index.ts';

async function started(options: StartRedisOptions): Promise<RedisHandle> {
  const handle = await startRedis(options);
  onTestFinished(() => handle.close());
  return handle;
}

async function connected(url: string) {
  const connection = openTestRedis(url);
  onTestFinished(async () => {
    await connection.quit().catch(() => connection.disconnect());
  });
  return connection;
}

describe('startRedis', () => {
  test('spawn mode starts its own server even when REDIS_URL is set', async () => {
    const env = { ...process.env, REDIS_URL: 'redis://127.0.0.1:1' };
    const handle = await started({ mode: 'spawn', env });
    expect(handle.mode).toBe('spawn');
    expect(handle.url).not.toBe(env.REDIS_URL);
    const redis = await connected(handle.url);
    expect(await redis.ping()).toBe('PONG');
  });

  test('auto mode uses REDIS_URL when set and appendOnly is off', async () => {
    const handle = await started({ env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:6390' } });
    expect(handle).toMatchObject({ mode: 'url', url: 'redis://127.0.0.1:6390' });
    await expect(handle.restart()).rejects.toMatchObject({ code: 'GB_ERR_CONFIG' });
  });

  test('auto mode with appendOnly starts a server it owns, even when REDIS_URL is set', async () => {
    const handle = await started({ appendOnly: true, env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:6390' } });
    expect(handle.mode).not.toBe('url');
  });

  test('restart with appendOnly keeps data on the same URL', async () => {
    const handle = await started({ mode: 'spawn', appendOnly: true });
    const redis = await connected(handle.url);
    await redis.set('kept', 'yes');
    await handle.restart();
    const after = await connected(handle.url);
    expect(await after.get('kept')).toBe('yes');
  });

  test('restart without appendOnly starts empty', async () => {
    const handle = await started({ mode: 'spawn' });
    const redis = await connected(handle.url);
    await redis.set('lost', 'yes');
    await handle.restart();
    const after = await connected(handle.url);
    expect(await after.get('lost')).toBeNull();
  });

  test('a hard restart (SIGKILL) comes back on the same URL', async () => {
    const handle = await started({ mode: 'spawn', appendOnly: true });
    await handle.restart({ hard: true });
    const redis = await connected(handle.url);
    expect(await redis.ping()).toBe('PONG');
  });

  test('a restart with downMs stays down that long, then comes back on the same URL with its data', async () => {
    const handle = await started({ mode: 'spawn', appendOnly: true });
    const redis = await connected(handle.url);
    await redis.set('kept', 'yes');
    const before = Date.now();
    await handle.restart({ hard: true, downMs: 1_000 });
    // A lower bound the code guarantees (it waits downMs between the kill and the start), not a speed.
    expect(Date.now() - before).toBeGreaterThanOrEqual(1_000);
    const after = await connected(handle.url);
    expect(await after.get('kept')).toBe('yes');
  });

  test('close is idempotent, stops the server and removes its data dir', async () => {
    const handle = await startRedis({ mode: 'spawn', appendOnly: true });
    const redis = await connected(handle.url);
    const dir = String(await redis.config('GET', 'dir').then((reply) => (reply as string[])[1]));
    expect(existsSync(dir)).toBe(true);
    await redis.quit();
    await Promise.all([handle.close(), handle.close()]);
    await handle.close();
    expect(existsSync(dir)).toBe(false);
    await expect(handle.restart()).rejects.toMatchObject({ code: 'GB_ERR_CONFLICT' });
  });

  test('without redis-server on PATH it names the install command', async () => {
    const error = await startRedis({ mode: 'spawn', env: { PATH: '/nonexistent' } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GembatchError);
    expect(error).toMatchObject({ code: 'GB_ERR_CONFIG' });
    expect((error as Error).message).toContain('apt-get install redis-server');
    expect((error as Error).message).toContain('brew install redis');
  });

  test('url mode without REDIS_URL is a config error', async () => {
    await expect(startRedis({ mode: 'url', env: {} })).rejects.toMatchObject({ code: 'GB_ERR_CONFIG' });
    await expect(startRedis({ mode: 'url', env: { REDIS_URL: 'http://x' } })).rejects.toMatchObject({
      code: 'GB_ERR_CONFIG',
    });
  });
});

describe('isDockerEngineReachable', () => {
  test('is false for a socket path that does not exist', async () => {
    expect(await isDockerEngineReachable(1_000, { DOCKER_HOST: 'unix:///nonexistent/docker.sock' })).toBe(false);
  });

  test('is false when nothing listens on a tcp DOCKER_HOST', async () => {
    const port = await findFreePort();
    expect(await isDockerEngineReachable(1_000, { DOCKER_HOST: `tcp://127.0.0.1:${port}` })).toBe(false);
  });

  test('is false when the peer is not a Docker engine', async () => {
    const handle = await started({ mode: 'spawn' });
    expect(await isDockerEngineReachable(1_000, { DOCKER_HOST: handle.url.replace('redis:', 'tcp:') })).toBe(false);
  });
});
