export * from './multimodal/index.ts';
