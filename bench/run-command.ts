import { spawn } from 'node:child_process';

/** Runs a command to its end and resolves with its stdout and stderr; rejects on a non-zero exit with the tail of stderr. */
export function runCommand(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out + err) : reject(new Error(`${command} exited with ${code}: ${err.slice(-500)}`)),
    );
  });
}
