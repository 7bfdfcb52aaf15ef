import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { toFile } from 'openai';
import { describe, expect } from 'vitest';
import { ensureTinyGemma4, redisTest, tempDir, writeSampleImage, writeToneWav } from '@gembatch/testing';
import { jsonl, parseJsonl, startBatchStack } from './batch-stack.ts';

/** One line of a batch output file, as the SDK's types describe it. */
interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: OpenAI.Chat.Completions.ChatCompletion } | null;
  error: { code: string; message: string } | null;
}

const MODEL = 'gemma-4-12b-it';
const TEXT_LINES = 464;
const IMAGE_LINES = 18;
const AUDIO_LINES = 15;

describe('the OpenAI Batch flow with the official openai SDK', () => {
  redisTest(
    '500 chat-completions lines (text, data-URL images, input_audio) on the tiny Gemma 4 + projector: every good line completes in order, 3 bad lines land in the error file with their custom_id and code',
    async ({ redis }) => {
      const models = await ensureTinyGemma4();
      const media = await tempDir();
      const s = await startBatchStack(redis, {
        model: models.modelPath,
        mmproj: models.mmprojPath,
        sequences: 4,
        env: { GEMBATCH_EXTRACT_CONCURRENCY: '2' },
      });
      try {
        const png = (
          await readFile(await writeSampleImage(join(media.path, 'chart.png'), 'png', { width: 160, height: 120 }))
        ).toString('base64');
        const wav = (await readFile(await writeToneWav(join(media.path, 'tone.wav'), 1))).toString('base64');
        const lines: unknown[] = [];
        const kinds: string[] = [];
        for (let i = 0; i < TEXT_LINES + IMAGE_LINES + AUDIO_LINES; i += 1) {
          const kind =
            i % 27 === 3 && kinds.filter((k) => k === 'image').length < IMAGE_LINES
              ? 'image'
              : i % 27 === 7 && kinds.filter((k) => k === 'audio').length < AUDIO_LINES
                ? 'audio'
                : 'text';
          kinds.push(kind);
          const content =
            kind === 'image'
              ? [
                  { type: 'text', text: 'What does this chart show?' },
                  { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } },
                ]
              : kind === 'audio'
                ? [
                    { type: 'text', text: 'What is this sound?' },
                    { type: 'input_audio', input_audio: { data: wav, format: 'wav' } },
                  ]
                : `Say something about the number ${i}.`;
          lines.push({
            custom_id: `req-${i}`,
            method: 'POST',
            url: '/v1/chat/completions',
            body: {
              model: MODEL,
              messages: [
                { role: 'system', content: 'Answer briefly.' },
                { role: 'user', content },
              ],
              max_tokens: 4,
              temperature: 0,
            },
          });
        }
        // Fill the image and audio quotas if the pattern above fell short, then three bad lines in the middle.
        const bad = [
          {
            custom_id: 'bad-empty-messages',
            method: 'POST',
            url: '/v1/chat/completions',
            body: { model: MODEL, messages: [] },
          },
          {
            custom_id: 'bad-remote-image',
            method: 'POST',
            url: '/v1/chat/completions',
            body: {
              model: MODEL,
              messages: [
                { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] },
              ],
            },
          },
          {
            custom_id: 'bad-missing-file',
            method: 'POST',
            url: '/v1/chat/completions',
            body: {
              model: MODEL,
              messages: [
                {
                  role: 'user',
                  content: [
                    { type: 'text', text: 'Read this.' },
                    { type: 'file', file: { file_id: 'file_00000000000000000000000000000000' } },
                  ],
                },
              ],
            },
          },
        ];
        lines.splice(100, 0, bad[0]);
        lines.splice(250, 0, bad[1]);
        lines.splice(400, 0, bad[2]);
        expect(lines).toHaveLength(500);
        const ids = lines.map((line) => (line as { custom_id: string }).custom_id);

        const input = await s.openai.files.create({
          file: await toFile(Buffer.from(jsonl(lines)), 'chat.jsonl'),
          purpose: 'batch',
        });
        const created = await s.openai.batches.create({
          input_file_id: input.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: { run: 'sdk-acceptance' },
        });
        expect(created).toMatchObject({
          object: 'batch',
          status: 'validating',
          endpoint: '/v1/chat/completions',
          input_file_id: input.id,
          metadata: { run: 'sdk-acceptance' },
        });

        // Partial output while it runs: what is there is in input order.
        let batch = await s.openai.batches.retrieve(created.id);
        const deadline = Date.now() + 300_000;
        let sawPartial = false;
        while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
          if (Date.now() > deadline)
            throw new Error(`batch still ${batch.status}: ${JSON.stringify(batch.request_counts)}`);
          if (!sawPartial && batch.status === 'in_progress' && (batch.request_counts?.completed ?? 0) >= 20) {
            const partial = parseJsonl<OutputLine>(
              await (await fetch(`${s.api}/v1/batches/${created.id}/output`)).text(),
            );
            expect(partial.length).toBeGreaterThan(0);
            const positions = partial.map((line) => ids.indexOf(line.custom_id));
            expect(positions).toEqual([...positions].sort((a, b) => a - b));
            sawPartial = true;
          }
          await new Promise((resolveWait) => setTimeout(resolveWait, 250));
          batch = await s.openai.batches.retrieve(created.id);
        }
        expect(batch.status).toBe('completed');
        // 500 requests take tens of seconds: the partial read above happened while it ran.
        expect(sawPartial).toBe(true);
        expect(batch.request_counts).toEqual({ total: 500, completed: 497, failed: 3 });
        for (const stamp of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at'] as const)
          expect(Number.isInteger(batch[stamp])).toBe(true);

        const output = parseJsonl<OutputLine>(
          await (await s.openai.files.content(batch.output_file_id as string)).text(),
        );
        expect(output.map((line) => line.custom_id)).toEqual(ids.filter((id) => !id.startsWith('bad-')));
        for (const line of output) {
          expect(line.error).toBeNull();
          expect(line.response?.status_code).toBe(200);
          const body = line.response?.body as OpenAI.Chat.Completions.ChatCompletion;
          expect(body.object).toBe('chat.completion');
          expect(body.model).toBe(MODEL);
          expect(typeof body.choices[0]?.message.content).toBe('string');
          expect(['stop', 'length']).toContain(body.choices[0]?.finish_reason);
          expect(body.usage?.completion_tokens).toBeGreaterThan(0);
          expect(body.usage?.total_tokens).toBe(
            (body.usage?.prompt_tokens ?? 0) + (body.usage?.completion_tokens ?? 0),
          );
        }
        // Images and audio reached the model through the projector: their prompts are far longer than a text line's.
        const promptTokens = (kind: string) =>
          output
            .filter((line) => kinds[Number(line.custom_id.slice(4))] === kind)
            .map((line) => line.response?.body.usage?.prompt_tokens ?? 0);
        expect(promptTokens('image')).toHaveLength(IMAGE_LINES);
        expect(promptTokens('audio')).toHaveLength(AUDIO_LINES);
        expect(Math.min(...promptTokens('image'))).toBeGreaterThan(Math.max(...promptTokens('text')));
        expect(Math.min(...promptTokens('audio'))).toBeGreaterThan(Math.max(...promptTokens('text')));

        const errors = parseJsonl<OutputLine>(
          await (await s.openai.files.content(batch.error_file_id as string)).text(),
        );
        expect(errors.map((line) => [line.custom_id, line.error?.code])).toEqual([
          ['bad-empty-messages', 'GB_ERR_BAD_REQUEST'],
          ['bad-remote-image', 'GB_ERR_BAD_REQUEST'],
          ['bad-missing-file', 'GB_ERR_FILE_NOT_FOUND'],
        ]);
        expect(errors[0]?.error?.message).toMatch(/^line 101: /);
        expect(errors[0]?.response?.status_code).toBe(400);

        const listed = await s.openai.batches.list({ limit: 10 });
        expect(listed.data.map((b) => b.id)).toContain(created.id);
      } catch (error) {
        throw new Error(`${(error as Error).message}\napi log:\n${await s.apiProblems()}`, { cause: error });
      } finally {
        await s.stop();
        await s.dir.cleanup();
        await media.cleanup();
      }
    },
    420_000,
  );
});
