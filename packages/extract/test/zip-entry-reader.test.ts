import { readFile, writeFile } from 'node:fs/promises';
import { tempDir, writeZipFile, type TempDir } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readZipEntry } from '../src/text/zip-entry-reader.ts';
import { expectErrorCode } from './expect-error-code.ts';

let dir: TempDir;

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-zip-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('readZipEntry', () => {
  it('reads one deflated entry by name and reports a missing one as undefined', async () => {
    const path = await writeZipFile(`${dir.path}/a.zip`, { 'first.txt': 'one', 'word/document.xml': '<x>two</x>' });
    expect((await readZipEntry(path, 'word/document.xml', 1000))?.toString()).toBe('<x>two</x>');
    expect(await readZipEntry(path, 'missing.xml', 1000)).toBeUndefined();
  });

  it('stops inflating at the byte cap and rejects damaged archives', async () => {
    const path = await writeZipFile(`${dir.path}/big.zip`, { 'big.txt': ' '.repeat(100_000) });
    await expectErrorCode(readZipEntry(path, 'big.txt', 10_000), 'GB_ERR_PAYLOAD_TOO_LARGE');
    const bytes = await readFile(path);
    await writeFile(`${dir.path}/cut.zip`, bytes.subarray(0, bytes.length - 30));
    await expectErrorCode(readZipEntry(`${dir.path}/cut.zip`, 'big.txt', 10_000), 'GB_ERR_UNSUPPORTED_MEDIA');
    const corrupt = Buffer.from(bytes);
    corrupt.fill(0xaa, 40, 80);
    await writeFile(`${dir.path}/corrupt.zip`, corrupt);
    await expectErrorCode(readZipEntry(`${dir.path}/corrupt.zip`, 'big.txt', 200_000), 'GB_ERR_UNSUPPORTED_MEDIA');
  });
});
