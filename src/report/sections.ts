import { outcomesChart, topDivertedChart, tlsVersionsChart } from './charts';
import { html, raw, type SafeHtml } from './escape';
import { byCount, count, periodDays, policyLabel, tlsLabel, utc } from './format';
import { chainStatement, statementBlock } from './summary';
import type { PartnerPosture, ReportData, TlsCount } from './types';

/*
 * The report's sections after the summary: charts, then the tables an auditor checks the charts against. Each
 * section starts a printed page. Every string from the data goes through `html`, which escapes it.
 */

function section(id: string, title: string, body: SafeHtml): SafeHtml {
  return html`<section class="part" id="${id}" aria-labelledby="${id}-title">
    <h2 id="${id}-title">${title}</h2>
    ${body}
  </section>`;
}

function empty(text: string): SafeHtml {
  return html`<p class="empty">${text}</p>`;
}

/** A table with a header row, or the empty text when there are no rows. */
function table(id: string, caption: string, headers: readonly string[], rows: readonly SafeHtml[], emptyText: string, numeric: readonly number[] = []): SafeHtml {
  if (rows.length === 0)
    return html`<h3>${caption}</h3>
      ${empty(emptyText)}`;
  return html`<table id="${id}">
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        ${headers.map((header, index) => html`<th scope="col" ${numeric.includes(index) ? raw(' class="num"') : ''}>${header}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}

function list(items: readonly string[]): SafeHtml {
  if (items.length === 0) return html`<span class="none">–</span>`;
  return html`<ul class="cell">
    ${items.map((item) => html`<li>${item}</li>`)}
  </ul>`;
}

function tlsItems(tls: readonly TlsCount[]): string[] {
  return [...tls].sort((a, b) => b.count - a.count).map((row) => `${tlsLabel(row)}: ${count(row.count)}`);
}

function figure(id: string, caption: string, svg: string | null, emptyText: string): SafeHtml {
  if (svg === null)
    return html`<figure id="${id}">
      <figcaption>${caption}</figcaption>
      ${empty(emptyText)}
    </figure>`;
  // echarts' SVG root gets an accessible name; the caption says the same for readers of the page.
  const labelled = svg.replace(/^<svg /, html`<svg role="img" aria-label="${caption}" `.markup);
  return html`<figure id="${id}" class="chart">
    <figcaption>${caption}</figcaption>
    ${raw(labelled)}
  </figure>`;
}

export function chartsSection(data: ReportData): SafeHtml {
  return section(
    'charts',
    'Charts',
    html`${figure('chart-outcomes', 'Outcomes over time (UTC)', outcomesChart(data.timeline), 'No outcomes in this period.')}
    ${figure('chart-tls', 'Deliveries by TLS version', tlsVersionsChart(data.tlsVersions), 'No deliveries in this period.')}
    ${figure('chart-diverted', 'Top diverted recipient domains', topDivertedChart(data.topDiverted), 'Nothing was diverted in this period.')}`,
  );
}

export function domainsSection(data: ReportData): SafeHtml {
  const outcomes = data.domains.map(
    (domain) =>
      html`<tr data-domain="${domain.domain}">
        <th scope="row" class="domain">${domain.domain}</th>
        <td class="num" data-col="messages">${count(domain.messages)}</td>
        <td class="num" data-col="delivered">${count(domain.delivered)}</td>
        <td class="num" data-col="diverted">${count(domain.diverted)}</td>
        <td class="num" data-col="bounced">${count(domain.bounced)}</td>
        <td class="num" data-col="deferred">${count(domain.deferred)}</td>
      </tr>`,
  );
  const how = data.domains.map(
    (domain) =>
      html`<tr data-domain="${domain.domain}">
        <th scope="row" class="domain">${domain.domain}</th>
        <td data-col="tls">${list(tlsItems(domain.deliveredByTls))}</td>
        <td data-col="policy">${list(byCount(domain.policySources).map(([source, value]) => `${policyLabel(source)}: ${count(value)}`))}</td>
      </tr>`,
  );
  return section(
    'domains',
    'Recipient domains',
    html`<p class="note">
        Per recipient domain: distinct messages and each recipient outcome; then the TLS version and cipher suite of every delivery, and what set the requirements of each attempt (MTA-STS, DANE, a
        domain rule or the default profile).
      </p>
      ${table('domains-table', 'Outcomes by recipient domain', ['Domain', 'Messages', 'Delivered', 'Diverted', 'Bounced', 'Deferred'], outcomes, 'No mail in this period.', [1, 2, 3, 4, 5])}
      ${table('tls-table', 'TLS and policy source by recipient domain', ['Domain', 'Delivered over (version, suite: deliveries)', 'Policy source (attempts)'], how, 'No mail in this period.')}`,
  );
}

