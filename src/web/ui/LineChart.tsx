/**
 * A small line chart in SVG, of one series over time: a few hundred bytes of our own
 * instead of a charting library (the smallest of which would weigh more than this page).
 * Screen readers get the summary in words; the figure's caption names the series.
 */
export type Point = { t: number; v: number };

const W = 320;
const H = 80;

export function LineChart({ title, unit, points, max }: { title: string; unit: string; points: Point[]; max?: number }) {
  const last = points.at(-1)?.v;
  const peak = points.reduce((m, p) => Math.max(m, p.v), 0);
  const top = Math.max(max ?? 0, peak, 1e-9);
  const t0 = points[0]?.t ?? 0;
  const span = Math.max((points.at(-1)?.t ?? 0) - t0, 1);
  const path = points.map((p, i) => `${i ? "L" : "M"}${(((p.t - t0) / span) * W).toFixed(1)},${(H - (p.v / top) * (H - 4) - 2).toFixed(1)}`).join("");
  const fmt = (v: number) => `${v < 10 ? v.toFixed(2) : Math.round(v)} ${unit}`;
  const summary = points.length ? `${title}: now ${fmt(last ?? 0)}, peak ${fmt(peak)}, ${points.length} samples` : `${title}: no samples yet`;
  return (
    <figure className="chart">
      <figcaption>
        <span>{title}</span> <span className="muted small">{points.length ? `now ${fmt(last ?? 0)} · peak ${fmt(peak)}` : "no samples yet"}</span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={summary}>
        <line x1="0" y1={H - 1} x2={W} y2={H - 1} className="chart-axis" />
        {points.length > 1 ? <path d={path} className="chart-line" vectorEffect="non-scaling-stroke" /> : null}
      </svg>
    </figure>
  );
}
