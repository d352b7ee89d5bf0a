// The package's entry: the Embedder API, the native Model class and functions, and the hub helpers.
import { native } from './binding';
import type * as Native from '../index';

export * from './embedder';
export * from './reranker';
export { DEFAULT_MODEL, download, downloadCommand, hubCacheDir, resolveModel } from './hub';
export type { DownloadOptions, Progress } from './hub';
export { GLIBC_BASELINE, unsupportedPlatform } from './binding';
export { AbortError } from './cancel';
export type { Cancellable } from './cancel';
export type { Logger, LogLevel } from './logger';
export type { EmbedOptions, HealthLatency, HealthQueue, RuntimeInfo } from '../index';
export type { EmbedderHealth } from './health';
export type { RemoteApi, RemoteInfo, RemoteOptions, RemoteStats } from './remote';

export const Model = native.Model;
export type Model = InstanceType<typeof native.Model>;
export const { init, embed, embedSync, countTokens, isGpu, info, stats, health, runtimeInfo, exportOnnx, exportRerankerOnnx } = native;

// the option values and the error codes, as string enums (an option also takes the plain string)
export const AttentionDirection = native.AttentionDirection;
export type AttentionDirection = Native.AttentionDirection;
export const Backend = native.Backend;
export type Backend = Native.Backend;
export const Dtype = native.Dtype;
export type Dtype = Native.Dtype;
export const ErrorCode = native.ErrorCode;
export type ErrorCode = Native.ErrorCode;
export const Int8Scheme = native.Int8Scheme;
export type Int8Scheme = Native.Int8Scheme;
export const Weights = native.Weights;
export type Weights = Native.Weights;
