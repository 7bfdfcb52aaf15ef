import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GEMMA4_12B_CATALOG } from '@gembatch/inference';
import { serveModelHub, tempDir } from '@gembatch/testing';
import { runModelsList, runModelsPull } from '../src/commands/models.ts';

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Collects what a command writes. */
function sink() {
  const chunks: string[] = [];
  const out = { write: (chunk: string) => chunks.push(chunk) > 0 } as unknown as NodeJS.WritableStream;
  return { out, text: () => chunks.join(''), clear: () => void chunks.splice(0) };
}

describe('gembatch models list | pull', () => {
  it('list prints the catalog with what fits the given memory and the choice', async () => {
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const output = sink();
    expect(
      await runModelsList(['--json', '--gpu', 'cpu', '--vram', '16GiB', '--models-dir', dir.path], output.out, {}),
    ).toBe(0);
    const report = JSON.parse(output.text()) as {
      choice: { quant: string };
      rows: Array<{ quant: string; fit: string; downloaded: boolean }>;
    };
    expect(report.choice.quant).toBe('Q8_0');
    expect(report.rows.find((r) => r.quant === 'BF16')?.fit).toBe('no');
    output.clear();
    expect(await runModelsList(['--gpu', 'cpu', '--vram', '16GiB', '--models-dir', dir.path], output.out, {})).toBe(0);
    expect(output.text()).toMatch(/\*Q8_0/);
    expect(await runModelsList(['--bogus'], output.out, {})).toBe(1);
  });

  it('pull downloads a catalog quant from its pinned revision with progress and checksum, then finds it verified', async () => {
    const entry = GEMMA4_12B_CATALOG.entries.find((e) => e.quant === 'Q4_K_M');
    const { repo, file } = /^hf:(?<repo>[^/]+\/[^/]+)\/(?<file>.+)$/.exec(entry?.source ?? '')?.groups ?? {};
    const bytes = randomBytes(50_000);
    const server = await serveModelHub({ [`${repo}/${file}`]: bytes });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const output = sink();
    expect(
      await runModelsPull(['q4_k_m', '--models-dir', dir.path, '--endpoint', server.endpoint], output.out, {}),
      output.text(),
    ).toBe(0);
    expect(output.text()).toMatch(/100%/);
    expect(output.text()).toContain(sha(bytes));
    expect(new Set(server.revisions)).toEqual(new Set([entry?.revision ?? 'main']));
    output.clear();
    // GEMBATCH_MODELS_DIR is read when --models-dir is not given.
    expect(
      await runModelsPull(['Q4_K_M', '--endpoint', server.endpoint], output.out, { GEMBATCH_MODELS_DIR: dir.path }),
    ).toBe(0);
    expect(output.text()).toMatch(/already downloaded and verified/);
    expect(await runModelsPull(['Q3_XS', '--models-dir', dir.path], output.out, {})).toBe(1);
  });

  it('pull records the commit the Hub names in the lock (GEMBATCH_MODEL_LOCK), downloads from it, and list shows the pin state', async () => {
    const commit = 'c0ffee0000000000000000000000000000c0ffee';
    const entry = GEMMA4_12B_CATALOG.entries.find((e) => e.quant === 'Q5_K_M');
    const { repo, file } = /^hf:(?<repo>[^/]+\/[^/]+)\/(?<file>.+)$/.exec(entry?.source ?? '')?.groups ?? {};
    const bytes = randomBytes(40_000);
    const server = await serveModelHub({ [`${repo}/${file}`]: bytes }, { commit });
    const dir = await tempDir();
    onTestFinished(() => dir.cleanup());
    const env = { GEMBATCH_MODEL_LOCK: `${dir.path}/ops/models.lock.json` };
    const output = sink();
    expect(
      await runModelsPull(
        ['Q5_K_M', '--models-dir', `${dir.path}/models`, '--endpoint', server.endpoint],
        output.out,
        env,
      ),
      output.text(),
    ).toBe(0);
    expect(output.text()).toContain(`at commit ${commit}`);
    expect(server.revisions.at(-1)).toBe(commit);
    output.clear();
    expect(
      await runModelsList(
        ['--json', '--gpu', 'cpu', '--vram', '16GiB', '--models-dir', `${dir.path}/models`],
        output.out,
        env,
      ),
    ).toBe(0);
    const report = JSON.parse(output.text()) as { rows: Array<{ quant: string; pin: string }> };
    expect(report.rows.find((r) => r.quant === 'Q5_K_M')?.pin).toBe(entry?.sha256 ? 'pinned' : 'locked');
    expect(report.rows.find((r) => r.quant === 'Q8_0')?.pin).toBe(
      GEMMA4_12B_CATALOG.entries.find((e) => e.quant === 'Q8_0')?.sha256 ? 'pinned' : 'unpinned',
    );
  });
});
