import { AUDIT_USAGE, runAudit, runTenant, TENANT_USAGE } from './commands/data-admin.ts';
import { KEYS_USAGE, runKeys } from './commands/keys.ts';
import { BATCH_USAGE, runBatch } from './commands/batch.ts';
import { runRun, RUN_USAGE } from './commands/run.ts';
import { runSchedule, SCHEDULE_USAGE } from './commands/schedule.ts';
import { runSubmit, SUBMIT_USAGE } from './commands/submit.ts';
import { runUp, UP_USAGE } from './commands/up.ts';

const USAGE = `gembatch — batch LLM processing of documents, images and audio on your own hardware

Commands:
  up                 start the whole stack on this machine
  submit             upload files, run them as one batch, write results.jsonl
  run                up + submit + report + stop, in one command
  batch              create, follow, read and cancel batches (OpenAI Batch API shapes)
  schedule           run a task over a folder on a cron schedule, each file once
  models list|pull   the Gemma 4 12B quantizations, what fits here, and downloading them
  top                a live terminal view of the fleet
  keys               create, list and revoke API keys (admin token)
  tenant purge       delete everything of a tenant (admin token)
  audit              who submitted, read and deleted what (admin token)

${UP_USAGE}

${SUBMIT_USAGE}

${RUN_USAGE}

${KEYS_USAGE}

${TENANT_USAGE}

${AUDIT_USAGE}

${BATCH_USAGE}

${SCHEDULE_USAGE}
`;

/** Dispatches `gembatch <command> ...`; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
      return runUp(rest);
    case 'submit':
      return runSubmit(rest);
    case 'run':
      return runRun(rest);
    case 'batch':
      return runBatch(rest);
    case 'schedule':
      return runSchedule(rest);
    case 'models': {
      const { runModelsList, runModelsPull } = await import('./commands/models.ts');
      const [sub, ...args] = rest;
      if (sub === 'list') return runModelsList(args, process.stdout);
      if (sub === 'pull') return runModelsPull(args, process.stdout);
      process.stderr.write('usage: gembatch models list | gembatch models pull [quant]\n');
      return 2;
    }
    case 'keys':
      return runKeys(rest);
    case 'tenant':
      return runTenant(rest);
    case 'audit':
      return runAudit(rest);
    case 'top': {
      const { runTop } = await import('./commands/top.ts');
      return runTop(rest, process.stdout);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}
