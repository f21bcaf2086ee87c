/** A grouped bar chart as a standalone SVG document (no dependencies, readable in any browser). */

export interface BarChart {
  readonly title: string;
  /** A smaller second line under the title (sha, date, machine). */
  readonly subtitle?: string;
  /** One name per bar in a group (the legend). */
  readonly series: readonly string[];
  /** One group per configuration; values[i] belongs to series[i] (0: no value). */
  readonly groups: readonly { readonly label: string; readonly values: readonly number[]; readonly note?: string }[];
  /** Label of the value axis. */
  readonly unit?: string;
  /** How a value is written on its bar and on the axis; default thousands (`12.3k`, axis `12,000`). */
  readonly format?: (v: number) => string;
}

const COLORS = ['#2b6cb0', '#c05621', '#d69e2e', '#2f855a', '#6b46c1'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `v`. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function barChartSvg(chart: BarChart): string {
  const bar = 22;
  const gap = 4;
  const groupGap = 40;
  const left = 70;
  const top = 72;
  const plotH = 260;
  const groupW = chart.series.length * (bar + gap) - gap;
  const textW = (t: string | undefined, px: number) => (t ?? '').length * px * 0.6;
  const width = Math.ceil(Math.max(520, left + chart.groups.length * (groupW + groupGap) + 20, left + textW(chart.title, 14) + 20, left + textW(chart.subtitle, 11) + 20));
  const height = top + plotH + 84;
  const max = niceMax(Math.max(0, ...chart.groups.flatMap((g) => g.values)));
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(chart.title)}</text>`);
  if (chart.subtitle) out.push(`<text x="${left}" y="36" fill="#4a5568">${esc(chart.subtitle)}</text>`);
  // legend
  let lx = left;
  for (const [i, s] of chart.series.entries()) {
    out.push(`<rect x="${lx}" y="46" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="56">${esc(s)}</text>`);
    lx += 24 + s.length * 6.5;
  }
  // axis and grid
  for (let k = 0; k <= 5; k++) {
    const v = (max * k) / 5;
    const yy = y(v);
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${yy}" y2="${yy}" stroke="#e2e8f0"/>`);
    out.push(`<text x="${left - 6}" y="${yy + 4}" text-anchor="end">${chart.format ? chart.format(v) : Math.round(v).toLocaleString('en')}</text>`);
  }
  out.push(`<text transform="translate(14 ${top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(chart.unit ?? 'replicated writes/s')}</text>`);
  // bars
  for (const [g, group] of chart.groups.entries()) {
    const gx = left + 14 + g * (groupW + groupGap);
    for (const [i, v] of group.values.entries()) {
      const x = gx + i * (bar + gap);
      if (v > 0) {
        out.push(`<rect x="${x}" y="${y(v).toFixed(1)}" width="${bar}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(`${chart.series[i]}, ${group.label}: ${chart.format ? chart.format(v) : Math.round(v)}`)}</title></rect>`);
        out.push(`<text x="${x + bar / 2}" y="${(y(v) - 3).toFixed(1)}" text-anchor="middle" font-size="9">${chart.format ? chart.format(v) : `${(v / 1000).toFixed(1)}k`}</text>`);
      } else {
        out.push(`<text x="${x + bar / 2}" y="${top + plotH - 3}" text-anchor="middle" font-size="9">n/a</text>`);
      }
    }
    // a label "a, b" takes two lines so neighbouring groups never overlap
    const lines = group.label.split(', ');
    for (const [k, line] of lines.entries()) out.push(`<text x="${gx + groupW / 2}" y="${top + plotH + 16 + k * 13}" text-anchor="middle">${esc(line)}</text>`);
    if (group.note) out.push(`<text x="${gx + groupW / 2}" y="${top + plotH + 18 + lines.length * 13}" text-anchor="middle" fill="#4a5568" font-size="10">${esc(group.note)}</text>`);
  }
  out.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="#4a5568"/>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** Several standalone SVG documents one above the other, as one document (each keeps its own coordinates). */
export function stackSvg(charts: readonly string[]): string {
  let y = 0;
  let width = 0;
  const parts: string[] = [];
  for (const chart of charts) {
    const m = /^<svg [^>]*width="(\d+)" height="(\d+)"/.exec(chart);
    if (!m) throw new Error('stackSvg: not a chart of barChartSvg');
    const [w, h] = [Number(m[1]), Number(m[2])];
    parts.push(chart.trimEnd().replace(/^<svg /, `<svg y="${y}" `));
    width = Math.max(width, w);
    y += h;
  }
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}">`, `<rect width="100%" height="100%" fill="#fff"/>`, ...parts, '</svg>', ''].join('\n');
}

/** A stacked bar chart: one bar per entry of `bars`, one segment per entry of `parts` (the legend). */
export interface StackedChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly parts: readonly string[];
  /** values[i] belongs to parts[i]; zero parts draw nothing. */
  readonly bars: readonly { readonly label: string; readonly values: readonly number[] }[];
  readonly unit: string;
  readonly format: (v: number) => string;
}

const STACK_COLORS = ['#2b6cb0', '#c05621', '#d69e2e', '#b7791f', '#975a16', '#6b46c1', '#718096', '#2f855a', '#a0aec0', '#38b2ac', '#e53e3e', '#1a202c'];

/** Horizontal stacked bars with a legend, as a standalone SVG document. */
export function stackedBarSvg(chart: StackedChart): string {
  const left = 190;
  const barH = 22;
  const gap = 10;
  const plotW = 520;
  const legendRows = Math.ceil(chart.parts.length / 3);
  const top = 50;
  const plotTop = top + legendRows * 16 + 12;
  const width = left + plotW + 40;
  const height = plotTop + chart.bars.length * (barH + gap) + 40;
  const max = niceMax(Math.max(0, ...chart.bars.map((b) => b.values.reduce((s, v) => s + v, 0))));
  const x = (v: number) => left + (v / max) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">${esc(chart.title)}</text>`);
  if (chart.subtitle) out.push(`<text x="10" y="36" fill="#4a5568">${esc(chart.subtitle)}</text>`);
  for (const [i, p] of chart.parts.entries()) {
    const lx = 10 + (i % 3) * 250;
    const ly = top + Math.floor(i / 3) * 16;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${STACK_COLORS[i % STACK_COLORS.length]}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}">${esc(p)}</text>`);
  }
  for (let k = 0; k <= 5; k++) {
    const v = (max * k) / 5;
    out.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${plotTop - 4}" y2="${height - 30}" stroke="#e2e8f0"/>`);
    out.push(`<text x="${x(v)}" y="${height - 18}" text-anchor="middle">${esc(chart.format(v))}</text>`);
  }
  out.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle">${esc(chart.unit)}</text>`);
  for (const [b, bar] of chart.bars.entries()) {
    const y = plotTop + b * (barH + gap);
    out.push(`<text x="${left - 6}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(bar.label)}</text>`);
    let at = 0;
    for (const [i, v] of bar.values.entries()) {
      if (!(v > 0)) continue;
      out.push(`<rect x="${x(at).toFixed(1)}" y="${y}" width="${(x(at + v) - x(at)).toFixed(1)}" height="${barH}" fill="${STACK_COLORS[i % STACK_COLORS.length]}"><title>${esc(`${bar.label}, ${chart.parts[i]}: ${chart.format(v)}`)}</title></rect>`);
      at += v;
    }
    out.push(`<text x="${(x(at) + 4).toFixed(1)}" y="${y + barH / 2 + 4}">${esc(chart.format(at))}</text>`);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