export function diversionsSection(data: ReportData): SafeHtml {
  const diverted = data.domains.flatMap((domain) =>
    byCount(domain.divertedByReason).map(
      ([reason, value]) =>
        html`<tr data-domain="${domain.domain}" data-reason="${reason}">
          <th scope="row" class="domain">${domain.domain}</th>
          <td><code>${reason}</code></td>
          <td class="num">${count(value)}</td>
        </tr>`,
    ),
  );
  const totalsByReason: Record<string, number> = {};
  for (const domain of data.domains) {
    for (const [reason, value] of Object.entries(domain.divertedByReason)) totalsByReason[reason] = (totalsByReason[reason] ?? 0) + value;
  }
  const reasons = byCount(totalsByReason).map(
    ([reason, value]) =>
      html`<tr data-reason="${reason}">
        <th scope="row"><code>${reason}</code></th>
        <td class="num">${count(value)}</td>
      </tr>`,
  );
  const problems = data.domains.flatMap((domain) =>
    byCount(domain.certificateProblems).map(
      ([problem, value]) =>
        html`<tr data-domain="${domain.domain}" data-problem="${problem}">
          <th scope="row" class="domain">${domain.domain}</th>
          <td><code>${problem}</code></td>
          <td class="num">${count(value)}</td>
        </tr>`,
    ),
  );
  return section(
    'diversions',
    'Diversions and certificate problems',
    html`<p class="note">
        A diverted message was not sent to the recipient's server: it went to the secure portal because the server could not meet the TLS requirements. The reason is the relay's code for what fell
        short.
      </p>
      ${table('reasons-table', 'Diversions by reason', ['Reason', 'Diversions'], reasons, 'Nothing was diverted in this period.', [1])}
      ${table('diverted-table', 'Diversions by recipient domain and reason', ['Domain', 'Reason', 'Diversions'], diverted, 'Nothing was diverted in this period.', [2])}
      ${table('certificates-table', 'Certificate problems seen at the recipients\u2019 servers', ['Domain', 'Problem', 'Times seen'], problems, 'No certificate problems were seen in this period.', [2])}`,
  );
}

export function portalSection(data: ReportData): SafeHtml {
  const { portal, adminActions } = data;
  const pickups = portal
    ? table(
        'portal-table',
        'Secure portal pickups',
        ['Event', 'Items'],
        (
          [
            ['Stored in the portal', portal.stored],
            ['Notice sent to the recipient', portal.notified],
            ['Link opened', portal.opened],
            ['Read (viewed or downloaded)', portal.read],
            ['Expired unread', portal.expiredUnread],
            ['Closed by an admin (withdrawn, released)', portal.closedByAdmin],
          ] as const
        ).map(
          ([label, value]) =>
            html`<tr>
              <th scope="row">${label}</th>
              <td class="num">${count(value)}</td>
            </tr>`,
        ),
        '',
        [1],
      )
    : html`<h3>Secure portal pickups</h3>
        ${empty('No portal events in this period.')}`;
  const byAction = table(
    'actions-table',
    'Admin actions by action',
    ['Action', 'Count'],
    byCount(adminActions.byAction).map(
      ([action, value]) =>
        html`<tr data-action="${action}">
          <th scope="row"><code>${action}</code></th>
          <td class="num">${count(value)}</td>
        </tr>`,
    ),
    'No admin actions in this period.',
    [1],
  );
  const shown =
    adminActions.rows.length < adminActions.total ? html`<p class="note">Showing ${count(adminActions.rows.length)} of ${count(adminActions.total)} actions; the evidence log holds them all.</p>` : '';
  const rows =
    adminActions.rows.length === 0
      ? ''
      : html`${table(
          'admin-table',
          'Admin actions',
          ['Time', 'Actor', 'Action', 'Id'],
          adminActions.rows.map(
            (row) =>
              html`<tr>
                <td class="nowrap">${utc(row.at)}</td>
                <td>${row.actor}</td>
                <td><code>${row.action}</code></td>
                <td><code>${row.id}</code></td>
              </tr>`,
          ),
          '',
        )}${shown}`;
  return section('portal', 'Secure portal pickups and admin actions', html`${pickups}${byAction}${rows}`);
}

