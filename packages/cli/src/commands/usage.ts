/** Writes a command's usage to stderr; the exit code is 0 when it was asked for (`--help`), 2 when the arguments were wrong. */
export function showUsage(usage: string, asked: boolean | undefined): number {
  process.stderr.write(`${usage}\n`);
  return asked ? 0 : 2;
}
