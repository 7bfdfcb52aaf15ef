import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Repository root (tests read infra/ from here). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Whether a command runs here (`<command> --version` exits 0). */
export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}
