import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parsePrometheusText, selectSamples } from '@gembatch/telemetry';
import { ApiClient } from '../api-client.ts';
import { EmbeddedStack } from '../embedded-stack.ts';
import { jobBodyFromFlags, runSubmitWith, SUBMIT_OPTIONS } from './submit.ts';
import { stackOptionsFromFlags, UP_OPTIONS } from './up.ts';
import { errorMessage } from '@gembatch/contracts';
import { showUsage } from './usage.ts';

export const RUN_USAGE = `gembatch run <files or folders...> --task <task> [submit options] [up options]
  Starts the embedded stack, processes the inputs end to end, writes the results, prints the
  node's tokens/second, and stops the stack. (Options: see gembatch submit --help and gembatch up --help.)`;

/** One command for "process this folder": up + submit + report + down. */
export async function runRun(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...UP_OPTIONS, ...SUBMIT_OPTIONS, help: { type: 'boolean' } },
  });
  if (values.help || positionals.length === 0) return showUsage(RUN_USAGE, values.help);
  const job = await jobBodyFromFlags(values);
  const stack = new EmbeddedStack(stackOptionsFromFlags(values));
  const controller = new AbortController();
  const interrupt = () => controller.abort();
  process.once('SIGINT', interrupt);
  try {
    const urls = await stack.start();
    process.stderr.write(`stack ready (API ${urls.api}, metrics ${urls.exporter}, logs ${urls.logs})\n`);
    const started = Date.now();
    const statePath = values.state ?? join(stack.dataDir, 'cli-uploads.json');
    const records = await runSubmitWith(
      new ApiClient({ baseUrl: urls.api }),
      urls.api,
      positionals,
      job,
      values.out,
      values.timeout,
      controller.signal,
      statePath,
    );
    // 130: the shell's code for a command ended by Ctrl-C; the batch is in Redis (AOF) and resumes next time.
    if (!records) return 130;
    const seconds = (Date.now() - started) / 1000;
    const completed = records.filter((r) => r.status === 'completed');
    const generated = completed.reduce((sum, r) => sum + (r.usage?.generated_tokens ?? 0), 0);
    const prompt = completed.reduce((sum, r) => sum + (r.usage?.prompt_tokens ?? 0), 0);
    const nodeRate = await scrapeGauge(urls.exporter, 'gembatch_node_generation_tokens_per_second');
    process.stderr.write(
      `${completed.length}/${records.length} completed in ${seconds.toFixed(1)} s${values.out ? ` → ${values.out}` : ''}\n` +
        `tokens: ${prompt} prompt, ${generated} generated; ${(generated / seconds).toFixed(1)} generated tok/s end to end (incl. upload and extraction)\n` +
        (nodeRate.length > 0
          ? nodeRate
              .map(
                ([node, value]) => `node ${node}: ${value.toFixed(1)} generated tok/s (exporter gauge, 60 s window)\n`,
              )
              .join('')
          : ''),
    );
    return completed.length === records.length ? 0 : 1;
  } catch (error) {
    process.stderr.write(`gembatch run failed: ${errorMessage(error)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', interrupt);
    await stack.stop();
  }
}

/** Reads one gauge's series from a Prometheus text endpoint as [node, value] pairs. */
async function scrapeGauge(url: string, name: string): Promise<Array<[string, number]>> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5_000) })).text();
    return selectSamples(parsePrometheusText(text), name).map((sample) => [sample.labels.node ?? '', sample.value]);
  } catch {
    return [];
  }
}
