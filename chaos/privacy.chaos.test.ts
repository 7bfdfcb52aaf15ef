import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ApiClient } from '@gembatch/cli';
import type { JobView } from '@gembatch/contracts';
import { findFreePort, tempDir, writeTextFile, writeTextPdf } from '@gembatch/testing';
import { startChaosStack, waitUntil, type ChaosStack, STACK_START_TIMEOUT_MS } from './chaos-stack.ts';
import { scanForDocumentText, type ScannedSource } from './leak-scan.ts';
import { reportScenario } from './report.ts';

/**
 * Words that exist only in what the scenario submits (not in the tiny model's vocabulary, not in
 * any code path): documents, prompts, schemas and metadata. None may reach a log line or a metric.
 */
const SECRETS = [
  'Marigold',
  'Thistlewood',
  'Xanthippe',
  'Quillfeather',
  'Oberwaldt',
  'Vexhollow',
  'Brannoch',
  'Saffronby',
];

describe('privacy: no submitted text in any log line or metric', () => {
  let chaos: ChaosStack;
  let workerMetricsPort: number;
  beforeAll(async () => {
    workerMetricsPort = await findFreePort();
    chaos = await startChaosStack({ workers: 1, env: { GEMBATCH_METRICS_PORT: String(workerMetricsPort) } });
  }, STACK_START_TIMEOUT_MS);
  afterAll(() => chaos?.close());

  test('documents, prompts, schemas and metadata with distinctive words run through the stack; every log line of every service and every metric label of every /metrics is free of them', async () => {
    const client = new ApiClient({ baseUrl: chaos.urls.api });
    const dir = await tempDir('gembatch-privacy-');
    const txt = await writeTextFile(
      join(dir.path, 'note.txt'),
      `Clinic note. The patient ${SECRETS[0]} ${SECRETS[1]} reported pain after the fall.`,
    );
    const pdf = await writeTextPdf(join(dir.path, 'lease.pdf'), [
      `Page one. ${SECRETS[2]} leases the bakery on Mill Street.`,
      'Page two. The rent is paid monthly.',
    ]);
    const garbage = join(dir.path, 'scan.bin');
    await writeFile(
      garbage,
      Buffer.concat([Buffer.from([0x00, 0xff, 0x13, 0x37]), Buffer.from(`${SECRETS[3]} `.repeat(50))]),
    );

    const jobs: JobView[] = [];
    jobs.push(
      await client.createJob({
        text: `Memo: ${SECRETS[4]} transferred the deeds to the trust.`,
        task: 'summarize',
        max_tokens: 32,
        metadata: { ref: SECRETS[5] as string },
      }),
    );
    jobs.push(
      await client.createJob({
        text: 'The tenant wrote about the lease.',
        task: 'prompt',
        prompt: `Say whether ${SECRETS[6]} signed.`,
        max_tokens: 32,
      }),
    );
    jobs.push(
      await client.createJob({
        text: 'A short letter about the harvest.',
        task: 'summarize',
        max_tokens: 32,
        json_schema: {
          type: 'object',
          properties: { who: { type: 'string', description: SECRETS[7] } },
          required: ['who'],
        },
      }),
    );
    for (const file of [txt, pdf, garbage])
      jobs.push(
        await client.createJob({ file_id: (await client.uploadFile(file)).id, task: 'summarize', max_tokens: 32 }),
      );
    const cancelled = await client.createJob({
      text: `Draft: ${SECRETS[0]} owes rent.`,
      task: 'summarize',
      max_tokens: 2_000,
    });
    await chaos.post(`/v1/jobs/${cancelled.id}/cancel`, {}).catch(() => undefined);
    jobs.push(cancelled);

    const finished = new Map<string, string>();
    await waitUntil(
      async () => {
        for (const job of jobs) {
          if (finished.has(job.id)) continue;
          const view = await client.getJob(job.id);
          if (['completed', 'failed', 'cancelled'].includes(view.status)) finished.set(job.id, view.status);
        }
        return finished.size === jobs.length;
      },
      150_000,
      'jobs did not finish',
    );
    // Both paths ran: successes and typed failures (the undecodable upload at least).
    expect([...finished.values()]).toContain('completed');
    expect([...finished.values()]).toContain('failed');

    const metrics = async (name: string, url: string): Promise<ScannedSource> => {
      const response = await fetch(url);
      expect(response.status, name).toBe(200);
      return { name, kind: 'metrics', text: await response.text() };
    };
    const sources: ScannedSource[] = [
      await metrics('api /metrics', `${chaos.urls.api}/metrics`),
      await metrics('worker /metrics', `http://127.0.0.1:${workerMetricsPort}/metrics`),
      await metrics('exporter /metrics', chaos.urls.exporter),
    ];
    // Stopped first, so the drain and shutdown lines are in the files too.
    await chaos.stack.stop(15_000);
    for (const service of ['api', 'worker', 'exporter'])
      sources.push({ name: `${service}.log`, kind: 'log', text: (await chaos.logLines(service)).join('\n') });
    await dir.cleanup();

    const { leaks, counts } = scanForDocumentText(sources, SECRETS);
    expect(leaks).toEqual([]);
    // The scan saw real traffic, not empty files.
    expect(counts.logLines).toBeGreaterThan(50);
    expect(counts.metricLabels).toBeGreaterThan(20);

    // The scan is shown to fail when a leak is planted: one in a log line, one in a metric label.
    const planted = scanForDocumentText(
      [
        ...sources,
        {
          name: 'planted.log',
          kind: 'log',
          text: JSON.stringify({ level: 'info', msg: 'job generated', preview: `the patient ${SECRETS[1]}` }),
        },
        {
          name: 'planted /metrics',
          kind: 'metrics',
          text: `# HELP gembatch_planted_total planted\n# TYPE gembatch_planted_total counter\ngembatch_planted_total{doc="${SECRETS[2]}"} 1\n`,
        },
      ],
      SECRETS,
    );
    expect(planted.leaks.map((leak) => `${leak.source}: ${leak.needle}`)).toEqual([
      `planted.log: ${SECRETS[1]}`,
      `planted /metrics: ${SECRETS[2]}`,
    ]);

    reportScenario(
      'privacy scan',
      `${jobs.length} jobs (${[...finished.values()].filter((s) => s === 'completed').length} completed), ${counts.logLines} log lines and ${counts.metricLabels} metric labels of 3 services scanned, 0 hits (a planted leak is found)`,
    );
  });
});
