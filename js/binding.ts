// Loads the native addon, after checking the one thing its loader cannot explain well: the C
// library. The Linux packages are built for glibc 2.28 and later; ONNX Runtime publishes no musl
// build, so on Alpine the generated loader would only say "Cannot find native binding".
import type * as Native from '../index';
import { wrapCalls } from './calls';
import { CodedError } from './errors';

/** The glibc the Linux packages are built against (the oldest that Node 18+ and ONNX Runtime need). */
export const GLIBC_BASELINE = '2.28';

/** Why this process cannot load the addon, or null when it can. */
export function unsupportedPlatform(
  platform: string = process.platform,
  glibc: string | null = glibcVersion(),
): string | null {
  if (platform !== 'linux') return null;
  if (glibc === null) {
    return (
      'semantic-search-native needs glibc: this Linux runs musl (Alpine?), for which ONNX Runtime ' +
      'publishes no build. Use a glibc-based image (node:20-slim, Debian, Ubuntu, RHEL 8+).'
    );
  }
  if (compareVersions(glibc, GLIBC_BASELINE) < 0) {
    return `semantic-search-native needs glibc ${GLIBC_BASELINE} or later; this system has ${glibc}. Use a newer distribution (Debian 10+, Ubuntu 20.04+, RHEL 8+).`;
  }
  return null;
}

/** The running glibc's version; null where there is none (musl). */
function glibcVersion(): string | null {
  // the report would otherwise look up the host name and the open sockets
  if (process.report) (process.report as { excludeNetwork?: boolean }).excludeNetwork = true;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? null;
}

/** Orders dotted version numbers: negative when `a` is older than `b`. */
export function compareVersions(a: string, b: string): number {
  const [x, y] = [a, b].map((v) => v.split('.').map(Number));
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function load(): typeof Native {
  const why = unsupportedPlatform();
  if (why) throw new CodedError('ERR_UNSUPPORTED_PLATFORM', why);
  const native: typeof Native = require('../index');
  wrapCalls(native);
  return native;
}

export const native: typeof Native = load();
