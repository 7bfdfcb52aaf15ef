import { stat } from 'node:fs/promises';
import { tempDir, writeDocx, writeZipBombDocx, type TempDir } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, type ExtractOptions } from '../src/index.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;
const MIB = 1024 * 1024;
// The worker's default upload cap (GEMBATCH_MAX_FILE_BYTES), which used to be the inflate cap too.
const WORKER_MAX_FILE_BYTES = 512 * MIB;

function options(path: string): ExtractOptions {
  return {
    path,
    limits: { ...DEFAULT_EXTRACT_LIMITS, maxBytes: WORKER_MAX_FILE_BYTES },
    scannedPages: 'ocr',
    visionAvailable: false,
    putBlob: new MemoryBlobSink().put,
  };
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-docx-bomb-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('DOCX zip bombs', () => {
  it('a 0.5 MB DOCX that inflates to 512 MiB fails fast with a non-retryable GB_ERR_PAYLOAD_TOO_LARGE (it used to inflate fully, then fail retryably in toString)', async () => {
    const path = await writeZipBombDocx(file('bomb.docx'));
    expect((await stat(path)).size).toBeLessThan(MIB);
    const error = await expectErrorCode(extractFile(options(path)), 'GB_ERR_PAYLOAD_TOO_LARGE');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/100 times its compressed size/);
  });

  it('a highly compressed part under 16 MiB is still read (the ratio guard spares small parts), and so are real documents', async () => {
    // 15 MiB of padding: under the 16 MiB floor where the ratio guard starts, so only the caps apply.
    const small = await writeZipBombDocx(file('small-bomb.docx'), { inflatedBytes: 15 * MIB });
    expect((await extractFile(options(small))).text).toBe('bomb');
    const real = await writeDocx(file('real.docx'), { paragraphs: ['Referral to cardiology'] });
    expect((await extractFile(options(real))).text).toBe('Referral to cardiology');
  });
});
