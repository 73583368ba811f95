import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * JSON-lines logger. Message content never goes here: callers log envelope metadata, queue ids,
 * decisions and TLS facts only. The redaction list is a second line of defence for fields that
 * must never appear even by accident.
 */
export function createLogger(level: LevelWithSilent = 'info', destination: pino.DestinationStream | number = 1): Logger {
  const stream = typeof destination === 'number' ? pino.destination({ fd: destination, sync: false }) : destination;
  return pino(
    {
      level,
      base: { service: 'sealgate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['password', '*.password', 'pass', '*.pass', 'subject', '*.subject', 'body', '*.body'], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** A logger that writes nothing, for library use and tests that do not inspect logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
