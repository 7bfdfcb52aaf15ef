import { existsSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect } from 'vitest';
import type { JobResultDocument, TaskName } from '@gembatch/contracts';
import { getJobResultSha256 } from '@gembatch/queue';
import { getJson } from '@gembatch/storage';
import {
  ensureTestModel,
  ensureTinyGemma4,
  redisTest,
  tempDir,
  writeEncryptedPdf,
  writeOrientedJpeg,
  writeSampleImage,
  writeScannedPdf,
  writeSpeech,
  writeTextPdf,
  writeTruncatedJpeg,
  writeTruncatedPdf,
  writeVideo,
  writeToneWav,
  writeZeroByteFile,
} from '@gembatch/testing';
import { startWorker, TENANT, type WorkerHarness } from './worker-harness.ts';

interface Case {
  name: string;
  path: string;
  task?: TaskName;
  password?: string;
  /** Expected error code; absent means the job completes. */
  code?: string;
  /** The input reaches the model as image or audio. */
  media?: boolean;
}

/** The mixed batch of issue 4: real files of every kind, good and broken. */
async function writeMixedBatch(dir: string): Promise<Case[]> {
  const f = (name: string) => join(dir, name);
  const text = await writeTextPdf(f('opinion.pdf'), [
    'The court affirmed the judgment.',
    'Costs are awarded to the appellee.',
  ]);
  const speech = await writeSpeech(dir, ['wav', 'mp3', 'flac', 'opus']);
  const png = await writeSampleImage(f('chart.png'), 'png', { width: 640, height: 480 });
  await copyFile(png, f('png-named.pdf'));
  return [
    { name: 'text PDF', path: text },
    { name: 'scanned PDF', path: await writeScannedPdf(f('scan.pdf'), { pages: ['scan'] }), media: true },
    {
      name: 'password PDF without the password',
      path: await writeEncryptedPdf(text, f('locked.pdf'), { userPassword: 'abc', ownerPassword: 'owner' }),
      code: 'GB_ERR_PDF_PASSWORD_REQUIRED',
    },
    { name: 'password PDF with the password', path: f('locked.pdf'), password: 'abc' },
    { name: 'EXIF-rotated photo', path: await writeOrientedJpeg(f('photo.jpg')), media: true },
    { name: 'WebP', path: await writeSampleImage(f('image.webp'), 'webp', { width: 640, height: 480 }), media: true },
    { name: 'WAV speech', path: speech.wav, task: 'transcribe', media: true },
    { name: 'MP3 speech', path: speech.mp3, task: 'transcribe', media: true },
    { name: 'FLAC speech', path: speech.flac, task: 'transcribe', media: true },
    { name: 'Opus speech', path: speech.opus, task: 'transcribe', media: true },
    {
      name: 'video without an audio stream',
      path: await writeVideo(f('silent.mp4')),
      task: 'transcribe',
      code: 'GB_ERR_AUDIO_NO_STREAM',
    },
    { name: 'zero bytes', path: await writeZeroByteFile(f('empty.pdf')), code: 'GB_ERR_EMPTY_INPUT' },
    { name: 'truncated PDF', path: await writeTruncatedPdf(f('truncated.pdf'), 0.4), code: 'GB_ERR_PDF_INVALID' },
    { name: 'truncated JPEG', path: await writeTruncatedJpeg(f('truncated.jpg')), code: 'GB_ERR_IMAGE_INVALID' },
    { name: 'PNG named .pdf', path: f('png-named.pdf'), media: true },
  ];
}

/** Submits every case, waits for each, and checks its outcome; then a plain job proves the worker still serves. */
async function runBatch(worker: WorkerHarness, cases: readonly Case[]): Promise<void> {
  const ids = [];
  for (const c of cases)
    ids.push(
      await worker.submitFile(c.path, c.task ?? 'summarize', {
        max_tokens: 16,
        ...(c.password ? { password: c.password } : {}),
      }),
    );
  for (const [index, c] of cases.entries()) {
    const view = await worker.settle(ids[index] as string, 180_000);
    if (c.code) {
      expect({ name: c.name, status: view.status, code: view.error?.code }).toEqual({
        name: c.name,
        status: 'failed',
        code: c.code,
      });
      continue;
    }
    expect({ name: c.name, status: view.status, error: view.error }).toEqual({
      name: c.name,
      status: 'completed',
      error: null,
    });
    expect(view.usage?.generated_tokens, c.name).toBeGreaterThan(0);
    if (c.media) expect(view.usage?.media_tokens, c.name).toBeGreaterThan(0);
  }
  // A password is dropped from the stored job once it has opened the file.
  const unlocked = ids[cases.findIndex((c) => c.password)] as string;
  expect((await worker.producer.queues.extract.getJob(unlocked))?.data).not.toHaveProperty('password');
  const after = await worker.settle(
    await worker.submitText('A short note after the batch.', 'summarize', { max_tokens: 8 }),
  );
  expect(after.status).toBe('completed');
}

const corpusModels = resolve(
  process.env.GEMBATCH_CORPUS_DIR ?? resolve(import.meta.dirname, '../../../../shared/corpus'),
  'models',
);
const corpusPair = {
  modelPath: join(corpusModels, 'tiny-gemma4u.gguf'),
  mmprojPath: join(corpusModels, 'mmproj-tiny-gemma4u.gguf'),
};

