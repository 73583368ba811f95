import type { EChartsOption } from 'echarts';
import { count, isModernTls, OUTCOME_COLOURS, OUTCOMES } from './format';
import type { ReportData, TimelinePoint } from './types';

/*
 * The report's charts, drawn by echarts on the server as SVG strings (no script in the page). echarts escapes the
 * text it writes into the SVG (domain names are data); every chart instance is disposed, or its timers keep the
 * process (and jest) alive.
 */

export const CHART_WIDTH = 680;

/** Short legend names: the long ones overlap on an A4 page's width. */
const LEGEND: Record<(typeof OUTCOMES)[number], string> = { delivered: 'Delivered', diverted: 'Diverted', bounced: 'Bounced', deferred: 'Deferred' };

const TEXT = { color: '#1a1a1a', fontFamily: 'sans-serif', fontSize: 12 };

/** One option as an SVG string, the instance disposed whatever happens. */
export function renderChart(option: EChartsOption, size: { width: number; height: number }): string {
  // Loaded on demand: echarts takes about half a second to load, which only a report should pay.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- a lazy require keeps echarts unloaded until a chart is drawn
  const echarts = require('echarts') as typeof import('echarts');
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: size.width, height: size.height });
  try {
    chart.setOption({ animation: false, backgroundColor: '#ffffff', textStyle: TEXT, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** A bucket's axis label: the day, or day and hour for hourly buckets. */
function bucketLabel(point: TimelinePoint, hourly: boolean): string {
  const iso = new Date(Date.parse(point.start)).toISOString();
  return hourly ? `${iso.slice(5, 10)} ${iso.slice(11, 13)}:00` : iso.slice(0, 10);
}

/** Outcomes per day (or hour), stacked; null when there is no outcome to draw. */
export function outcomesChart(timeline: TimelinePoint[]): string | null {
  if (!timeline.some((point) => OUTCOMES.some((outcome) => point[outcome] > 0))) return null;
  const hourly = timeline.some((point) => !point.start.includes('T00:00:00'));
  return renderChart(
    {
      legend: { top: 0, itemGap: 32, textStyle: TEXT },
      grid: { left: 48, right: 16, top: 36, bottom: 48 },
      xAxis: { type: 'category', data: timeline.map((point) => bucketLabel(point, hourly)), axisLabel: { color: TEXT.color } },
      yAxis: { type: 'value', minInterval: 1, axisLabel: { color: TEXT.color } },
      series: OUTCOMES.map((outcome) => ({
        name: LEGEND[outcome],
        type: 'bar',
        stack: 'outcomes',
        color: OUTCOME_COLOURS[outcome],
        data: timeline.map((point) => point[outcome]),
      })),
    },
    { width: CHART_WIDTH, height: 320 },
  );
}

/** Deliveries by TLS protocol version, newest first; null when nothing was delivered. */
export function tlsVersionsChart(tlsVersions: ReportData['tlsVersions']): string | null {
  const rows = Object.entries(tlsVersions)
    .filter(([, value]) => value > 0)
    .sort((a, b) => b[0].localeCompare(a[0]));
  if (rows.length === 0) return null;
  return renderChart(
    {
      grid: { left: 96, right: 64, top: 16, bottom: 32 },
      xAxis: { type: 'value', minInterval: 1, axisLabel: { color: TEXT.color } },
      yAxis: { type: 'category', inverse: true, data: rows.map(([protocol]) => protocol), axisLabel: { color: TEXT.color } },
      series: [
        {
          name: 'Deliveries',
          type: 'bar',
          barMaxWidth: 36,
          label: { show: true, position: 'right', color: TEXT.color, formatter: (p: { value: unknown }) => count(Number(p.value)) },
          data: rows.map(([protocol, value]) => ({
            value,
            itemStyle: { color: isModernTls(protocol) ? OUTCOME_COLOURS.delivered : OUTCOME_COLOURS.bounced },
          })),
        },
      ],
    },
    { width: CHART_WIDTH, height: 64 + rows.length * 44 },
  );
}

/** The domains with the most diversions, most first; null when nothing was diverted. */
export function topDivertedChart(topDiverted: ReportData['topDiverted']): string | null {
  const rows = topDiverted.filter((row) => row.count > 0);
  if (rows.length === 0) return null;
  return renderChart(
    {
      grid: { left: 200, right: 64, top: 16, bottom: 32 },
      xAxis: { type: 'value', minInterval: 1, axisLabel: { color: TEXT.color } },
      yAxis: {
        type: 'category',
        inverse: true,
        data: rows.map((row) => row.domain),
        axisLabel: { color: TEXT.color, width: 184, overflow: 'truncate' },
      },
      series: [
        {
          name: 'Diversions',
          type: 'bar',
          barMaxWidth: 28,
          color: OUTCOME_COLOURS.diverted,
          label: { show: true, position: 'right', color: TEXT.color, formatter: (p: { value: unknown }) => count(Number(p.value)) },
          data: rows.map((row) => row.count),
        },
      ],
    },
    { width: CHART_WIDTH, height: 56 + rows.length * 32 },
  );
}
