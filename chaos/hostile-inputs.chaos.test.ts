import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { EmbeddedStack } from '@gembatch/cli';
import type { ErrorCode } from '@gembatch/contracts';
import {
  ensureTestModel,
  findFreePort,
  startRedis,
  systemToolAvailable,
  tempDir,
  writeEmptyWav,
  writeEncryptedPdf,
  writeImageBombPdf,
  writeLyingPageCountPdf,
  writeTextPdf,
  writeTruncatedJpeg,
  writeTruncatedPdf,
  writeZeroByteFile,
  writeZeroPagePdf,
  writeZipBombDocx,
  writeZipFile,
  SAMPLE_CLINIC_NOTE,
  SAMPLE_CONTRACT,
  SAMPLE_LETTER,
} from '@gembatch/testing';
import { reportScenario } from './report.ts';

/**
 * Issue 9, `make chaos`: ~40 hostile inputs (regex bombs, zip and pixel bombs, a PDF declaring 200M
 * pages, `../` names, an endless upload, deep JSON, ReDoS schemas, truncated, mislabelled and empty
 * files) sent through the real API to a real worker process, while ordinary jobs decode on the
 * same node. Each hostile input must end in its typed error (or, where the input is merely
 * unpleasant and now handled in linear time, complete); the ordinary jobs must complete; the
 * worker's event-loop lag p99 during the flood must stay under 200 ms and its `/livez` green.
 */

const MB = 1024 * 1024;
/** Event-loop lag budget of the worker during the flood (the issue's acceptance figure). */
const LAG_P99_BUDGET_S = 0.2;
/** Upload cap of the stack under test; the endless upload must be cut off near it. */
const MAX_UPLOAD_BYTES = 16 * MB;
/** Bound on starting the stack (three tsx processes and a model on a busy machine with few cores). */
const STACK_START_TIMEOUT_MS = 150_000;
/** Bound on every job settling after the flood. */
const SETTLE_TIMEOUT_MS = 150_000;

type Expected = ErrorCode | 'completed';

/** What one hostile input turned into: an HTTP refusal with its code, or a job to wait for. */
type Submitted = { code: string; status: number } | { jobId: string };

interface HostileCase {
  name: string;
  /** Any of these outcomes is right (a media file on a node without a projector may stop earlier, at the capability check). */
  expected: readonly Expected[];
  submit(): Promise<Submitted>;
}

interface JobViewBody {
  id: string;
  status: string;
  error: { code: string; message: string } | null;
}

/** A PNG that declares `side` × `side` pixels and carries one tiny compressed row: a pixel bomb. */
function pixelBombPng(side: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** `depth` nested arrays as JSON text, built without recursion. */
function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** A JSON Schema nested `levels` objects deep. */
function deepSchema(levels: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let index = 0; index < levels; index++) schema = { type: 'object', properties: { a: schema } };
  return schema;
}

/** Percentile `q` of a Prometheus histogram given as cumulative `[le, count]` pairs, interpolated as `histogram_quantile` does. */
function histogramQuantile(q: number, buckets: ReadonlyArray<[number, number]>): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return previousLe;
      return previousLe + ((le - previousLe) * (rank - previousCount)) / Math.max(1, count - previousCount);
    }
    previousLe = le;
    previousCount = count;
  }
  return previousLe;
}

/** The worker's `gembatch_event_loop_lag_seconds` buckets, cumulative, from its `/metrics`. */
async function lagBuckets(metricsUrl: string): Promise<Array<[number, number]>> {
  const text = await (await fetch(metricsUrl)).text();
  return [...text.matchAll(/^gembatch_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(
    (m) => [m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])] as [number, number],
  );
}

/** The `error.code` of a JSON error answer, or `unparsable`. */
async function errorCodeOf(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  try {
    return (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { code: string } }).error.code;
  } catch {
    return 'unparsable';
  }
}

/**
 * Streams up to `totalBytes` of zeros as a multipart upload, stopping as soon as the API answers.
 * Returns the status, the error code and how many bytes went out before the answer.
 */
