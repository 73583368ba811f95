/**
 * Exit codes shared by every command: 2 for every config or usage error (invalid config, a certificate file
 * missing, a listener port in use, the spool held by another relay, bad command line), 1 for runtime failures;
 * `check` adds its verdict codes (3 divert, 4 defer, 5 bounce).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2, notFound: 6 } as const;

/** An expected failure with a message for the user and an exit code; anything else exits 1. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
