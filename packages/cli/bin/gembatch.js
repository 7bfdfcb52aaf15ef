#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (the repo runs its sources directly, no build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
