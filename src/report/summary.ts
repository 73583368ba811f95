import { html, type SafeHtml } from './escape';
import { count, isModernTls, OUTCOME_LABELS, OUTCOMES, percent, periodDays, utc } from './format';
import type { ChainStatus, ReportData } from './types';

/*
 * The report's first page: who, when, what was counted, and the two sentences an auditor reads first (how mail left,
 * whether the evidence behind the counts is intact). The sentences are computed from the data, never fixed text.
 */

export type Tone = 'ok' | 'warn' | 'none';

export interface Statement {
  tone: Tone;
  text: string;
}

/** How the period's mail left: over TLS 1.2+, to the portal, or (should it ever happen) otherwise. */
export function transmissionStatement(data: ReportData): Statement {
  const { delivered, diverted, bounced, deferred } = data.totals;
  const filtered = data.filters.domain !== null || data.filters.sender !== null;
  if (delivered + diverted + bounced + deferred === 0) {
    return { tone: 'none', text: filtered ? 'No mail matching the filters in this period.' : 'No mail in this period.' };
  }
  const modern = Object.entries(data.tlsVersions)
    .filter(([protocol]) => isModernTls(protocol))
    .reduce((total, [, value]) => total + value, 0);
  const unproven = Math.max(0, delivered - modern);
  const rest = `${count(bounced)} bounced without being sent and ${count(deferred)} deferred for a retry.`;
  if (delivered + diverted === 0) {
    return { tone: 'ok', text: `No message left the relay in this period: ${rest}` };
  }
  if (unproven > 0) {
    return {
      tone: 'warn',
      text:
        `${count(unproven)} of ${count(delivered)} deliveries have no TLS 1.2 or newer session in their evidence; ` +
        `look them up in the evidence log. ${count(modern)} deliveries went over TLS 1.2 or newer, ` +
        `${count(diverted)} messages were diverted to the secure portal, ${rest}`,
    };
  }
  return {
    tone: 'ok',
    text:
      `Every message that left the relay in this period went over TLS 1.2 or newer (${count(delivered)} deliveries) ` +
      `or was diverted to the secure portal (${count(diverted)}); none was sent without TLS. ${rest}`,
  };
}

/** The evidence chain over the period, as `sealgate evidence verify` found it. */
export function chainStatement(chain: ChainStatus): Statement {
  if (!chain.ok) {
    const at = chain.firstBroken;
    const where = at ? ` First break: day ${at.day}, line ${at.line} (record ${at.seq}): ${at.reason}.` : '';
    return {
      tone: 'warn',
      text: `Evidence chain BROKEN: the log was changed after it was written.${where} The counts in this report come from that log; treat them as unverified.`,
    };
  }
  const days = chain.anchors.length;
  return {
    tone: 'ok',
    text: `Evidence chain intact: ${count(chain.records)} ${chain.records === 1 ? 'record' : 'records'} checked, ${count(days)} sealed ${days === 1 ? 'day' : 'days'}.`,
  };
}

function filtersText(filters: ReportData['filters']): string {
  const parts: string[] = [];
  if (filters.domain !== null) parts.push(`recipient domain ${filters.domain}`);
  if (filters.sender !== null) parts.push(`sender ${filters.sender === '' ? '<> (null sender)' : filters.sender}`);
  return parts.length === 0 ? 'none: all recipients and senders' : parts.join('; ');
}

/** A computed sentence, marked by its tone (ok, warn, none) for the reader and the stylesheet. */
export function statementBlock(statement: Statement, id: string): SafeHtml {
  return html`<p class="statement ${statement.tone}" id="${id}">${statement.text}</p>`;
}

export function summarySection(data: ReportData): SafeHtml {
  const { totals } = data;
  const outcomes = OUTCOMES.reduce((total, outcome) => total + totals[outcome], 0);
  const days = periodDays(data.period);
  return html`<section class="summary" id="summary" aria-labelledby="summary-title">
    <p class="kicker">Sealgate · outbound mail transmission security</p>
    <h1 id="summary-title">Compliance report</h1>
    <dl class="facts">
      <dt>Relay</dt>
      <dd>${data.relay}</dd>
      <dt>Period</dt>
      <dd>${utc(data.period.from)} to ${utc(data.period.to)} (${days.first} to ${days.last})</dd>
      <dt>Filters</dt>
      <dd>${filtersText(data.filters)}</dd>
      <dt>Generated</dt>
      <dd>${utc(data.generatedAt)}</dd>
    </dl>
    ${statementBlock(transmissionStatement(data), 'transmission')}
    <h2>Totals by outcome</h2>
    <table class="totals" id="totals">
      <thead>
        <tr>
          <th scope="col">Outcome</th>
          <th scope="col" class="num">Recipient outcomes</th>
          <th scope="col" class="num">Share</th>
        </tr>
      </thead>
      <tbody>
        ${OUTCOMES.map(
          (outcome) =>
            html`<tr data-outcome="${outcome}">
              <th scope="row"><span class="swatch ${outcome}"></span>${OUTCOME_LABELS[outcome]}</th>
              <td class="num">${count(totals[outcome])}</td>
              <td class="num">${percent(totals[outcome], outcomes)}</td>
            </tr>`,
        )}
      </tbody>
      <tfoot>
        <tr data-total="messages">
          <th scope="row">Messages</th>
          <td class="num">${count(totals.messages)}</td>
          <td></td>
        </tr>
        <tr data-total="recipients">
          <th scope="row">Recipients</th>
          <td class="num">${count(totals.recipients)}</td>
          <td></td>
        </tr>
      </tfoot>
    </table>
    <p class="note">Each recipient outcome counts once: a recipient deferred twice and then delivered counts two deferrals and one delivery. Messages are distinct queue ids.</p>
    <h2>Evidence chain</h2>
    ${statementBlock(chainStatement(data.chain), 'chain-status')}
    <h2>Contents</h2>
    <ol class="contents">
      <li><a href="#charts">Charts</a></li>
      <li><a href="#domains">Recipient domains</a></li>
      <li><a href="#diversions">Diversions and certificate problems</a></li>
      <li><a href="#portal">Secure portal pickups and admin actions</a></li>
      <li><a href="#posture">Partner posture</a></li>
      <li><a href="#anchors">Evidence anchors</a></li>
    </ol>
  </section>`;
}
