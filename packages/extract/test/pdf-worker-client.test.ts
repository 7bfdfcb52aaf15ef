import { GembatchError } from '@gembatch/contracts';
import { tempDir, writeScannedPdf, type TempDir } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { PdfJsError, PdfWorkerClient } from '../src/pdf/pdf-worker-client.ts';
import { expectErrorCode } from './expect-error-code.ts';

let dir: TempDir;
let pdf: string;

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-worker-');
  pdf = await writeScannedPdf(`${dir.path}/mixed.pdf`, { pages: ['text', 'scan'] });
});

afterAll(async () => {
  await dir.cleanup();
});

async function openClient(signal?: AbortSignal) {
  const opened = await PdfWorkerClient.open({ path: pdf, maxImagePixels: 50_000_000, ...(signal ? { signal } : {}) });
  onTestFinished(() => opened.client.close());
  return opened;
}

describe('PdfWorkerClient', () => {
  it('opens a document in a worker thread and answers page requests', async () => {
    const { client, info } = await openClient();
    expect(info).toMatchObject({ pages: 2, encrypted: false, hasAcroForm: false });
    const text = await client.call({ op: 'pageText', page: 0, coverageBelowChars: 30 }, 30_000);
    expect(text.text).toContain('real text layer');
    expect(text.imageCoverage).toBeNull();
    expect(await client.call({ op: 'pageCoverage', page: 1 }, 30_000)).toBe(1);
    const rendered = await client.call({ op: 'render', page: 1, maxSide: 300, maxPixels: 1_000_000 }, 30_000);
    expect(Math.max(rendered.width, rendered.height)).toBe(300);
    expect(rendered.rgba.length).toBe(rendered.width * rendered.height * 4);
  });

  it('reports a page pdf.js cannot give as a PdfJsError and keeps working', async () => {
    const { client } = await openClient();
    await expect(client.call({ op: 'pageText', page: 5, coverageBelowChars: 30 }, 30_000)).rejects.toBeInstanceOf(
      PdfJsError,
    );
    expect((await client.call({ op: 'pageText', page: 0, coverageBelowChars: 30 }, 30_000)).text).toContain(
      'real text layer',
    );
  });

  it('ends the worker when a call runs past its limit, and restart() reopens the document', async () => {
    const { client } = await openClient();
    // Rendering a page at 100 Mpx cannot finish within 1 ms.
    await expectErrorCode(
      client.call({ op: 'render', page: 1, dpi: 600, maxPixels: 100_000_000 }, 1),
      'GB_ERR_TIMEOUT',
    );
    await expectErrorCode(client.call({ op: 'pageCoverage', page: 1 }, 30_000), 'GB_ERR_INTERNAL');
    await client.restart();
    expect(await client.call({ op: 'pageCoverage', page: 1 }, 30_000)).toBe(1);
  });

  it('is cancelled by its abort signal and closes idempotently', async () => {
    const controller = new AbortController();
    const { client } = await openClient(controller.signal);
    const pending = client.call({ op: 'render', page: 1, dpi: 300, maxPixels: 100_000_000 }, 60_000);
    controller.abort();
    await expectErrorCode(pending, 'GB_ERR_CANCELLED');
    await client.close();
    await client.close();
    await expect(client.call({ op: 'pageCoverage', page: 0 }, 1000)).rejects.toBeInstanceOf(GembatchError);
  });

  it('refuses to start when already cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    await expectErrorCode(
      PdfWorkerClient.open({ path: pdf, maxImagePixels: 1, signal: controller.signal }),
      'GB_ERR_CANCELLED',
    );
  });
});
