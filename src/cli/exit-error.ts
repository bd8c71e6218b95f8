// The one boundary between failures and exit status (STYLE.md §4): 0 clean, 1 the operation failed or
// found problems, 2 the command line was wrong.

/** A failure already worded for the user; main.ts prints its message and exits with its status. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = "ExitError";
  }
}

export function usageError(message: string): ExitError {
  return new ExitError(message, 2);
}
