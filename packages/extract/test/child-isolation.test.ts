import { writeFile } from 'node:fs/promises';
import { systemToolAvailable, tempDir, writeToneWav, type TempDir } from '@gembatch/testing';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { extractAudio } from '../src/audio/extract-audio.ts';
import { runProcess } from '../src/util/run-process.ts';
import { expectErrorCode } from './expect-error-code.ts';
import { MemoryBlobSink } from './memory-blob-sink.ts';

const ffmpegMissing = !systemToolAvailable('ffmpeg') || !systemToolAvailable('ffprobe');

let dir: TempDir;
const file = (name: string) => `${dir.path}/${name}`;

function audioInput(path: string, mime: string, sink = new MemoryBlobSink()) {
  return { path, mime, maxSeconds: 60, segmentSeconds: 30, putBlob: sink.put };
}

/** Sets variables for one test and restores them after. */
function withEnv(values: Record<string, string>): void {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  onTestFinished(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
}

beforeAll(async () => {
  dir = await tempDir('gembatch-extract-isolation-');
});

afterAll(async () => {
  await dir.cleanup();
});

describe('child processes of extraction', () => {
  it('get a minimal environment: a secret in the parent never reaches a tool', async () => {
    withEnv({
      REDIS_URL: 'redis://:child-secret@redis:6379',
      HF_TOKEN: 'hf_child_secret',
      GEMBATCH_API_KEYS: 'tenant:child-secret-key',
    });
    const result = await runProcess('env', [], { timeoutMs: 30_000, env: { OMP_THREAD_LIMIT: '1' } });
    const seen = result.stdout.toString('utf8');
    expect(seen).toMatch(/^PATH=/m);
    expect(seen).toMatch(/^OMP_THREAD_LIMIT=1$/m);
    expect(seen).not.toContain('child-secret');
    expect(seen).not.toContain('hf_child_secret');
    expect(seen).not.toMatch(/^(REDIS_URL|HF_TOKEN|GEMBATCH_API_KEYS)=/m);
  });
});

describe.skipIf(ffmpegMissing)('ffmpeg on hostile containers', () => {
  it('refuses a concat script posing as WAV instead of decoding the file it points at', async () => {
    // Another tenant's blob, next to the hostile upload.
    await writeToneWav(file('other-tenant.wav'), 2);
    await writeFile(file('upload'), "ffconcat version 1.0\nfile 'other-tenant.wav'\n");
    const sink = new MemoryBlobSink();
    await expectErrorCode(extractAudio(audioInput(file('upload'), 'audio/wav', sink)), 'GB_ERR_AUDIO_INVALID');
    expect(sink.blobs.size).toBe(0);
  });

  it('refuses an HLS playlist posing as MP3 instead of decoding the local file it lists', async () => {
    // ffmpeg's own defaults already stop a file-opened playlist from fetching URLs, but not from reading local files.
    const other = file('other-tenant.mp3');
    const made = await runProcess(
      'ffmpeg',
      [
        '-nostdin',
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:duration=2',
        '-y',
        other,
      ],
      { timeoutMs: 60_000 },
    );
    expect(made.exitCode).toBe(0);
    await writeFile(file('playlist'), `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2.0,\n${other}\n#EXT-X-ENDLIST\n`);
    const sink = new MemoryBlobSink();
    await expectErrorCode(extractAudio(audioInput(file('playlist'), 'audio/mpeg', sink)), 'GB_ERR_AUDIO_INVALID');
    expect(sink.blobs.size).toBe(0);
  });

  it('refuses a container whose sniffed type has no pinned demuxer, and still decodes real WAV', async () => {
    await writeToneWav(file('tone.wav'), 1);
    await expectErrorCode(extractAudio(audioInput(file('tone.wav'), 'audio/midi')), 'GB_ERR_UNSUPPORTED_MEDIA');
    const doc = await extractAudio(audioInput(file('tone.wav'), 'audio/wav'));
    expect(doc.media).toHaveLength(1);
  });
});
