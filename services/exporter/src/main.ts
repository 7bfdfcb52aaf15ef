import { loadEnvOrExit } from '@gembatch/config';
import { drainOnSignals } from '@gembatch/lifecycle';
import { createLogger } from '@gembatch/telemetry';
import { ExporterEnv } from './env.ts';
import { Exporter } from './exporter.ts';
import { errorMessage } from '@gembatch/contracts';

/** Exporter entry point: parse config, serve the fleet's `/metrics`, stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  const env = loadEnvOrExit(ExporterEnv, 'gembatch-exporter');
  const log = createLogger({ service: 'exporter', level: env.LOG_LEVEL });
  let exporter: Exporter;
  try {
    exporter = await Exporter.start({
      redisUrl: env.REDIS_URL,
      prefix: env.GEMBATCH_REDIS_PREFIX,
      port: env.GEMBATCH_EXPORTER_PORT,
      host: env.GEMBATCH_EXPORTER_HOST,
      readTimeoutMs: env.GEMBATCH_EXPORTER_READ_TIMEOUT_MS,
      logger: log,
    });
  } catch (error) {
    log.fatal(
      { code: (error as { code?: string }).code ?? 'GB_ERR_INTERNAL', err: errorMessage(error) },
      'exporter failed to start',
    );
    process.exit(1);
  }
  log.info({ url: exporter.url, prefix: env.GEMBATCH_REDIS_PREFIX }, 'exporter listening');
  drainOnSignals({ log, close: () => exporter.close(), timeoutMs: 10_000 });
}

await main();
