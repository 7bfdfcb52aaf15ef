import { join } from 'node:path';
import { describe, expect, onTestFinished } from 'vitest';
import { closeAfterTest, openTestRedis, redisTest, tempDir } from '@gembatch/testing';
import { FileStore, FileSystemBlobStore } from '../src/index.ts';

describe('FileStore.delete', () => {
  redisTest(
    'deletes a zero-byte file (what a batch with no errors leaves as its empty error file) and keeps the usage of the rest',
    async ({ redis }) => {
      const dir = await tempDir();
      onTestFinished(() => dir.cleanup());
      const connection = closeAfterTest(openTestRedis(redis.url));
      const files = new FileStore({
        redis: connection,
        prefix: redis.prefix,
        blobs: new FileSystemBlobStore({ root: join(dir.path, 'blobs') }),
      });
      const kept = await files.create(Buffer.from('twelve bytes'), { tenant: 'acme', filename: 'kept.txt' });
      const empty = await files.create(Buffer.alloc(0), {
        tenant: 'acme',
        filename: 'empty.jsonl',
        purpose: 'batch_output',
      });
      expect(await files.storedBytes('acme')).toBe(12);
      // Before the fix the delete script asked Redis for HINCRBY by "-0", which it refuses.
      expect((await files.delete('acme', empty.id))?.id).toBe(empty.id);
      expect(await files.find('acme', empty.id)).toBeUndefined();
      expect(await files.storedBytes('acme')).toBe(12);
      expect((await files.delete('acme', kept.id))?.id).toBe(kept.id);
      expect(await files.storedBytes('acme')).toBe(0);
    },
  );
});
