import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdir, stat, utimes } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findFreePort, findRepoRoot, openTestRedis, startRedis, tempDir, type RedisHandle } from '@gembatch/testing';
import { reportScenario } from './report.ts';

const SERVER = resolve(findRepoRoot(), 'services/api/src/server.ts');
/** Why 1 MiB chunks every 20 ms: fast enough to finish the scenario in seconds, slow enough to kill the API mid-body. */
const CHUNK = Buffer.alloc(1024 * 1024, 0x61);
const CHUNK_INTERVAL_MS = 20;
/** Sent before the kill: well into the body, far from its end. */
const BYTES_BEFORE_KILL = 8 * CHUNK.length;
const DEADLINE_MS = 60_000;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

/**
 * `kill -9` of the API in the middle of an upload leaves a `.part` file in the blob store's temp
 * dir and nothing else (no blob, no record, no reference); once it is old, the next API start
 * sweeps it.
 */
describe('kill -9 of the API mid-upload', () => {
  let redis: RedisHandle;
  let dataDir: Awaited<ReturnType<typeof tempDir>>;
  const children: ChildProcess[] = [];
  const prefix = `chaos-upload-${process.pid}`;

  beforeAll(async () => {
    redis = await startRedis({ mode: 'spawn' });
    dataDir = await tempDir('gembatch-chaos-upload-');
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(
      children
        .filter((child) => child.exitCode === null && child.signalCode === null)
        .map((child) => once(child, 'exit')),
    );
    await redis?.close();
    await dataDir?.cleanup();
  });

  async function startApi(): Promise<{ child: ChildProcess; url: string }> {
    const port = await findFreePort('127.0.0.1');
    const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
      env: {
        PATH: process.env.PATH ?? '',
        REDIS_URL: redis.url,
        GEMBATCH_REDIS_PREFIX: prefix,
        GEMBATCH_DATA_DIR: dataDir.path,
        GEMBATCH_API_PORT: String(port),
        GEMBATCH_SWEEP_INTERVAL_SECONDS: '3600',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    children.push(child);
    const url = `http://127.0.0.1:${port}`;
    await waitFor('the API to answer', async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined));
    return { child, url };
  }

  test('leaves only a .part file, which the next start sweeps once it is old', async () => {
    const tmp = join(dataDir.path, 'blobs', '.tmp');
    const first = await startApi();
    let sent = 0;
    const boundary = 'chaosboundary';
    // A multipart body that never ends: the part header, then 1 MiB chunks until the API dies.
    const multipart = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(
          new Uint8Array(
            Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`),
          ),
        );
      },
      async pull(controller) {
        await delay(CHUNK_INTERVAL_MS);
        sent += CHUNK.length;
        controller.enqueue(new Uint8Array(CHUNK));
      },
    });
    const upload = fetch(`${first.url}/v1/files`, {
      method: 'POST',
      body: multipart,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      duplex: 'half',
    }).catch((error: unknown) => error);

    const part = await waitFor('a .part file of the upload', async () =>
      sent >= BYTES_BEFORE_KILL ? (await readdir(tmp)).find((name) => name.endsWith('.part')) : undefined,
    );
    const partBytes = (await stat(join(tmp, part))).size;
    first.child.kill('SIGKILL');
    await once(first.child, 'exit');
    expect(await upload).toBeInstanceOf(Error);

    // Nothing but the partial write: no blob, no file record, no blob reference.
    const blobDirs = (await readdir(join(dataDir.path, 'blobs'))).filter((name) => name !== '.tmp');
    expect(blobDirs).toEqual([]);
    expect(await readdir(tmp)).toEqual([part]);
    const connection = openTestRedis(redis.url);
    try {
      expect(await connection.keys(`${prefix}:file:*`)).toEqual([]);
      expect(await connection.keys(`${prefix}:blob:*`)).toEqual([]);
    } finally {
      await connection.quit();
    }

    // A fresh .part survives a restart (an upload may still be writing it)...
    const second = await startApi();
    await delay(500);
    expect(await readdir(tmp)).toEqual([part]);
    second.child.kill('SIGTERM');
    await once(second.child, 'exit');

    // ...and one untouched for over an hour is swept when the API starts.
    const twoHoursAgo = (Date.now() - 2 * 60 * 60 * 1000) / 1000;
    await utimes(join(tmp, part), twoHoursAgo, twoHoursAgo);
    const started = Date.now();
    await startApi();
    await waitFor('the start-up sweep', async () => ((await readdir(tmp)).length === 0 ? true : undefined));
    reportScenario(
      'kill -9 API mid-upload',
      `${(partBytes / 1024 ** 2).toFixed(0)} MiB .part left, 0 blobs, 0 records; swept ${((Date.now() - started) / 1000).toFixed(1)} s after the next start once older than 1 h`,
    );
  });
});
