import { copyFile, writeFile } from 'node:fs/promises';
import { ExtractedDocument } from '@gembatch/contracts';
import {
  tempDir,
  writeDocx,
  writeSampleImage,
  writeTextPdf,
  writeZeroByteFile,
  writeZipFile,
  type TempDir,
} from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_EXTRACT_LIMITS, extractFile, sniffMediaType, type ExtractOptions } from '../src/index.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;

function options(path: string, overrides: Partial<ExtractOptions> = {}): ExtractOptions {
  return {
    path,
    limits: DEFAULT_EXTRACT_LIMITS,
    scannedPages: 'auto',
    visionAvailable: false,
    putBlob: new MemoryBlobSink().put,
    ...overrides,
  };
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-text-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('sniffMediaType', () => {
  it('decides by content, never by name', async () => {
    await writeTextPdf(file('doc.pdf'), ['hello']);
    await copyFile(file('doc.pdf'), file('holiday.jpg'));
    await copyFile(await writeSampleImage(file('img.png'), 'png', { width: 10, height: 10 }), file('report.pdf'));
    await writeFile(file('notes.pdf'), '# Notes\n\n- first\n- second\n');
    expect(await sniffMediaType(file('holiday.jpg'))).toMatchObject({ mime: 'application/pdf', kind: 'pdf' });
    expect(await sniffMediaType(file('report.pdf'))).toMatchObject({
      mime: 'image/png',
      kind: 'image',
      detail: 'PNG image (image/png)',
    });
    expect(await sniffMediaType(file('notes.pdf'))).toEqual({
      mime: 'text/markdown',
      kind: 'text',
      detail: 'text/markdown; charset=utf-8',
    });
  });

  it('finds a PDF header behind leading junk but not in text that mentions one', async () => {
    const pdf = Buffer.from(await import('node:fs/promises').then((fs) => fs.readFile(file('doc.pdf'))));
    await writeFile(file('junk.bin'), Buffer.concat([Buffer.from([0x00, 0x01, 0x02, 0xff]), pdf]));
    await writeFile(file('about.txt'), 'Files start with %PDF-1.7 and end with %%EOF.\n');
    expect((await sniffMediaType(file('junk.bin'))).kind).toBe('pdf');
    expect((await sniffMediaType(file('about.txt'))).mime).toBe('text/plain');
  });

  it('reports empty, unknown and missing files', async () => {
    expect(await sniffMediaType(await writeZeroByteFile(file('empty')))).toEqual({
      mime: 'application/octet-stream',
      kind: 'unknown',
      detail: 'empty file',
    });
    await writeFile(file('noise.bin'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
    expect((await sniffMediaType(file('noise.bin'))).kind).toBe('unknown');
    await expectErrorCode(sniffMediaType(file('nope')), 'GB_ERR_FILE_NOT_FOUND');
  });
});

describe('extractFile on text documents and unsupported input', () => {
  it('reads plain text and markdown as they are', async () => {
    await writeFile(file('note.txt'), 'Patient seen on Monday.\r\nNo complaints.   \r\n');
    const plain = await extractFile(options(file('note.txt')));
    expect(ExtractedDocument.parse(plain)).toEqual(plain);
    expect(plain).toMatchObject({
      media_type: 'text/plain',
      text: 'Patient seen on Monday.\nNo complaints.\n',
      kinds: ['text'],
      pages: [],
      media: [],
    });
    await writeFile(file('readme.md'), '# Plan\n\n- rest\n- **ice**\n');
    expect((await extractFile(options(file('readme.md')))).text).toBe('# Plan\n\n- rest\n- **ice**\n');
  });

  it('turns HTML, RTF and XML into readable text', async () => {
    await writeFile(
      file('page.html'),
      '<!doctype html><html><head><title>x</title></head><body><h1>Visit</h1><p>BP&nbsp;120/80</p></body></html>',
    );
    expect((await extractFile(options(file('page.html')))).text).toBe('Visit\nBP 120/80');
    await writeFile(
      file('letter.rtf'),
      String.raw`{\rtf1\ansi{\fonttbl{\f0 Arial;}}\f0 Dear Dr. M\'fcller,\par thank you.\par}`,
      'latin1',
    );
    const rtf = await extractFile(options(file('letter.rtf')));
    expect(rtf).toMatchObject({ media_type: 'application/rtf', text: 'Dear Dr. Müller,\nthank you.' });
    await writeFile(
      file('cda.xml'),
      '<?xml version="1.0"?><ClinicalDocument><title>Summary</title><section><text>Stable.</text></section></ClinicalDocument>',
    );
    expect((await extractFile(options(file('cda.xml')))).text).toBe('Summary\nStable.');
  });

  it('reads the body of a Word document (DOCX), tables included', async () => {
    await writeDocx(file('referral.docx'), {
      paragraphs: ['Referral to cardiology', 'Reason: chest pain & dyspnoea'],
      table: [
        ['Test', 'Value'],
        ['Troponin', '< 5 ng/L'],
      ],
    });
    await copyFile(file('referral.docx'), file('referral.pdf'));
    const doc = await extractFile(options(file('referral.pdf')));
    expect(ExtractedDocument.parse(doc)).toEqual(doc);
    expect(doc.media_type).toBe('application/vnd.openxmlformats-officedocument.wordprocessingml.document');
    expect(doc.text).toBe('Referral to cardiology\nReason: chest pain & dyspnoea\nTest\tValue\nTroponin\t< 5 ng/L');
  });

  it('refuses a DOCX whose body inflates beyond the byte cap (a zip bomb)', async () => {
    await writeDocx(file('bomb.docx'), { paragraphs: ['x'], bodyPadding: 20_000_000 });
    await expectErrorCode(
      extractFile(options(file('bomb.docx'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxBytes: 1_000_000 } })),
      'GB_ERR_PAYLOAD_TOO_LARGE',
    );
  });

  it('decodes legacy Windows-1252 and UTF-16 text', async () => {
    await writeFile(file('legacy.txt'), Buffer.from('Caf\xe9 \x80 5 \x93ok\x94\n', 'latin1'));
    expect((await extractFile(options(file('legacy.txt')))).text).toBe('Café € 5 “ok”\n');
    await writeFile(file('utf16.txt'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Grüße\n', 'utf16le')]));
    expect((await extractFile(options(file('utf16.txt')))).text).toBe('Grüße\n');
  });

  it('fails with stable codes on empty, whitespace-only, oversized and unsupported input', async () => {
    await expectErrorCode(extractFile(options(file('empty'))), 'GB_ERR_EMPTY_INPUT');
    await writeFile(file('blank.txt'), ' \n\t\n');
    await expectErrorCode(extractFile(options(file('blank.txt'))), 'GB_ERR_EMPTY_INPUT');
    await expectErrorCode(
      extractFile(options(file('note.txt'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxBytes: 10 } })),
      'GB_ERR_PAYLOAD_TOO_LARGE',
    );
    const noise = await expectErrorCode(extractFile(options(file('noise.bin'))), 'GB_ERR_UNSUPPORTED_MEDIA');
    expect(noise.message).toContain('unrecognised binary data');
    await writeFile(file('drawing.svg'), '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    const svg = await expectErrorCode(extractFile(options(file('drawing.svg'))), 'GB_ERR_UNSUPPORTED_MEDIA');
    expect(svg.message).toContain('image/svg+xml');
    // Other ZIP-based formats are named in the error.
    await writeZipFile(file('photos.docx'), { 'a.txt': 'not a document' });
    const zip = await expectErrorCode(extractFile(options(file('photos.docx'))), 'GB_ERR_UNSUPPORTED_MEDIA');
    expect(zip.message).toMatch(/zip/i);
    await expectErrorCode(
      extractFile(options(file('note.txt'), { limits: { ...DEFAULT_EXTRACT_LIMITS, maxPages: 0 } })),
      'GB_ERR_CONFIG',
    );
  });
});
