import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ApiClient } from '@gembatch/cli';
import { newBatchId, newFileId, newJobId } from '@gembatch/contracts';
import { tempDir, writeTextFile } from '@gembatch/testing';
import { startChaosStack, waitUntil, type ChaosStack, STACK_START_TIMEOUT_MS } from './chaos-stack.ts';
import { reportScenario } from './report.ts';

const KEY_A = 'chaos-key-tenant-a-0123456789';
const KEY_B = 'chaos-key-tenant-b-0123456789';

/** Ids tenant A owns (or, as ghosts, ids nobody owns, in the same shapes). */
interface Ids {
  fileId: string;
  /** A job that completed (it has a result). */
  completedJobId: string;
  /** A job still running while tenant B probes. */
  runningJobId: string;
  /** A batch over the file. */
  batchId: string;
}

type Method = 'GET' | 'POST' | 'DELETE';

/**
 * Every call that names one of tenant A's resources. Tenant B must get the same answer as for an
 * id that does not exist: 404 (`status`), or 400 where the id is a reference in the body. Adding an
 * endpoint is one line here (`owner`: what A itself gets, checked after B's calls to prove the id
 * was real; left out for calls that destroy what they name).
 */
const BY_ID: ReadonlyArray<{
  method: Method;
  path: (ids: Ids) => string;
  body?: (ids: Ids) => unknown;
  status?: number;
  owner?: number;
}> = [
  { method: 'GET', path: (ids) => `/v1/files/${ids.fileId}`, owner: 200 },
  { method: 'GET', path: (ids) => `/v1/files/${ids.fileId}/content`, owner: 200 },
  {
    method: 'POST',
    path: () => '/v1/jobs',
    body: (ids) => ({ file_id: ids.fileId, task: 'summarize', max_tokens: 8 }),
    status: 400,
    owner: 202,
  },
  { method: 'GET', path: (ids) => `/v1/jobs/${ids.completedJobId}`, owner: 200 },
  { method: 'GET', path: (ids) => `/v1/jobs/${ids.runningJobId}`, owner: 200 },
  { method: 'GET', path: (ids) => `/v1/jobs/${ids.completedJobId}/result`, owner: 200 },
  { method: 'POST', path: (ids) => `/v1/jobs/${ids.runningJobId}/cancel`, body: () => ({}) },
  // Accepted like a missing id: the request itself then fails GB_ERR_FILE_NOT_FOUND into B's error file.
  {
    method: 'POST',
    path: () => '/v1/batches',
    body: (ids) => ({ file_ids: [ids.fileId], task: 'summarize' }),
    status: 200,
  },
  { method: 'GET', path: (ids) => `/v1/batches/${ids.batchId}`, owner: 200 },
  { method: 'GET', path: (ids) => `/v1/batches/${ids.batchId}/output`, owner: 200 },
  { method: 'GET', path: (ids) => `/v1/batches/${ids.batchId}/errors`, owner: 200 },
  { method: 'POST', path: (ids) => `/v1/batches/${ids.batchId}/cancel`, body: () => ({}) },
  // Last: the owner's own calls run in this order, and these destroy what they name.
  { method: 'DELETE', path: (ids) => `/v1/jobs/${ids.completedJobId}`, owner: 200 },
  { method: 'DELETE', path: (ids) => `/v1/files/${ids.fileId}`, owner: 200 },
];

/** Every listing: tenant B's answer must not contain any of tenant A's ids. One line per listing. */
const LISTS: ReadonlyArray<{ path: string }> = [
  { path: '/v1/files?limit=100' },
  { path: '/v1/batches?limit=100' },
  { path: '/v1/jobs?limit=100' },
  { path: '/v1/jobs?status=completed&limit=100' },
  { path: '/v1/jobs?status=running&limit=100' },
  { path: '/v1/jobs?status=queued&limit=100' },
];

