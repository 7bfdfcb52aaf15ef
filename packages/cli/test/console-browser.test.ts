import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describe, expect } from 'vitest';
import { ensureTestModel, findFreePort, redisTest, tempDir } from '@gembatch/testing';
import { EmbeddedStack } from '../src/embedded-stack.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
/** Debian's `chromium` package (scripts/install-system-deps.sh installs it); CHROMIUM_PATH overrides. Never a downloaded build. */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path): path is string => !!path && existsSync(path),
);
/** Screenshots land here (ignored by git), and their paths are printed. */
const ARTIFACTS = join(REPO, '.gembatch', 'test-artifacts', 'console');
const TENANT_A = 'console-key-tenant-a-0123456789';
const TENANT_B = 'console-key-tenant-b-0123456789';
const ADMIN = 'console-admin-token-0123456789';

if (!CHROMIUM)
  console.warn(
    'console-browser.test: skipped, no chromium binary (run scripts/install-system-deps.sh, or set CHROMIUM_PATH)',
  );

/** Runs axe on the page as it is and returns the serious and critical violations (id and where). */
async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, so the console's CSP (script-src 'self') stays as shipped.
  await page.evaluate(axe.source);
  const result = await page.evaluate(async () =>
    (globalThis as unknown as { axe: typeof axe }).axe.run({ resultTypes: ['violations'] }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function signIn(page: Page, api: string, key: string, heading: string): Promise<void> {
  await page.goto(`${api}/console`);
  await page.getByLabel('API key or admin token').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

describe.skipIf(!CHROMIUM)('the web console in headless Chromium (real stack, tiny GGUF)', () => {
  redisTest(
    'log in, create a batch from examples/ plus a broken file, watch it reach 100 %, open the failed request, download the output, cancel with confirmation, schedules, tenant isolation, nodes view, axe, no request off the origin',
    async ({ redis }) => {
      const dir = await tempDir('gembatch-console-');
      const scheduleRoot = join(dir.path, 'schedules');
      await mkdir(join(scheduleRoot, 'inbox'), { recursive: true });
      await writeFile(join(scheduleRoot, 'inbox', 'memo.txt'), 'The night shift restocked the pharmacy.\n');
      const apiPort = await findFreePort();
      const stack = new EmbeddedStack({
        redisUrl: redis.url,
        apiPort,
        exporterPort: await findFreePort(),
        dataDir: join(dir.path, 'data'),
        model: await ensureTestModel('tiny'),
        sequences: 4,
        env: {
          GEMBATCH_REDIS_PREFIX: redis.prefix,
          GEMBATCH_THREADS: '1',
          GEMBATCH_METRICS_PORT: '0',
          GEMBATCH_CONTEXT_PER_SEQUENCE: '1024',
          GEMBATCH_API_KEYS: `${TENANT_A}:hospital-a,${TENANT_B}:hospital-b`,
          GEMBATCH_ADMIN_TOKEN: ADMIN,
          GEMBATCH_SCHEDULE_ROOT: scheduleRoot,
        },
        status: { write: () => true } as unknown as NodeJS.WritableStream,
        readyTimeoutMs: 120_000,
      });
      const api = `http://127.0.0.1:${apiPort}`;
      const origin = new URL(api).origin;
      const offOrigin: string[] = [];
      /** Console errors of every page: a CSP refusal (a reference to another origin the policy stopped before any request) shows here. */
      const consoleErrors: string[] = [];
      let browser: Browser | undefined;
      try {
        await stack.start();
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ['--no-sandbox', '--disable-dev-shm-usage'],
        });
        /** A context whose every request is logged; anything not on the API's origin is recorded and refused. */
        const offline = async (): Promise<BrowserContext> => {
          const context = await browser!.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
          context.on(
            'console',
            (message) =>
              message.type() === 'error' &&
              !/status of 40[14]/.test(message.text()) &&
              consoleErrors.push(message.text()),
          );
          await context.route('**/*', async (route) => {
            const url = route.request().url();
            if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin)
              return route.continue();
            offOrigin.push(url);
            return route.abort('internetdisconnected');
          });
          return context;
        };
        const examples = (await readdir(join(REPO, 'examples'))).sort().map((name) => join(REPO, 'examples', name));
        const broken = join(dir.path, 'broken.pdf');
        // A PDF header and nothing else: extraction fails this one request with a stable code; the rest go on.
        await writeFile(broken, '%PDF-1.7\n1 0 obj\n<<');
        await mkdir(ARTIFACTS, { recursive: true });

        // 1. Log in with tenant A's key.
        const a = await offline();
        const page = await a.newPage();
        const pageErrors: string[] = [];
        page.on('pageerror', (error) => pageErrors.push(error.message));
        await signIn(page, api, TENANT_A, 'Batches');
        await page.evaluate(() => ((globalThis as unknown as { consoleMarker: number }).consoleMarker = 42));

        // 2. A batch from the example documents and the broken file, through the console's form.
        await page.getByLabel('Documents').setInputFiles([...examples, broken]);
        await page.getByLabel('Task').selectOption('summarize');
        await page.getByLabel('Max tokens per request (optional)').fill('8');
        await page.getByRole('button', { name: 'Create batch' }).click();
        await page.waitForURL(/#\/batches\/batch_/);
        const batchId = /#\/batches\/(batch_\w+)/.exec(page.url())?.[1] as string;
        expect(batchId).toBeDefined();

        // 3. The progress bar reaches 100 % with no reload (the marker set before survives).
        await page
          .locator('[role="progressbar"][aria-label="Batch progress"][aria-valuenow="100"]')
          .waitFor({ timeout: 120_000 });
        await page
          .getByText(/^completed$/)
          .first()
          .waitFor({ timeout: 60_000 });
        expect(await page.evaluate(() => (globalThis as unknown as { consoleMarker?: number }).consoleMarker)).toBe(42);
        const total = examples.length + 1;
        await expect
          .poll(() => page.locator('#batch-counts').textContent(), { timeout: 30_000 })
          .toBe(`${examples.length} / 1 / ${total}`);

        // 4. The failed request's error, opened by a click (hidden before it).
        const failedRow = page.locator('#request-rows tr', { hasText: 'broken.pdf' });
        await failedRow.getByText(/GB_ERR_/).waitFor();
        const detail = failedRow.locator('.error-detail');
        expect(await detail.isHidden()).toBe(true);
        // By keyboard: the toggle is a real button.
        await failedRow.getByRole('button', { name: 'Show error' }).focus();
        await page.keyboard.press('Enter');
        await detail.waitFor({ state: 'visible' });
        expect((await detail.textContent())?.length).toBeGreaterThan(0);
        expect(await failedRow.getByRole('button', { name: 'Hide error' }).getAttribute('aria-expanded')).toBe('true');
        const batchShot = join(ARTIFACTS, 'batch-page.png');
        await page.screenshot({ path: batchShot, fullPage: true });
        const batchViolations = await seriousViolations(page);

        // 5. The output file: one line per successful request.
        const [download] = await Promise.all([
          page.waitForEvent('download'),
          page.getByRole('button', { name: 'Download output (JSONL)' }).click(),
        ]);
        const output = await readFile(await download.path(), 'utf8');
        const lines = output.split('\n').filter((line) => line.trim() !== '');
        expect(lines).toHaveLength(examples.length);
        expect(lines.map((line) => (JSON.parse(line) as { custom_id: string }).custom_id)).toEqual(
          examples.map((path) => basename(path)),
        );

        // The job page shows timings and usage, and the result only after a click.
        await failedRow.page().locator('#request-rows tr', { hasText: 'letter.txt' }).getByRole('link').click();
        await page.getByRole('heading', { level: 1, name: /^Job job_/ }).waitFor();
        await page.getByText('Time to first token').waitFor();
        expect(await page.locator('#job-result').isHidden()).toBe(true);
        await page.getByRole('button', { name: 'Show result' }).click();
        await page.locator('#job-result').waitFor({ state: 'visible' });
        const jobShot = join(ARTIFACTS, 'job-page.png');
        await page.screenshot({ path: jobShot, fullPage: true });
        const jobViolations = await seriousViolations(page);

        // The batches list with the finished batch.
        await page.goto(`${api}/console#/batches`);
        await page.locator('#batch-rows a', { hasText: batchId }).waitFor();
        await page.locator('#batch-rows [role="progressbar"][aria-valuenow="100"]').first().waitFor();
        const listShot = join(ARTIFACTS, 'batches-list.png');
        await page.screenshot({ path: listShot, fullPage: true });
        const listViolations = await seriousViolations(page);
        expect(pageErrors).toEqual([]);

        // Cancel with confirmation: a long batch made through the API (200 requests of 256 tokens: minutes on any CPU);
        // "Keep running" keeps it, the confirmation cancels it.
        const longLines = Array.from({ length: 200 }, (_, i) =>
          JSON.stringify({
            custom_id: `long-${i}`,
            method: 'POST',
            url: '/v1/jobs',
            body: { text: `Report ${i}: the ward was quiet overnight.`, task: 'summarize', max_tokens: 256 },
          }),
        );
        const form = new FormData();
        form.append('purpose', 'batch');
        form.append('file', new Blob([longLines.join('\n')], { type: 'application/jsonl' }), 'long.jsonl');
        const inputFile = (await (
          await fetch(`${api}/v1/files`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TENANT_A}` },
            body: form,
          })
        ).json()) as { id: string };
        const longBatch = (await (
          await fetch(`${api}/v1/batches`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TENANT_A}`, 'content-type': 'application/json' },
            body: JSON.stringify({ input_file_id: inputFile.id, endpoint: '/v1/jobs', completion_window: '1h' }),
          })
        ).json()) as { id: string };
        await page.goto(`${api}/console#/batches/${longBatch.id}`);
        const opener = page.getByRole('button', { name: 'Cancel batch…' });
        await expect.poll(() => opener.isEnabled(), { timeout: 30_000 }).toBe(true);
        const dialog = page.getByRole('dialog', { name: 'Cancel this batch?' });
        await opener.click();
        await dialog.getByRole('button', { name: 'Keep running' }).click();
        await dialog.waitFor({ state: 'hidden' });
        expect(await page.locator('#batch-facts .status').first().textContent()).toMatch(/validating|in progress/);
        await opener.click();
        await dialog.getByRole('button', { name: 'Cancel batch', exact: true }).click();
        await page.locator('#batch-facts .status', { hasText: /^cancel(ling|led)$/ }).waitFor({ timeout: 30_000 });
        await expect.poll(() => opener.isDisabled()).toBe(true);

        // Schedules: made through the API, paused, resumed and run from the console; the run links its batch.
        const created = await fetch(`${api}/v1/schedules`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TENANT_A}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            cron: '0 2 * * *',
            source_folder: 'inbox',
            output_folder: 'out',
            task: 'summarize',
            options: {},
          }),
        });
        expect(created.status).toBe(201);
        const scheduleId = ((await created.json()) as { id: string }).id;
        await page.getByRole('link', { name: 'Schedules' }).click();
        const schedule = page.locator('section', { has: page.getByRole('heading', { name: new RegExp(scheduleId) }) });
        await schedule.getByText('Next run').waitFor();
        await schedule.getByRole('button', { name: 'Pause' }).click();
        await schedule.getByRole('button', { name: 'Resume' }).waitFor();
        await schedule.getByRole('button', { name: 'Resume' }).click();
        await schedule.getByRole('button', { name: 'Pause' }).waitFor();
        await schedule.getByRole('button', { name: 'Run now' }).click();
        const runBatch = schedule.getByRole('link', { name: /^batch_/ });
        await runBatch.waitFor({ timeout: 60_000 });
        await schedule.getByText(/^completed$/).waitFor({ timeout: 60_000 });
        const schedulesShot = join(ARTIFACTS, 'schedules.png');
        await page.screenshot({ path: schedulesShot, fullPage: true });
        const schedulesViolations = await seriousViolations(page);

        // 6. Tenant B sees nothing of it: not in its list, and its page is a 404.
        const b = await offline();
        const pageB = await b.newPage();
        // Signing in by keyboard alone: the key field has focus on load, Enter submits.
        await pageB.goto(`${api}/console`);
        await pageB.keyboard.type(TENANT_B);
        await pageB.keyboard.press('Enter');
        await pageB.getByRole('heading', { level: 1, name: 'Batches' }).waitFor();
        await pageB.getByText('No batches yet.').waitFor();
        await pageB.getByRole('link', { name: 'Schedules' }).click();
        await pageB.getByText('No schedules.', { exact: false }).waitFor();
        await pageB.getByRole('link', { name: 'Batches' }).click();
        await pageB.getByText('No batches yet.').waitFor();
        expect(await pageB.locator('#batch-rows').textContent()).not.toContain(batchId);
        await pageB.goto(`${api}/console#/batches/${batchId}`);
        await pageB
          .getByRole('alert')
          .getByText(/not found/i)
          .waitFor();
        expect(await pageB.locator('#batch-facts').textContent()).toBe('');

        // The admin token: the nodes view with the worker's card and the queues.
        const admin = await offline();
        const pageAdmin = await admin.newPage();
        await signIn(pageAdmin, api, ADMIN, 'Nodes');
        const card = pageAdmin.locator('.node-card').first();
        await card.waitFor();
        await card.getByText('Sequences in use').waitFor();
        await pageAdmin.locator('#queue-rows tr', { hasText: 'generate' }).first().waitFor();
        // The sparkline fills from successive polls (about one a second while the view is open).
        await expect
          .poll(async () => Number(await card.locator('svg.spark').getAttribute('data-samples')), { timeout: 30_000 })
          .toBeGreaterThanOrEqual(5);
        const nodesShot = join(ARTIFACTS, 'nodes.png');
        await pageAdmin.screenshot({ path: nodesShot, fullPage: true });
        const nodesViolations = await seriousViolations(pageAdmin);
        // The dark scheme (it follows the system) must pass the same contrast checks.
        await pageAdmin.emulateMedia({ colorScheme: 'dark' });
        const darkShot = join(ARTIFACTS, 'nodes-dark.png');
        await pageAdmin.screenshot({ path: darkShot, fullPage: true });
        nodesViolations.push(...(await seriousViolations(pageAdmin)));
        // A tenant key is not the admin token.
        expect((await fetch(`${api}/admin/fleet`, { headers: { authorization: `Bearer ${TENANT_A}` } })).status).toBe(
          401,
        );
        expect((await fetch(`${api}/admin/batches`, { headers: { authorization: `Bearer ${TENANT_A}` } })).status).toBe(
          401,
        );

        // The admin's all-tenants view lists both tenants' batches (tenant B gets one through the API).
        const formB = new FormData();
        formB.append('purpose', 'batch');
        formB.append(
          'file',
          new Blob(
            [
              JSON.stringify({
                custom_id: 'b-1',
                method: 'POST',
                url: '/v1/jobs',
                body: { text: 'Ward B was quiet.', task: 'summarize', max_tokens: 8 },
              }),
            ],
            { type: 'application/jsonl' },
          ),
          'b.jsonl',
        );
        const inputB = (await (
          await fetch(`${api}/v1/files`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TENANT_B}` },
            body: formB,
          })
        ).json()) as { id: string };
        const batchB = (await (
          await fetch(`${api}/v1/batches`, {
            method: 'POST',
            headers: { authorization: `Bearer ${TENANT_B}`, 'content-type': 'application/json' },
            body: JSON.stringify({ input_file_id: inputB.id, endpoint: '/v1/jobs' }),
          })
        ).json()) as { id: string };
        await pageAdmin.emulateMedia({ colorScheme: 'light' });
        await pageAdmin.getByRole('link', { name: 'All tenants' }).click();
        await pageAdmin.getByRole('heading', { level: 1, name: 'All tenants' }).waitFor();
        await pageAdmin.locator('#tenant-batch-rows tr', { hasText: batchB.id }).getByText('hospital-b').waitFor();
        await pageAdmin.locator('#tenant-batch-rows tr', { hasText: batchId }).getByText('hospital-a').waitFor();
        // Fewer batches than a page: no "Older batches" button.
        expect(await pageAdmin.getByRole('button', { name: 'Older batches' }).isVisible()).toBe(false);
        const tenantsShot = join(ARTIFACTS, 'all-tenants.png');
        await pageAdmin.screenshot({ path: tenantsShot, fullPage: true });
        nodesViolations.push(...(await seriousViolations(pageAdmin)));

        console.log(
          `console screenshots:\n  ${listShot}\n  ${batchShot}\n  ${jobShot}\n  ${schedulesShot}\n  ${nodesShot}\n  ${darkShot}\n  ${tenantsShot}`,
        );
        expect({
          list: listViolations,
          batch: batchViolations,
          job: jobViolations,
          schedules: schedulesViolations,
          nodes: nodesViolations,
        }).toEqual({ list: [], batch: [], job: [], schedules: [], nodes: [] });
        expect(offOrigin).toEqual([]);
        expect(consoleErrors).toEqual([]);
      } finally {
        await browser?.close();
        await stack.stop(15_000);
        await dir.cleanup();
      }
    },
    240_000,
  );
});