function postureNow(row: PartnerPosture): SafeHtml {
  const verdict = row.verdict === null ? html`<strong class="warn">check failed</strong>` : html`<strong>${row.verdict}</strong>`;
  return html`${verdict}<br /><span class="reason">${row.reason}</span>`;
}

function postureMx(row: PartnerPosture): SafeHtml {
  return list(row.mx.map((mx) => `${mx.host}: ${mx.protocol === null ? 'no TLS' : tlsLabel({ protocol: mx.protocol, cipher: mx.cipher ?? '' })} (${mx.compliant ? 'compliant' : 'not compliant'})`));
}

export function postureSection(data: ReportData): SafeHtml {
  const intro = html`<p class="note">
    Each frequent destination's TLS posture now (<code>sealgate check</code>, run when the report was generated) beside what its deliveries actually negotiated in the period.
  </p>`;
  if (data.posture === null) return section('posture', 'Partner posture', html`${intro}${empty('Partner posture was not checked for this report.')}`);
  const rows = data.posture.map(
    (row) =>
      html`<tr data-domain="${row.domain}">
        <th scope="row" class="domain">${row.domain}</th>
        <td class="num">${count(row.recipients)}</td>
        <td>${postureNow(row)}</td>
        <td>${row.policy === null ? '–' : policyLabel(row.policy)}</td>
        <td>${postureMx(row)}</td>
        <td>${list(tlsItems(row.negotiated))}</td>
      </tr>`,
  );
  return section(
    'posture',
    'Partner posture',
    html`${intro}
    ${table('posture-table', 'Current posture beside what was negotiated', ['Domain', 'Recipients', 'Check now', 'Policy now', 'MX now', 'Negotiated in the period'], rows, 'No frequent destinations in this period.', [1])}`,
  );
}

export function anchorsSection(data: ReportData): SafeHtml {
  const days = periodDays(data.period);
  const rows = data.chain.anchors.map(
    (anchor) =>
      html`<tr data-day="${anchor.day}">
        <th scope="row" class="nowrap">${anchor.day}</th>
        <td class="num">${count(anchor.count)}</td>
        <td class="num">${count(anchor.lastSeq)}</td>
        <td class="hash">${anchor.lastHash}</td>
        <td class="hash">${anchor.hash}</td>
      </tr>`,
  );
  return section(
    'anchors',
    'Evidence anchors',
    html`${statementBlock(chainStatement(data.chain), 'anchors-status')}
      <p class="note">
        Every day of the evidence log is sealed by an anchor: the hash of its last record chained to the previous day's anchor. Keep this table with the report. To check the period's records against
        these seals, run <code>sealgate evidence verify --from ${days.first} --to ${days.last}</code> on the relay: it recomputes every record and anchor hash and names the first entry that does not
        match.
      </p>
      ${table('anchors-table', 'Daily anchors of the period', ['Day', 'Records', 'Last record', 'Last record hash', 'Anchor hash'], rows, 'No sealed days in this period.', [1, 2])}`,
  );
}