describe('tenant isolation', () => {
  let chaos: ChaosStack;
  beforeAll(async () => {
    chaos = await startChaosStack({ workers: 1, env: { GEMBATCH_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b` } });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('tenant B calls every endpoint with tenant A’s ids and gets the 404 of a missing id; its listings never show them; A’s records are untouched', async () => {
    const call = async (key: string, method: Method, path: string, body?: unknown) => {
      const response = await fetch(`${chaos.urls.api}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      return {
        status: response.status,
        code: text.startsWith('{') ? ((JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null) : null,
        text,
      };
    };

    // Tenant A: a file, a completed job with a result, and a long job still running.
    const a = new ApiClient({ baseUrl: chaos.urls.api, apiKey: KEY_A });
    const dir = await tempDir('gembatch-tenants-');
    const file = await a.uploadFile(
      await writeTextFile(join(dir.path, 'a.txt'), 'Tenant A private note about the merger.'),
    );
    const completed = await a.createJob({ file_id: file.id, task: 'summarize', max_tokens: 16 });
    await waitUntil(
      async () => (await a.getJob(completed.id)).status === 'completed',
      120_000,
      'tenant A’s job did not complete',
    );
    const running = await a.createJob({ text: 'Tenant A long report.', task: 'summarize', max_tokens: 2_000 });
    const batch = await call(KEY_A, 'POST', '/v1/batches', { file_ids: [file.id], task: 'summarize', max_tokens: 8 });
    expect(batch.status, batch.text).toBe(200);
    const ids: Ids = {
      fileId: file.id,
      completedJobId: completed.id,
      runningJobId: running.id,
      batchId: (JSON.parse(batch.text) as { id: string }).id,
    };
    const ghosts: Ids = {
      fileId: newFileId(),
      completedJobId: newJobId(),
      runningJobId: newJobId(),
      batchId: newBatchId(),
    };
    const owned = Object.values(ids);

    // Tenant B gets a job of its own, so its listings are not trivially empty.
    const own = await new ApiClient({ baseUrl: chaos.urls.api, apiKey: KEY_B }).createJob({
      text: 'Tenant B memo.',
      task: 'summarize',
      max_tokens: 8,
    });

    for (const probe of BY_ID) {
      const path = probe.path(ids);
      const answer = await call(KEY_B, probe.method, path, probe.body?.(ids));
      const ghost = await call(KEY_B, probe.method, probe.path(ghosts), probe.body?.(ghosts));
      expect(answer.status, `${probe.method} ${path} as tenant B: ${answer.text.slice(0, 200)}`).toBe(
        probe.status ?? 404,
      );
      expect(ghost.status, `${probe.method} ${probe.path(ghosts)} (a missing id)`).toBe(answer.status);
      // Indistinguishable from an id that never existed: no existence oracle.
      expect(answer.code, `${probe.method} ${path}`).toBe(ghost.code);
      // Nothing of A's record comes back (the id B sent may be echoed in the message).
      expect(answer.text, `${probe.method} ${path}`).not.toContain(file.sha256);
      expect(answer.text, `${probe.method} ${path}`).not.toContain('a.txt');
    }
    for (const list of LISTS) {
      const answer = await call(KEY_B, 'GET', list.path);
      expect(answer.status, list.path).toBe(200);
      for (const id of owned) expect(answer.text, `${list.path} as tenant B`).not.toContain(id);
    }
    const bList = await call(KEY_B, 'GET', '/v1/jobs?limit=100');
    expect(bList.text).toContain(own.id);

    // Tenant A's records are untouched and the ids were real: A gets them.
    expect((await a.getJob(running.id)).status).not.toBe('cancelled');
    for (const probe of BY_ID.filter((p) => p.owner !== undefined)) {
      const answer = await call(KEY_A, probe.method, probe.path(ids), probe.body?.(ids));
      expect(answer.status, `${probe.method} ${probe.path(ids)} as tenant A`).toBe(probe.owner);
    }
    await call(KEY_A, 'POST', `/v1/jobs/${running.id}/cancel`, {});
    await dir.cleanup();

    reportScenario(
      'tenant isolation',
      `${BY_ID.length} calls by id and ${LISTS.length} listings as tenant B with tenant A's ids: ${BY_ID.filter((p) => (p.status ?? 404) === 404).length} × 404, ${BY_ID.filter((p) => p.status !== undefined && p.status !== 404).length} × 400/200 (a file reference in the body), each the same as for a missing id; 0 of A's ids listed`,
    );
  });
});
