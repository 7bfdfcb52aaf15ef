export * from './blob-store.ts';
export * from './file-system-blob-store.ts';
export * from './hashing-size-limiter.ts';
export * from './json-blobs.ts';
export * from './blob-references.ts';
export * from './file-store.ts';
export * from './job-blob-cleaner.ts';
