import { main } from './main.ts';
import { errorMessage } from '@gembatch/contracts';

// Entry point for `pnpm gembatch ...` (and bin/gembatch.js): run a command and exit with its code.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`gembatch: ${errorMessage(error)}\n`);
    process.exit(1);
  },
);
