import type { Readable } from 'node:stream';
import type { AddressObject, Attachment } from 'mailparser';

export interface AttachmentView {
  index: number;
  filename: string;
  contentType: string;
  size: number;
}

export interface ParsedMessage {
  from: string;
  date: string | undefined;
  subject: string;
  text: string | undefined;
  /** Sanitised HTML part (remote resources removed, cid: images inlined as data: URIs). */
  html: string | undefined;
  /** True when the HTML part refers to remote images (dropped unless the reader asked to see them). */
  remoteImagesDropped: boolean;
  attachments: AttachmentView[];
  raw: Attachment[];
}

function addressText(value: AddressObject | AddressObject[] | undefined): string {
  if (!value) return '';
  const list = Array.isArray(value) ? value : [value];
  return list
    .flatMap((group) => group.value)
    .map((entry) => entry.address ?? '')
    .filter((address) => address.length > 0)
    .join(', ');
}

/** Style values are kept only when they cannot load anything (no url(), no image-set, no expression, no @import). */
const SAFE_STYLE = /^(?!.*(url|image-set|expression|@import|\\))[^;{}<>]*$/i;
const STYLE_PROPS = ['color', 'background-color', 'text-align', 'font-weight', 'font-style', 'font-size', 'font-family', 'text-decoration', 'margin', 'padding', 'border', 'width', 'height'];

/**
 * sanitize-html with a strict allow-list: no scripts, forms, styles sheets, frames or CSS url(). Remote images are
 * dropped unless the reader asked to see them (`remoteImages`), and then only over https: loading them tells the
 * sender's image host that, and from where, the message was opened.
 */
export function sanitizeMessageHtml(html: string, cidImages: ReadonlyMap<string, string>, remoteImages = false): { html: string; remoteImagesDropped: boolean } {
  let remoteImagesDropped = false;
  // Loaded on demand (with postcss, ~10 MB of RSS): only a recipient reading a message needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps sanitize-html unloaded until a message is read
  const sanitizeHtml = require('sanitize-html') as typeof import('sanitize-html');
  const clean = sanitizeHtml(html, {
    allowedTags: [...sanitizeHtml.defaults.allowedTags, 'img', 'font', 'center'],
    allowedAttributes: {
      a: ['href', 'title', 'target', 'rel'],
      img: ['src', 'alt', 'width', 'height', 'title'],
      td: ['colspan', 'rowspan', 'align', 'valign', 'style'],
      th: ['colspan', 'rowspan', 'align', 'valign', 'style'],
      '*': ['style', 'align', 'dir', 'lang'],
    },
    allowedStyles: { '*': Object.fromEntries(STYLE_PROPS.map((prop) => [prop, [SAFE_STYLE]])) },
    allowedSchemes: ['http', 'https', 'mailto'],
    allowedSchemesByTag: { img: remoteImages ? ['data', 'https'] : ['data'] },
    allowProtocolRelative: false,
    transformTags: {
      // transformTags' additions must also be in allowedAttributes, or they are stripped again.
      a: (tagName, attribs) => ({ tagName, attribs: { ...attribs, target: '_blank', rel: 'noopener noreferrer' } }),
      img: (tagName, attribs) => {
        const src = attribs.src ?? '';
        if (/^cid:/i.test(src)) {
          const inline = cidImages.get(src.slice(4).replace(/^<|>$/g, ''));
          return { tagName, attribs: { ...attribs, src: inline ?? '' } };
        }
        const inline = /^data:image\//i.test(src);
        const shown = inline || (remoteImages && /^https:\/\//i.test(src));
        if (!inline) remoteImagesDropped = true;
        return { tagName, attribs: { ...attribs, src: shown ? src : '' } };
      },
    },
    exclusiveFilter: (frame) => frame.tag === 'img' && !frame.attribs.src,
  });
  return { html: clean, remoteImagesDropped };
}

/**
 * Parses the decrypted message. simpleParser buffers the message in memory; that is bounded by the relay's
 * message size limit (limits.maxMessageSize, 50 MiB by default). Downloads of the whole message stream
 * straight from the decrypting store stream instead.
 */
export async function parseMessage(source: Readable, options: { remoteImages?: boolean } = {}): Promise<ParsedMessage> {
  // Loaded on demand: mailparser (~15 MB of RSS with its HTML libraries) is needed only when a message is read.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps mailparser unloaded until a message is read
  const { simpleParser } = require('mailparser') as typeof import('mailparser');
  const mail = await simpleParser(source, { skipImageLinks: true, skipTextToHtml: true, keepCidLinks: true });
  const cidImages = new Map<string, string>();
  for (const attachment of mail.attachments) {
    if (attachment.cid && /^image\/(png|gif|jpeg|webp)$/i.test(attachment.contentType)) {
      cidImages.set(attachment.cid, `data:${attachment.contentType};base64,${attachment.content.toString('base64')}`);
    }
  }
  const sanitized = typeof mail.html === 'string' && mail.html.length > 0 ? sanitizeMessageHtml(mail.html, cidImages, options.remoteImages === true) : undefined;
  const attachments = mail.attachments
    .map((attachment, index) => ({ attachment, index }))
    .filter(({ attachment }) => !(attachment.related && attachment.cid && cidImages.has(attachment.cid)))
    .map(({ attachment, index }) => ({
      index,
      filename: attachment.filename ?? `attachment-${index + 1}`,
      contentType: attachment.contentType,
      size: attachment.size ?? attachment.content.length,
    }));
  return {
    from: addressText(mail.from),
    date: mail.date?.toISOString(),
    subject: mail.subject ?? '',
    text: mail.text,
    html: sanitized?.html,
    remoteImagesDropped: sanitized?.remoteImagesDropped ?? false,
    attachments,
    raw: mail.attachments,
  };
}

/** Bytes as "12.3 KB" for people. */
export function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** "d***@partner.example": enough for the recipient to recognise, little for anyone else. */
export function maskAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 1) return '***';
  return `${address[0]}***${address.slice(at)}`;
}
