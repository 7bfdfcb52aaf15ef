import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { engineThreadpoolSize } from '@gembatch/inference/threadpool-size';

/**
 * Gives this benchmark process the libuv threadpool a worker gets (`engineThreadpoolSize`), so its
 * in-process engine samples as the stack's worker does. libuv sizes the pool when the process
 * starts, so when `UV_THREADPOOL_SIZE` is not set this runs the same command again with it set
 * and exits with that run's code; it returns when the variable is set (then it is left as given).
 */
export async function withEngineThreadpool(): Promise<void> {
  if (process.env.UV_THREADPOOL_SIZE) return;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, UV_THREADPOOL_SIZE: String(engineThreadpoolSize(availableParallelism())) },
    stdio: 'inherit',
  });
  const code = await new Promise<number>((resolve) =>
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0))),
  );
  process.exit(code);
}