describe('mixed batch through a real worker', () => {
  const sources: Array<[string, () => Promise<{ modelPath: string; mmprojPath: string }>, boolean]> = [
    ['the tiny Gemma 4 + projector the testing package writes', ensureTinyGemma4, true],
    [
      'the tiny Gemma 4 + projector from the corpus',
      async () => corpusPair,
      existsSync(corpusPair.modelPath) && existsSync(corpusPair.mmprojPath),
    ],
  ];
  for (const [label, models, available] of sources) {
    redisTest.skipIf(!available)(
      `every file completes with media tokens or fails with its code, on ${label}`,
      async ({ redis }) => {
        const { modelPath, mmprojPath } = await models();
        const worker = await startWorker(redis, {
          GEMBATCH_MODEL: modelPath,
          GEMBATCH_MMPROJ: mmprojPath,
          GEMBATCH_SEQUENCES: '2',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
          GEMBATCH_EXTRACT_CONCURRENCY: '2',
        });
        expect(worker.node.engine?.info.capabilities).toEqual(expect.arrayContaining(['text', 'image', 'audio']));
        const dir = await tempDir();
        try {
          await runBatch(worker, await writeMixedBatch(dir.path));
        } finally {
          await dir.cleanup();
        }
      },
      420_000,
    );
  }

  redisTest(
    'a text-only fleet fails image and audio jobs at once, and OCRs scanned pages instead',
    async ({ redis }) => {
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: await ensureTestModel('tiny'),
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '2048',
      });
      const dir = await tempDir();
      try {
        const photo = await worker.settle(
          await worker.submitFile(await writeOrientedJpeg(join(dir.path, 'photo.jpg')), 'describe'),
        );
        expect(photo.error?.code).toBe('GB_ERR_NO_MEDIA_CAPABLE_NODE');
        const speech = await writeSpeech(dir.path, ['wav']);
        const audio = await worker.settle(await worker.submitFile(speech.wav, 'transcribe'));
        expect(audio.error?.code).toBe('GB_ERR_NO_MEDIA_CAPABLE_NODE');
        const scanId = await worker.submitFile(
          await writeScannedPdf(join(dir.path, 'scan.pdf'), { pages: ['text', 'scan'] }),
          'summarize',
          { max_tokens: 8 },
        );
        const scan = await worker.settle(scanId, 120_000);
        expect(scan.status).toBe('completed');
        const result = await getJson(worker.blobs, await getJobResultSha256(worker.producer, scanId, TENANT), {
          parse: (v: unknown) => v as JobResultDocument,
        });
        expect(result.extraction?.pages_ocr).toEqual([1]);
        expect(result.extraction?.pages_image).toEqual([]);
      } finally {
        await dir.cleanup();
      }
    },
    180_000,
  );

  redisTest(
    'a recording and a scan longer than the context run as ordered media chunks and are reduced',
    async ({ redis }) => {
      const { modelPath, mmprojPath } = await ensureTinyGemma4();
      // 1024 tokens: one 30 s segment (750 audio tokens) or three page images fit, not the whole input.
      const worker = await startWorker(redis, {
        GEMBATCH_MODEL: modelPath,
        GEMBATCH_MMPROJ: mmprojPath,
        GEMBATCH_SEQUENCES: '2',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
      });
      const dir = await tempDir();
      try {
        const recordingId = await worker.submitFile(
          await writeToneWav(join(dir.path, 'hearing.wav'), 70),
          'transcribe',
          { max_tokens: 8 },
        );
        const scanId = await worker.submitFile(
          await writeScannedPdf(join(dir.path, 'fax.pdf'), { pages: ['scan', 'scan', 'scan', 'scan', 'scan', 'scan'] }),
          'summarize',
          { max_tokens: 8 },
        );

        const recording = await worker.settle(recordingId, 240_000);
        expect(recording.error).toBeNull();
        const transcript = await getJson(worker.blobs, await getJobResultSha256(worker.producer, recordingId, TENANT), {
          parse: (v: unknown) => v as JobResultDocument,
        });
        expect(transcript.chunks).toBe(3);
        const segments = (transcript.output as { segments: Array<{ start_s: number; end_s: number }> }).segments;
        expect(segments.map((s) => Math.round(s.start_s))).toEqual([0, 30, 60]);
        expect(segments.at(-1)?.end_s).toBeCloseTo(70, 0);
        // 25 audio tokens a second, all of them counted once.
        expect(recording.usage?.media_tokens).toBeGreaterThanOrEqual(70 * 25);

        const scan = await worker.settle(scanId, 240_000);
        expect(scan.error).toBeNull();
        const summary = await getJson(worker.blobs, await getJobResultSha256(worker.producer, scanId, TENANT), {
          parse: (v: unknown) => v as JobResultDocument,
        });
        expect(summary.chunks).toBeGreaterThanOrEqual(2);
        expect(summary.extraction?.pages_image).toEqual([0, 1, 2, 3, 4, 5]);
        expect(scan.usage?.media_tokens).toBeGreaterThan(0);
      } finally {
        await dir.cleanup();
      }
    },
    300_000,
  );
});
