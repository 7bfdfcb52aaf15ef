export { main } from './main.ts';
export { ApiClient, ApiError } from './api-client.ts';
export { EmbeddedStack, type EmbeddedStackOptions, type StackUrls } from './embedded-stack.ts';
export { expandInputs, submitFiles, type SubmitRecord } from './submit-files.ts';
export { AdminClient, type ApiKeyInfo } from './admin-client.ts';
