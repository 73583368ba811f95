import { EventEmitter } from 'node:events';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection';
import { applySmtpServerAdaptations, COMMAND_TIMEOUT_REPLY, type AdaptedServerOptions } from '../../src/inbound/smtp-server-adaptations';

/**
 * The command-line and STARTTLS handshake deadlines of smtp-server-adaptations.ts, driven through
 * smtp-server's own parser on a connection object without a socket (fake timers, no network).
 */

interface Fake {
  connection: SMTPConnection & Record<string, unknown>;
  parser: NodeJS.WritableStream & { startDataMode(): unknown };
  sent: string[];
  commands: string[];
  events: string[];
}

function fakeConnection(options: AdaptedServerOptions = {}): Fake {
  applySmtpServerAdaptations();
  const sent: string[] = [];
  const commands: string[] = [];
  const events: string[] = [];
  const connection = Object.create(SMTPConnection.prototype) as Fake['connection'];
  Object.assign(connection, {
    _server: {
      options: {
        sealgateCommandTimeout: 1_000,
        sealgateHandshakeTimeout: 500,
        sealgateOnCommandStart: () => events.push('start'),
        sealgateOnTimeout: (reason: string) => events.push(reason),
        ...options,
      },
    },
    session: { id: 'fake' },
    remoteAddress: '192.0.2.1',
    _closing: false,
    _closed: false,
    _upgrading: false,
    send: (code: number, text: string) => sent.push(`${code} ${text}`),
    _onCommand: (command: Buffer, callback?: () => void) => {
      commands.push(command.toString());
      callback?.();
    },
  });
  const parser = (connection as unknown as { _createParser(): Fake['parser'] })._createParser();
  return { connection, parser, sent, commands, events };
}

describe('command-line deadline', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a line not complete within the deadline from its first byte is answered 421 4.4.2', () => {
    const { parser, sent, events } = fakeConnection();
    parser.write('E');
    jest.advanceTimersByTime(600);
    // Bytes that keep arriving (an idle timer would be reset by each) do not extend the deadline.
    parser.write('H');
    jest.advanceTimersByTime(399);
    expect(sent).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([`421 ${COMMAND_TIMEOUT_REPLY}`]);
    expect(events).toEqual(['start', 'command-timeout']);
  });

  test('a line completed in time is dispatched; the next partial line gets its own full deadline', () => {
    const { parser, sent, commands } = fakeConnection();
    parser.write('EHLO a');
    jest.advanceTimersByTime(900);
    parser.write('.example\r\nNO');
    expect(commands).toEqual(['EHLO a.example']);
    jest.advanceTimersByTime(999);
    expect(sent).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(sent).toEqual([`421 ${COMMAND_TIMEOUT_REPLY}`]);
  });

  test('whole lines leave no timer running, and message data is not timed as a command', () => {
    const { parser, sent, commands } = fakeConnection();
    parser.write('EHLO a.example\r\nNOOP\r\n');
    jest.advanceTimersByTime(5_000);
    parser.startDataMode();
    parser.write('Subject: partial line of the message');
    jest.advanceTimersByTime(5_000);
    expect(commands).toEqual(['EHLO a.example', 'NOOP']);
    expect(sent).toEqual([]);
  });

  test('no deadline configured: only the idle timer applies', () => {
    const { parser, sent } = fakeConnection({ sealgateCommandTimeout: 0 });
    parser.write('EH');
    jest.advanceTimersByTime(60_000);
    expect(sent).toEqual([]);
  });
});

describe('STARTTLS handshake deadline', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function handshakeSocket() {
    const socket = Object.assign(new EventEmitter(), {
      destroyed: false,
      setTimeout: () => socket,
      destroy: jest.fn((err?: Error & { code?: string }) => {
        socket.destroyed = true;
        return err;
      }),
    });
    return socket;
  }

  test('a TLS socket that is not secure in time is destroyed with a handshake-timeout error', () => {
    const { connection, events } = fakeConnection();
    connection._upgrading = true;
    connection._socket = handshakeSocket() as unknown as SMTPConnection['_socket'];
    const tlsSocket = handshakeSocket();
    (connection as unknown as { _armTimeout(socket: unknown): void })._armTimeout(tlsSocket);
    jest.advanceTimersByTime(499);
    expect(tlsSocket.destroy).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(tlsSocket.destroy).toHaveBeenCalledWith(expect.objectContaining({ code: 'ERR_TLS_HANDSHAKE_TIMEOUT' }));
    expect(events).toEqual(['handshake-timeout']);
  });

  test('a handshake that completes in time is left alone, and re-arming the session socket starts no deadline', () => {
    const { connection, events } = fakeConnection();
    connection._upgrading = true;
    connection._socket = handshakeSocket() as unknown as SMTPConnection['_socket'];
    const tlsSocket = handshakeSocket();
    (connection as unknown as { _armTimeout(socket: unknown): void })._armTimeout(tlsSocket);
    tlsSocket.emit('secure');
    connection._upgrading = false;
    (connection as unknown as { _armTimeout(): void })._armTimeout();
    jest.advanceTimersByTime(10_000);
    expect(tlsSocket.destroy).not.toHaveBeenCalled();
    expect(events).toEqual([]);
  });
});
