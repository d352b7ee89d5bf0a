// Errors of the TypeScript layer carry a `code`, as the addon's own errors do (`ErrorCode`).
import type { ErrorCode } from '../index';

export type Code = `${ErrorCode}`;

/** An `Error` whose `code` names the kind of failure. */
export class CodedError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}
