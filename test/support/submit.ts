import nodemailer from 'nodemailer';

export interface SubmitOptions {
  /** Send `MAIL FROM:<…> REQUIRETLS` (RFC 8689; nodemailer only sends it over TLS). */
  requireTls?: boolean;
}

/**
 * Submits `raw` from clinic@sender.test to `recipients` over STARTTLS (the test relay's self-signed
 * certificate accepted) on 127.0.0.1:`port`, and returns the queue id from the 250 reply.
 */
export async function submit(port: number, recipients: string[], raw: Buffer, options: SubmitOptions = {}): Promise<string> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, tls: { rejectUnauthorized: false } });
  try {
    const info = await transport.sendMail({ envelope: { from: 'clinic@sender.test', to: recipients }, raw, ...(options.requireTls ? { requireTLSExtensionEnabled: true } : {}) });
    return /queued as (\S+)/.exec(info.response)![1]!;
  } finally {
    transport.close();
  }
}
