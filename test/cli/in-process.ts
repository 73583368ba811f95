import { CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/main';
import { CliError } from '../../src/cli/errors';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `sealgate --config <file> ...args` in this process (no tsx start-up per command), with stdout and
 * stderr captured and the exit code the real command would have: a CliError's own, 2 for a usage error.
 */
export async function runCliInProcess(configFile: string, args: string[], options: Parameters<typeof buildProgram>[0] = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => ((stderr += String(chunk)), true));
  let code = 0;
  try {
    await buildProgram(options).parseAsync(['node', 'sealgate', '--config', configFile, ...args]);
  } catch (e) {
    if (e instanceof CliError) {
      code = e.exitCode;
      stderr += e.message;
    } else if (e instanceof CommanderError) code = e.exitCode === 0 ? 0 : 2;
    else throw e;
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  return { code, stdout, stderr };
}
