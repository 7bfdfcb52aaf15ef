import type { AnyTaskDefinition } from './define-task.ts';
import { classify } from './classify.ts';
import { describe } from './describe.ts';
import { extract } from './extract.ts';
import { prompt } from './prompt.ts';
import { redact } from './redact.ts';
import { summarize } from './summarize.ts';
import { transcribe } from './transcribe.ts';

/**
 * The built-in tasks by name: a discriminated union on `name`. Adding a task is one new file
 * (`defineTask({...})`) and its entry here; nothing else names a task.
 */
export const TASKS = { summarize, prompt, extract, classify, redact, transcribe, describe } as const satisfies Record<
  string,
  AnyTaskDefinition
>;

export type TaskName = keyof typeof TASKS;
/** Every built-in task definition; narrow by `name`. */
export type Task = (typeof TASKS)[TaskName];
export const TASK_NAMES = Object.keys(TASKS) as [TaskName, ...TaskName[]];

export function isTaskName(value: unknown): value is TaskName {
  return typeof value === 'string' && Object.hasOwn(TASKS, value);
}
