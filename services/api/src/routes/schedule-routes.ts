import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CreateScheduleRequest, ScheduleRunView, ScheduleView, type ScheduleService } from '@gembatch/schedules';
import { ErrorResponse, IdParams } from './api-schemas.ts';

const ListQuery = z.strictObject({
  /** Most items returned (1..100). Defaults to 20. */
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
const ScheduleList = z.object({ object: z.literal('list'), data: z.array(ScheduleView) });
const RunList = z.object({ object: z.literal('list'), data: z.array(ScheduleRunView) });
const Deleted = z.object({ id: z.string(), object: z.literal('schedule.deleted'), deleted: z.literal(true) });

/**
 * Schedules: a cron pattern over a folder under the operator's schedule root; each run submits
 * the files its content-hash ledger has not seen as one batch and writes the results to the output
 * folder. Handlers stay thin: the logic lives in `@gembatch/schedules`.
 */
export function registerScheduleRoutes(app: FastifyInstance, schedules: ScheduleService): void {
  const id = (request: { params: unknown }) => (request.params as z.output<typeof IdParams>).id;

  app.post(
    '/v1/schedules',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Create a schedule (a BullMQ job scheduler).',
        body: CreateScheduleRequest,
        response: { 201: ScheduleView, 400: ErrorResponse },
      },
    },
    async (request, reply) => {
      const view = await schedules.create(request.tenant, request.body as z.output<typeof CreateScheduleRequest>);
      request.log.info({ scheduleId: view.id, cron: view.cron, timezone: view.timezone }, 'schedule created');
      return reply.code(201).header('location', `/v1/schedules/${view.id}`).send(view);
    },
  );

  app.get(
    '/v1/schedules',
    {
      schema: {
        tags: ['schedules'],
        summary: "This tenant's schedules, newest first.",
        querystring: ListQuery,
        response: { 200: ScheduleList, 400: ErrorResponse },
      },
    },
    async (request) => {
      const { limit } = request.query as z.output<typeof ListQuery>;
      return { object: 'list' as const, data: await schedules.list(request.tenant, limit) };
    },
  );

  app.get(
    '/v1/schedules/:id',
    {
      schema: {
        tags: ['schedules'],
        summary: 'A schedule, its next run time and its last run.',
        params: IdParams,
        response: { 200: ScheduleView, 404: ErrorResponse },
      },
    },
    async (request) => {
      return schedules.view(await schedules.get(request.tenant, id(request)));
    },
  );

  app.delete(
    '/v1/schedules/:id',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Delete a schedule with its runs and ledger (a run going on finishes).',
        params: IdParams,
        response: { 200: Deleted, 404: ErrorResponse },
      },
    },
    async (request) => {
      await schedules.delete(request.tenant, id(request));
      request.log.info({ scheduleId: id(request) }, 'schedule deleted');
      return { id: id(request), object: 'schedule.deleted' as const, deleted: true as const };
    },
  );

  app.post(
    '/v1/schedules/:id/pause',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Stop future cron runs (idempotent).',
        params: IdParams,
        response: { 200: ScheduleView, 404: ErrorResponse },
      },
    },
    async (request) => {
      return schedules.pause(request.tenant, id(request));
    },
  );

  app.post(
    '/v1/schedules/:id/resume',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Restart cron runs (idempotent).',
        params: IdParams,
        response: { 200: ScheduleView, 404: ErrorResponse },
      },
    },
    async (request) => {
      return schedules.resume(request.tenant, id(request));
    },
  );

  app.post(
    '/v1/schedules/:id/run',
    {
      schema: {
        tags: ['schedules'],
        summary: 'Run now (also while paused); skipped if a run of this schedule is still going.',
        params: IdParams,
        response: { 202: ScheduleRunView, 404: ErrorResponse },
      },
    },
    async (request, reply) => {
      const run = await schedules.runNow(request.tenant, id(request));
      request.log.info({ scheduleId: run.schedule_id, runId: run.id }, 'schedule run requested');
      return reply.code(202).send(run);
    },
  );

  app.get(
    '/v1/schedules/:id/runs',
    {
      schema: {
        tags: ['schedules'],
        summary: "A schedule's runs, newest first, with their batch ids.",
        params: IdParams,
        querystring: ListQuery,
        response: { 200: RunList, 404: ErrorResponse },
      },
    },
    async (request) => {
      const { limit } = request.query as z.output<typeof ListQuery>;
      return { object: 'list' as const, data: await schedules.runs(request.tenant, id(request), limit) };
    },
  );
}
