import { exitOnConfigError, loadEnv } from '@gembatch/config';
import { createLogger } from '@gembatch/telemetry';
import { WorkerEnv } from './env.ts';
import { WorkerNode } from './node/worker-node.ts';

/** Worker entry point: parse config, load the model, take jobs; drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let env: WorkerEnv;
  try {
    env = loadEnv(WorkerEnv);
  } catch (error) {
    exitOnConfigError(error, 'gembatch-worker');
  }
  const log = createLogger({ service: 'worker', level: env.LOG_LEVEL });
  const node = new WorkerNode(env, log);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'draining');
    node.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  try {
    await node.start();
  } catch (error) {
    log.fatal({ err: error }, 'worker failed to start');
    await node.close(0).catch(() => undefined);
    process.exit(1);
  }
}

await main();
