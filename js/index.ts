// The package's entry: the Embedder API, the native Model class and functions, and the hub helpers.
import { native } from './binding';

export * from './embedder';
export { DEFAULT_MODEL, download, downloadCommand, hubCacheDir, resolveModel } from './hub';
export type { DownloadOptions, Progress } from './hub';
export { GLIBC_BASELINE, unsupportedPlatform } from './binding';
export type { EmbedOptions, RuntimeInfo } from '../index';

export const Model = native.Model;
export type Model = InstanceType<typeof native.Model>;
export const { init, embed, embedSync, isGpu, info, stats, runtimeInfo, exportOnnx } = native;
