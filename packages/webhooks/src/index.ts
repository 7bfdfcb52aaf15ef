export * from './webhook-allowlist.ts';
export * from './webhook-env.ts';
export * from './webhook-event.ts';
export * from './webhook-deliveries.ts';
export * from './webhook-producer.ts';
export * from './deliver-webhook.ts';
export * from './webhook-worker.ts';