function endlessUpload(api: string, totalBytes: number): Promise<{ status: number; code: string; sentBytes: number }> {
  return new Promise((resolve, reject) => {
    const boundary = `----gembatch${randomBytes(8).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const url = new URL('/v1/files', api);
    let sentBytes = 0;
    let answered = false;
    const req = request(
      {
        method: 'POST',
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + totalBytes + tail.length),
        },
      },
      (response) => {
        answered = true;
        void errorCodeOf(response).then((code) => {
          req.destroy();
          resolve({ status: response.statusCode ?? 0, code, sentBytes });
        });
      },
    );
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    const block = Buffer.alloc(MB);
    req.write(head);
    // One block per turn of the event loop, so the answer is read as soon as it comes, not after a
    // run of writes into a socket the server already closed (which fails the request with EPIPE).
    const pump = (): void => {
      if (answered) return;
      if (sentBytes >= totalBytes) {
        req.end(tail);
        return;
      }
      sentBytes += block.length;
      if (req.write(block)) setImmediate(pump);
      else req.once('drain', pump);
    };
    pump();
  });
}

/** Tries of {@link answeredDespiteEarlyClose}: one retry was not enough on a fast host (CI saw EPIPE twice in a row). */
const EARLY_CLOSE_TRIES = 5;

/**
 * Runs `send` again when the connection broke before the answer could be read: a server that
 * answers 413 and closes while the client is still writing can surface as EPIPE or ECONNRESET on
 * the client first (Linux drops the unread answer when the close resets the connection). One of
 * the tries must produce the answer.
 */
async function answeredDespiteEarlyClose<T>(send: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'EPIPE' && code !== 'ECONNRESET') || attempt >= EARLY_CLOSE_TRIES) throw error;
    }
  }
}

/**
 * POSTs a raw JSON body and reads the answer, even when the server answers (413) and closes before
 * the body is sent: `fetch` reports that as a failed request (EPIPE), although the answer came.
 */
function postRawJson(api: string, path: string, body: string): Promise<{ status: number; code: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, api);
    let answered = false;
    const req = request(
      {
        method: 'POST',
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        answered = true;
        void errorCodeOf(response).then((code) => resolve({ status: response.statusCode ?? 0, code }));
      },
    );
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    req.end(body);
  });
}

describe('hostile inputs (issue 9)', () => {
  it('every hostile input gets its typed outcome, ordinary jobs on the same node complete, worker event-loop lag p99 < 200 ms', async () => {
    const dir = await tempDir('gembatch-hostile-');
    const redis = await startRedis({ mode: 'spawn' });
    const metricsPort = await findFreePort();
    const livezPort = await findFreePort();
    const stack = new EmbeddedStack({
      redisUrl: redis.url,
      apiPort: await findFreePort(),
      exporterPort: await findFreePort(),
      dataDir: join(dir.path, 'data'),
      model: await ensureTestModel('tiny'),
      sequences: 4,
      env: {
        GEMBATCH_REDIS_PREFIX: `hostile-${randomBytes(4).toString('hex')}`,
        GEMBATCH_THREADS: '1',
        GEMBATCH_CONTEXT_PER_SEQUENCE: '4096',
        GEMBATCH_METRICS_PORT: String(metricsPort),
        GEMBATCH_LIVEZ_PORT: String(livezPort),
        GEMBATCH_MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
        // The tiny model reads a space as a token: the issue's 60,000 spaces need ~16 chunks of 4096 tokens
        // and complete; megabyte inputs (~300 chunks) fail fast instead of running for minutes.
        GEMBATCH_MAX_CHUNKS_PER_JOB: '24',
        GEMBATCH_CHUNK_OVERLAP_TOKENS: '0',
        // Bounds of the extraction processes (isolation): a bomb ends in seconds, not the default 30 min / 2 GiB.
        GEMBATCH_EXTRACT_TIMEOUT_SECONDS: '30',
        GEMBATCH_EXTRACT_MEMORY_BYTES: '768MiB',
        LOG_LEVEL: 'info',
      },
      status: { write: () => true } as unknown as NodeJS.WritableStream,
      readyTimeoutMs: STACK_START_TIMEOUT_MS,
    });
    try {
      const urls = await stack.start();
      const api = urls.api;
      const metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
      const livezUrl = `http://127.0.0.1:${livezPort}/livez`;

      const postJson = async (body: unknown, raw?: string): Promise<Submitted> => {
        const response = await fetch(`${api}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: raw ?? JSON.stringify(body),
        });
        const answer = (await response.json()) as { id?: string; error?: { code: string } };
        if (response.status === 202 && answer.id) return { jobId: answer.id };
        return { status: response.status, code: answer.error?.code ?? `HTTP ${response.status}` };
      };
      const uploadBytes = async (
        bytes: Buffer,
        filename: string,
        type = 'application/octet-stream',
      ): Promise<{ id?: string; status: number; code?: string; filename?: string }> => {
        const form = new FormData();
        form.append('file', new Blob([bytes], { type }), filename);
        const response = await fetch(`${api}/v1/files`, { method: 'POST', body: form });
        const answer = (await response.json()) as { id?: string; filename?: string; error?: { code: string } };
        return {
          status: response.status,
          ...(answer.id ? { id: answer.id } : {}),
          ...(answer.error ? { code: answer.error.code } : {}),
          ...(answer.filename ? { filename: answer.filename } : {}),
        };
      };
      /** Uploads a file and submits a summarize job on it (max 16 tokens: these jobs are about extraction). */
      const fileJob = async (
        bytes: Buffer,
        filename: string,
        extra: Record<string, unknown> = {},
      ): Promise<Submitted> => {
        const file = await uploadBytes(bytes, filename);
        if (!file.id) return { status: file.status, code: file.code ?? `HTTP ${file.status}` };
        return postJson({ file_id: file.id, task: 'summarize', max_tokens: 16, ...extra });
      };
      const fromPath = async (path: string, filename: string, extra: Record<string, unknown> = {}) =>
        fileJob(await readFile(path), filename, extra);
      const fixture = (name: string) => join(dir.path, name);

      // Ordinary work first: it must keep decoding through the flood.
      const normal: string[] = [];
      for (const [index, text] of [
        SAMPLE_LETTER,
        SAMPLE_CONTRACT,
        SAMPLE_CLINIC_NOTE,
        SAMPLE_LETTER,
        SAMPLE_CONTRACT,
        SAMPLE_CLINIC_NOTE,
      ].entries()) {
        // Tasks without a JSON Schema: the tiny model's random JSON would fail redact's name finder now and then.
        const submitted = await postJson({
          text,
          task: index % 2 === 0 ? 'summarize' : 'prompt',
          prompt: 'List the parties.',
          max_tokens: 48,
        });
        if (!('jobId' in submitted)) throw new Error(`an ordinary job was refused: ${submitted.code}`);
        normal.push(submitted.jobId);
      }
      const pdf = await writeTextPdf(fixture('ordinary.pdf'), [SAMPLE_LETTER, SAMPLE_CONTRACT]);
      for (let index = 0; index < 2; index++) {
        const submitted = await fromPath(pdf, `ordinary-${index}.pdf`, { max_tokens: 48 });
        if (!('jobId' in submitted)) throw new Error(`an ordinary PDF job was refused: ${submitted.code}`);
        normal.push(submitted.jobId);
      }

      // Fixtures of the flood.
      const qpdf = systemToolAvailable('qpdf');
      const encrypted = qpdf
        ? await writeEncryptedPdf(pdf, fixture('encrypted.pdf'), {
            userPassword: 'open-sesame',
            ownerPassword: 'owner-pass',
          })
        : undefined;
      const docx = (xml: string) =>
        writeZipFile(fixture(`doc-${randomBytes(4).toString('hex')}.docx`), {
          '[Content_Types].xml':
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>',
          'word/document.xml': xml,
        });
      const words = 'The tenant paid the rent late again this month and the landlord wrote a letter. ';
      const sameIdSchema = (type: string) => ({
        $id: 'https://example.com/shared-id',
        type: 'object',
        properties: { v: { type } },
      });

      const cases: HostileCase[] = [
        // Regex bombs of the issue, now linear: they complete.
        {
          name: "text file 'a' + 60,000 spaces + 'x'",
          expected: ['completed'],
          submit: () => fileJob(Buffer.from(`a${' '.repeat(60_000)}x`), 'spaces.txt'),
        },
        {
          name: "text file 'a' + 1 MB of spaces + 'x'",
          expected: ['completed', 'GB_ERR_INPUT_TOO_LARGE'],
          submit: () => fileJob(Buffer.from(`a${' '.repeat(MB)}x`), 'spaces-1mb.txt'),
        },
        // Deterministic detectors only (no name finder): the tiny model's random JSON must not decide the outcome.
        {
          name: "inline 'MRN' + 40,000 spaces, redact",
          expected: ['completed'],
          submit: () =>
            postJson({
              text: `MRN${' '.repeat(40_000)}A1234567`,
              task: 'redact',
              options: { types: ['mrn', 'email', 'phone', 'ssn', 'date'] },
              max_tokens: 16,
            }),
        },
        {
          name: 'inline 1 MB-class a.a.a… without an @ end, redact',
          expected: ['completed', 'GB_ERR_INPUT_TOO_LARGE'],
          submit: () => postJson({ text: `x@${'a.'.repeat(400_000)}`, task: 'redact', max_tokens: 16 }),
        },
        {
          name: "HTML of 100,000 '<'",
          expected: ['completed', 'GB_ERR_INPUT_TOO_LARGE'],
          submit: () => fileJob(Buffer.from(`<html><body>${'<'.repeat(100_000)}</body></html>`), 'lt.html', {}),
        },
        {
          name: 'HTML of 100,000 spaces',
          expected: ['GB_ERR_EMPTY_INPUT'],
          submit: () => fileJob(Buffer.from(`<html><body>${' '.repeat(100_000)}</body></html>`), 'blank.html'),
        },
        {
          name: 'HTML of 1 MB of unclosed <a',
          expected: ['GB_ERR_EMPTY_INPUT'],
          submit: () => fileJob(Buffer.from(`<html><body>${'<a'.repeat(MB / 2)}`), 'unclosed.html'),
        },
        {
          name: 'HTML of 100,000 <script> without an end',
          expected: ['completed'],
          submit: () =>
            fileJob(Buffer.from(`<html><body><p>Visible words.</p>${'<script>'.repeat(100_000)}`), 'scripts.html'),
        },
        {
          name: 'HTML of 50,000 unclosed <b> and 50,000 stray </i>',
          expected: ['completed'],
          submit: () =>
            fileJob(Buffer.from(`<html><body>${'<b>'.repeat(50_000)}words${'</i>'.repeat(50_000)}`), 'nesting.html'),
        },
        {
          name: 'XML billion laughs',
          expected: ['completed', 'GB_ERR_EMPTY_INPUT'],
          submit: () =>
            fileJob(
              Buffer.from(
                `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">${Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('')}]><lolz>&lol9; words</lolz>`,
              ),
              'laughs.xml',
            ),
        },
        {
          name: 'DOCX with 1 MB of unclosed <w:p',
          expected: ['GB_ERR_EMPTY_INPUT'],
          submit: async () =>
            fromPath(
              await docx(
                `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${'<w:p'.repeat(MB / 4)}`,
              ),
              'unclosed.docx',
            ),
        },
        {
          name: 'DOCX with a run of 1 MB of spaces',
          expected: ['completed'],
          submit: async () =>
            fromPath(
              await docx(
                `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t xml:space="preserve">a${' '.repeat(MB)}</w:t><w:tab/><w:t>b</w:t></w:r></w:p></w:body></w:document>`,
              ),
              'spaces.docx',
            ),
        },
        {
          name: 'RTF of 100,000 nested groups',
          expected: ['GB_ERR_EMPTY_INPUT', 'completed'],
          submit: () => fileJob(Buffer.from(`{\\rtf1 ${'{'.repeat(100_000)}x${'}'.repeat(100_000)}}`), 'deep.rtf'),
        },
        // Bombs.
        {
          name: 'DOCX inflate bomb (0.5 MB → 512 MiB)',
          expected: ['GB_ERR_PAYLOAD_TOO_LARGE'],
          submit: async () => fromPath(await writeZipBombDocx(fixture('bomb.docx')), 'bomb.docx'),
        },
        {
          name: 'PDF image bomb (1.5 MB → 1.5 GB of pixels)',
          expected: [
            'GB_ERR_EXTRACT_MEMORY',
            'GB_ERR_EXTRACT_TIMEOUT',
            'GB_ERR_NO_MEDIA_CAPABLE_NODE',
            'GB_ERR_NO_TEXT',
          ],
          submit: async () => fromPath(await writeImageBombPdf(fixture('image-bomb.pdf')), 'image-bomb.pdf'),
        },
        {
          name: 'PNG pixel bomb (100,000 × 100,000)',
          expected: ['GB_ERR_IMAGE_TOO_LARGE', 'GB_ERR_NO_MEDIA_CAPABLE_NODE'],
          submit: () => fileJob(pixelBombPng(100_000), 'pixels.png'),
        },
        {
          name: 'PDF declaring 200M pages (its 3 real pages are read)',
          expected: ['completed'],
          submit: async () => fromPath(await writeLyingPageCountPdf(fixture('pages.pdf'), 200_000_000), 'pages.pdf'),
        },
        {
          name: 'ZIP archive (not a document)',
          expected: ['GB_ERR_UNSUPPORTED_MEDIA'],
          submit: async () =>
            fromPath(
              await writeZipFile(fixture('archive.zip'), { 'a.txt': 'x'.repeat(100_000), 'b.bin': randomBytes(1024) }),
              'archive.zip',
            ),
        },
        // Broken, empty and mislabelled files.
        {
          name: 'truncated PDF',
          expected: ['GB_ERR_PDF_INVALID'],
          submit: async () => fromPath(await writeTruncatedPdf(fixture('truncated.pdf'), 0.5), 'truncated.pdf'),
        },
        {
          name: 'PDF with zero pages',
          expected: ['GB_ERR_PDF_EMPTY'],
          submit: async () => fromPath(await writeZeroPagePdf(fixture('zero.pdf')), 'zero.pdf'),
        },
        {
          name: 'truncated JPEG',
          expected: ['GB_ERR_IMAGE_INVALID', 'GB_ERR_NO_MEDIA_CAPABLE_NODE'],
          submit: async () => fromPath(await writeTruncatedJpeg(fixture('truncated.jpg')), 'truncated.jpg'),
        },
        {
          name: 'PNG bytes named .pdf',
          expected: ['GB_ERR_IMAGE_TOO_LARGE', 'GB_ERR_NO_MEDIA_CAPABLE_NODE'],
          submit: () => fileJob(pixelBombPng(50_000), 'report.pdf'),
        },
        {
          name: 'PDF header over random bytes',
          expected: ['GB_ERR_PDF_INVALID'],
          submit: () => fileJob(Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(64 * 1024)]), 'random.pdf'),
        },
        {
          name: 'random binary',
          expected: ['GB_ERR_UNSUPPORTED_MEDIA'],
          submit: () => fileJob(randomBytes(64 * 1024), 'random.bin'),
        },
        {
          name: 'zero-byte file',
          expected: ['GB_ERR_EMPTY_INPUT'],
          submit: async () => fromPath(await writeZeroByteFile(fixture('empty.txt')), 'empty.txt'),
        },
        {
          name: 'WAV with no samples',
          expected: ['GB_ERR_AUDIO_EMPTY', 'GB_ERR_AUDIO_INVALID', 'GB_ERR_NO_MEDIA_CAPABLE_NODE'],
          submit: async () => fromPath(await writeEmptyWav(fixture('empty.wav')), 'empty.wav'),
        },
        ...(encrypted
          ? [
              {
                name: 'encrypted PDF without its password',
                expected: ['GB_ERR_PDF_PASSWORD_REQUIRED'] as const,
                submit: () => fromPath(encrypted, 'locked.pdf'),
              },
              {
                name: 'encrypted PDF with a wrong password',
                expected: ['GB_ERR_PDF_PASSWORD_INVALID'] as const,
                submit: () => fromPath(encrypted, 'locked.pdf', { password: 'wrong' }),
              },
            ]
          : []),
        // Names and sizes.
        {
          name: "file named '../../../etc/passwd'",
          expected: ['completed'],
          submit: async () => {
            const file = await uploadBytes(
              Buffer.from('An ordinary note about a lease.'),
              '../../../etc/passwd',
              'text/plain',
            );
            // Stored under its base name only; the blob itself is content-addressed.
            if (file.filename !== 'passwd' || !file.id)
              return { status: file.status, code: `unexpected filename ${file.filename ?? file.code}` };
            return postJson({ file_id: file.id, task: 'summarize', max_tokens: 16 });
          },
        },
        {
          name: 'an upload of 2 GB (limit 16 MiB)',
          expected: ['GB_ERR_PAYLOAD_TOO_LARGE'],
          submit: async () => {
            const answer = await answeredDespiteEarlyClose(() => endlessUpload(api, 2 * 1024 * MB));
            // Cut off near the limit, not after 2 GB.
            if (answer.sentBytes > 256 * MB)
              return { status: answer.status, code: `sent ${answer.sentBytes} bytes before the answer` };
            return { status: answer.status, code: answer.code };
          },
        },
        {
          name: 'a 9 MB JSON body',
          expected: ['GB_ERR_PAYLOAD_TOO_LARGE'],
          submit: () =>
            answeredDespiteEarlyClose(() =>
              postRawJson(
                api,
                '/v1/jobs',
                JSON.stringify({ text: 'x', task: 'summarize', options: { audience: 'y'.repeat(9 * MB) } }),
              ),
            ),
        },
        {
          name: 'inline text of 2 MB (limit 1 MiB)',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () => postJson({ text: 'é'.repeat(MB), task: 'summarize' }),
        },
        {
          name: 'inline text that would fan out into hundreds of chunks',
          expected: ['GB_ERR_INPUT_TOO_LARGE'],
          submit: () => postJson({ text: words.repeat(9_000), task: 'summarize', max_tokens: 16 }),
        },
        {
          name: '7.8 MB of metadata',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () =>
            postJson({
              text: 'x',
              task: 'summarize',
              metadata: Object.fromEntries(Array.from({ length: 16_000 }, (_, i) => [`k${i}`, 'v'.repeat(480)])),
            }),
        },
        // JSON and schemas.
        {
          name: '100,000-deep JSON body',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () => postJson(undefined, `{"text":"x","task":"summarize","options":${deepJson(100_000)}}`),
        },
        {
          name: 'invalid JSON body',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () => postJson(undefined, '{"text": "x", "task": '),
        },
        {
          name: '2,000-deep json_schema',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () => postJson({ text: 'x', task: 'prompt', prompt: 'p', json_schema: deepSchema(2_000) }),
        },
        {
          name: 'schema pattern with a look-ahead',
          expected: ['GB_ERR_SCHEMA_UNSUPPORTED'],
          submit: () =>
            postJson({
              text: 'x',
              task: 'extract',
              options: {
                schema: { type: 'object', properties: { a: { type: 'string', pattern: '^(?=.*\\d)(\\w+\\s?)*$' } } },
              },
            }),
        },
        {
          name: 'schema pattern with a back-reference in patternProperties',
          expected: ['GB_ERR_SCHEMA_UNSUPPORTED'],
          submit: () =>
            postJson({
              text: 'x',
              task: 'prompt',
              prompt: 'p',
              json_schema: { type: 'object', patternProperties: { '^(a+)\\1$': { type: 'string' } } },
            }),
        },
        {
          name: 'ReDoS schema ^(\\w+\\s?)*$ (runs on RE2)',
          expected: ['completed', 'GB_ERR_SCHEMA_VALIDATION'],
          submit: () =>
            postJson({
              text: `${'word '.repeat(20)}!`,
              task: 'extract',
              max_tokens: 24,
              options: {
                schema: {
                  type: 'object',
                  properties: { name: { type: 'string', pattern: '^(\\w+\\s?)*$' } },
                  required: ['name'],
                },
              },
            }),
        },
        {
          name: 'schema with the same $id as another (1)',
          expected: ['completed', 'GB_ERR_SCHEMA_VALIDATION'],
          submit: () =>
            postJson({ text: 'x', task: 'extract', max_tokens: 24, options: { schema: sameIdSchema('string') } }),
        },
        {
          name: 'schema with the same $id as another (2)',
          expected: ['completed', 'GB_ERR_SCHEMA_VALIDATION'],
          submit: () =>
            postJson({ text: 'x', task: 'extract', max_tokens: 24, options: { schema: sameIdSchema('boolean') } }),
        },
        // Requests that are simply wrong.
        {
          name: 'unknown file_id',
          expected: ['GB_ERR_FILE_NOT_FOUND'],
          submit: () => postJson({ file_id: `file_${'0'.repeat(32)}`, task: 'summarize' }),
        },
        {
          name: 'transcribe task on text',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () => postJson({ text: 'x', task: 'transcribe' }),
        },
        {
          name: 'a 100 KB password',
          expected: ['GB_ERR_BAD_REQUEST'],
          submit: () =>
            postJson({ file_id: `file_${'1'.repeat(32)}`, task: 'summarize', password: 'p'.repeat(100_000) }),
        },
      ];

      // The flood, with the worker's lag and liveness watched throughout.
      const lagBefore = await lagBuckets(metricsUrl);
      // `failures`: answers other than 200 (a 503 says the loop is stalled); `unanswered`: probes this
      // (busy) test process could not complete in time, which say nothing about the worker.
      const livez = { checks: 0, failures: 0, unanswered: 0 };
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          livez.checks++;
          const status = await fetch(livezUrl, { signal: AbortSignal.timeout(2_000) })
            .then((r) => r.status)
            .catch(() => 0);
          if (status === 0) livez.unanswered++;
          else if (status !== 200) livez.failures++;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      const floodStarted = performance.now();
      const submitted = await Promise.all(cases.map(async (c) => ({ c, result: await c.submit() })));

      const settle = async (jobId: string, name = 'ordinary job'): Promise<JobViewBody> => {
        const deadline = Date.now() + SETTLE_TIMEOUT_MS;
        for (;;) {
          const view = (await (await fetch(`${api}/v1/jobs/${jobId}`)).json()) as JobViewBody;
          if (['completed', 'failed', 'cancelled'].includes(view.status)) return view;
          if (Date.now() > deadline)
            throw new Error(`${name} (${jobId}) still ${view.status} after ${SETTLE_TIMEOUT_MS} ms`);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      };
      const outcomes = await Promise.all(
        submitted.map(async ({ c, result }) => {
          if (!('jobId' in result)) return { c, outcome: result.code, detail: `HTTP ${result.status}` };
          const view = await settle(result.jobId, c.name);
          return {
            c,
            outcome: view.status === 'completed' ? 'completed' : (view.error?.code ?? view.status),
            detail: view.error?.message ?? '',
          };
        }),
      );
      const normalViews = await Promise.all(normal.map((id) => settle(id)));
      const floodSeconds = (performance.now() - floodStarted) / 1000;
      watching = false;
      await watcher;
      const lagAfter = await lagBuckets(metricsUrl);

      const delta = lagAfter.map(
        ([le, count], index) => [le, count - (lagBefore[index]?.[1] ?? 0)] as [number, number],
      );
      const samples = delta.at(-1)?.[1] ?? 0;
      const p99 = histogramQuantile(0.99, delta);
      console.log(
        `worker event-loop lag during the flood: p99 ${(p99 * 1000).toFixed(1)} ms over ${samples} samples; buckets ${JSON.stringify(delta)}; /livez failures ${livez.failures}/${livez.checks} (${livez.unanswered} unanswered)`,
      );
      const table = outcomes
        .map(
          ({ c, outcome, detail }) =>
            `${c.expected.includes(outcome as Expected) ? 'ok  ' : 'FAIL'} ${c.name}: ${outcome} (expected ${c.expected.join(' | ')}) ${detail.slice(0, 160)}`,
        )
        .join('\n');
      console.log(table);
      for (const { c, outcome } of outcomes) expect(c.expected, `${c.name} → ${outcome}\n${table}`).toContain(outcome);
      for (const view of normalViews) expect(view.status, JSON.stringify(view.error)).toBe('completed');

      expect(samples).toBeGreaterThan(0);
      expect(p99).toBeLessThan(LAG_P99_BUDGET_S);
      expect(livez.failures).toBe(0);

      const typed = outcomes.filter((o) => o.outcome !== 'completed').length;
      reportScenario(
        'hostile inputs',
        `${outcomes.length}/${cases.length} hostile inputs handled as expected (${typed} typed errors, ${outcomes.length - typed} completed safely), ${normalViews.length}/${normal.length} ordinary jobs completed, worker event-loop lag p99 ${Math.round(p99 * 1000)} ms over ${samples} samples in ${Math.round(floodSeconds)} s, /livez ${livez.checks - livez.failures - livez.unanswered}/${livez.checks} healthy, 0 stalled`,
      );
    } finally {
      await stack.stop(15_000);
      await redis.close();
      await dir.cleanup();
    }
  });
});
