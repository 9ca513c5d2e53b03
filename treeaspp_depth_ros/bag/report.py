"""
The `bag-eval` report folder: report.json, report.md and plots drawn with OpenCV.

matplotlib is not a dependency, so the plots are plain OpenCV line charts: good enough to see
drift of the error or of the scale ratio over a sequence at a glance.
"""

import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from treeaspp_depth_ros.metrics import METRIC_NAMES

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
FONT = cv2.FONT_HERSHEY_SIMPLEX
HEADLINE = ('abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'a1', 'a2', 'a3')


def _nice_ticks(lo: float, hi: float, count: int = 5) -> List[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def line_chart(series: Sequence[Tuple[str, Sequence[float], Sequence[float]]], title: str,
               xlabel: str, ylabel: str, size: Tuple[int, int] = (900, 360),
               hlines: Sequence[Tuple[str, float]] = ()) -> np.ndarray:
    """RGB image of a line chart; `series` is (label, x, y), `hlines` (label, y) references."""
    width, height = size
    left, right, top, bottom = 70, 20, 36, 46
    canvas = np.full((height, width, 3), 255, np.uint8)
    xs = np.concatenate([np.asarray(x, float) for _, x, _ in series]) if series else np.zeros(1)
    ys = np.concatenate([np.asarray(y, float) for _, _, y in series] +
                        [np.array([v for _, v in hlines], float)]) if series else np.zeros(1)
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        ys = np.zeros(1)
    x0, x1 = float(np.min(xs)), float(np.max(xs))
    y0, y1 = float(np.min(ys)), float(np.max(ys))
    if x1 <= x0:
        x1 = x0 + 1.0
    pad = (y1 - y0) * 0.08 if y1 > y0 else max(abs(y0) * 0.1, 1e-3)
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        px = left + (np.asarray(x, float) - x0) / (x1 - x0) * (width - left - right)
        py = top + (1.0 - (np.asarray(y, float) - y0) / (y1 - y0)) * (height - top - bottom)
        return np.stack([px, py], axis=-1)

    grey, black = (220, 220, 220), (0, 0, 0)
    for ty in _nice_ticks(y0, y1):
        py = int(round(to_px([x0], [ty])[0, 1]))
        cv2.line(canvas, (left, py), (width - right, py), grey, 1)
        cv2.putText(canvas, f'{ty:.3g}', (4, py + 4), FONT, 0.4, black, 1, cv2.LINE_AA)
    for tx in _nice_ticks(x0, x1, 8):
        px = int(round(to_px([tx], [y0])[0, 0]))
        cv2.line(canvas, (px, height - bottom), (px, height - bottom + 4), black, 1)
        cv2.putText(canvas, f'{tx:.4g}', (px - 10, height - bottom + 18), FONT, 0.4, black, 1,
                    cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (width - right, height - bottom), black, 1)
    for k, (label, value) in enumerate(hlines):
        py = int(round(to_px([x0], [value])[0, 1]))
        colour = (120, 120, 120)
        for start in range(left, width - right, 12):
            cv2.line(canvas, (start, py), (min(start + 6, width - right), py), colour, 1)
        cv2.putText(canvas, label, (width - right - 8 * len(label) - 6, py - 4), FONT, 0.4,
                    colour, 1, cv2.LINE_AA)
    legend_x = left + 8
    for k, (label, x, y) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        points = to_px(x, y)
        finite = np.all(np.isfinite(points), axis=1)
        if finite.sum() >= 2:
            cv2.polylines(canvas, [np.round(points[finite]).astype(np.int32)], False, colour, 2,
                          cv2.LINE_AA)
        for p in np.round(points[finite]).astype(np.int32):
            cv2.circle(canvas, tuple(int(v) for v in p), 2, colour, -1, cv2.LINE_AA)
        cv2.line(canvas, (legend_x, top - 12), (legend_x + 18, top - 12), colour, 3)
        cv2.putText(canvas, label, (legend_x + 22, top - 8), FONT, 0.42, black, 1, cv2.LINE_AA)
        legend_x += 30 + 8 * len(label)
    cv2.putText(canvas, title, (left, 16), FONT, 0.5, black, 1, cv2.LINE_AA)
    cv2.putText(canvas, xlabel, (width // 2 - 4 * len(xlabel), height - 8), FONT, 0.45, black,
                1, cv2.LINE_AA)
    label_img = np.full((20, 8 * len(ylabel) + 8, 3), 255, np.uint8)
    cv2.putText(label_img, ylabel, (2, 14), FONT, 0.42, black, 1, cv2.LINE_AA)
    rotated = cv2.rotate(label_img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    h = min(rotated.shape[0], height - top - bottom)
    y_start = top + (height - top - bottom - h) // 2
    canvas[y_start:y_start + h, 40:40 + rotated.shape[1]] = rotated[:h]
    return canvas


def _stack_charts(charts: List[np.ndarray]) -> np.ndarray:
    return np.concatenate(charts, axis=0)


def _labelled(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 10 + 9 * len(text)), 22), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 16), FONT, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def sample_strip(samples: List[Dict[str, object]], global_scale: float,
                 tile_width: int = 320) -> Optional[np.ndarray]:
    """Rows of RGB | prediction (global scale) | ground truth | AbsRel error, one per sample."""
    from treeaspp_depth_ros.conversions.colormap import colorize_depth
    if not samples:
        return None
    rows = []
    for sample in samples:
        rgb = sample['rgb']
        gt = sample['gt']
        pred = sample['pred'] * global_scale
        h, w = gt.shape
        tile_height = int(round(tile_width * h / w))
        valid = np.isfinite(gt) & (gt > 0)
        lo, hi = (np.percentile(gt[valid], [2, 98]) if valid.any() else (0.5, 5.0))
        error = np.full(gt.shape, np.nan, np.float32)
        error[valid] = np.abs(pred[valid] - gt[valid]) / gt[valid]
        err_level = np.clip(np.nan_to_num(error, nan=0.0) / 0.5, 0, 1)
        err_rgb = cv2.cvtColor(cv2.applyColorMap((err_level * 255).astype(np.uint8),
                                                 cv2.COLORMAP_HOT), cv2.COLOR_BGR2RGB)
        err_rgb[~valid] = 0
        tiles = [
            (cv2.resize(rgb, (w, h)), f'#{sample["index"]} RGB'),
            (colorize_depth(pred, float(lo), float(hi)), 'prediction x global scale'),
            (colorize_depth(gt, float(lo), float(hi)), 'ground truth'),
            (err_rgb, f'|err|/gt (0..0.5) mean {np.nanmean(error):.3f}'),
        ]
        rows.append(np.concatenate(
            [_labelled(cv2.resize(t, (tile_width, tile_height),
                                  interpolation=cv2.INTER_AREA), label) for t, label in tiles],
            axis=1))
    return np.concatenate(rows, axis=0)


def write_plots(folder: Path, report: Dict[str, object], frames: List[Dict[str, object]],
                samples: List[Dict[str, object]]) -> List[str]:
    """Draw the PNGs into `folder`; return their file names."""
    written = []
    index = [f['index'] for f in frames]
    charts = []
    for metric, label in (('abs_rel', 'AbsRel'), ('rmse', 'RMSE (m)'), ('a1', 'delta < 1.25')):
        series = [('median-scaled', index, [f['median_scaled'][metric] for f in frames]),
                  ('global-scaled', index, [f['global_scaled'][metric] for f in frames])]
        if frames and 'metric' in frames[0]:
            series.append(('metric', index, [f['metric'][metric] for f in frames]))
        charts.append(line_chart(series, f'{label} per frame', 'frame', label))
    _write_png(folder / 'metrics_over_time.png', _stack_charts(charts))
    written.append('metrics_over_time.png')
    ratios = [f['scale_ratio'] for f in frames]
    chart = line_chart(
        [('median(gt) / median(pred)', index, ratios)],
        f'per-frame scale ratio (CV {report["scale_ratio_cv"]:.3f})', 'frame', 'scale ratio',
        hlines=[('global scale', float(report['global_scale']))])
    _write_png(folder / 'scale_ratio.png', chart)
    written.append('scale_ratio.png')
    latencies = [(f['index'], f['latency_ms']) for f in frames if f.get('latency_ms') is not None]
    if latencies:
        chart = line_chart([('end-to-end latency', [i for i, _ in latencies],
                             [v for _, v in latencies])], 'live latency per frame', 'frame',
                           'latency (ms)')
        _write_png(folder / 'latency.png', chart)
        written.append('latency.png')
    over_time = report.get('over_time') or {}
    charts = []
    confidence = over_time.get('confidence')
    if confidence:
        removed = [100 * f for f in confidence['removed_fraction']]
        charts.append(line_chart(
            [('confidence order', removed, confidence['abs_rel_confidence_order']),
             ('oracle (worst first)', removed, confidence['abs_rel_oracle_order'])],
            'sparsification: AbsRel of what is left (random order keeps the first value)',
            '% of pixels removed', 'AbsRel'))
    flicker = over_time.get('flicker') or {}
    if flicker.get('ours_per_pair'):
        pairs = list(range(1, len(flicker['ours_per_pair']) + 1))
        charts.append(line_chart(
            [('ours', pairs, flicker['ours_per_pair']),
             ('sensor', pairs, flicker['sensor_per_pair'])],
            f'flicker: relative depth change at the same points ({flicker["warped_with"]})',
            'frame pair', 'mean relative change'))
    if charts:
        _write_png(folder / 'over_time.png', _stack_charts(charts))
        written.append('over_time.png')
    strip = sample_strip(samples, float(report['global_scale']))
    if strip is not None:
        _write_png(folder / 'samples.png', strip)
        written.append('samples.png')
    return written


def _write_png(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write {path}')


def _table(rows: Dict[str, Optional[Dict[str, float]]]) -> List[str]:
    names = [n for n in HEADLINE if n in METRIC_NAMES]
    lines = ['| scaling | ' + ' | '.join(names) + ' |',
             '|---|' + '---:|' * len(names)]
    for label, values in rows.items():
        if values:
            lines.append(f'| {label} | ' + ' | '.join(f'{values[n]:.4f}' for n in names) + ' |')
    return lines


def markdown(report: Dict[str, object], plots: List[str]) -> str:
    """Human-readable summary of report.json."""
    lines = [f'# Depth evaluation: {Path(str(report["bag"])).name}', '']
    lines += [
        f'- mode: **{report["mode"]}**; weights `{report["weights"]}` ({report.get("variant")}, '
        f'input {report.get("input_size")}, {report.get("device")})',
        f'- topics: image `{report["image_topic"]}`, ground truth `{report["depth_topic"]}`',
        f'- frames evaluated: **{report["frames"]}** of {report["frames_paired"]} paired '
        f'({report["frames_skipped"]} without valid ground truth'
        + (f', {report["dropped"]} dropped by the live pipeline' if 'dropped' in report else '')
        + ')',
        f'- depth range [{report["min_depth"]}, {report["max_depth"]}] m, crop '
        f'{report["crop"] or "none"}',
        f'- throughput: **{report["fps"]:.2f} frames/s**' + (
            f' (model only {report["model_fps"]:.2f})' if report.get('model_fps') else ''),
    ]
    if report['mode'] == 'live':
        lines.append(f'- live playback at rate {report["rate"]:g}'
                     + (' with /clock (use_sim_time)' if report.get('clock') else '')
                     + f': {report["published"]} frames published, {report["received"]} depth '
                     f'maps received, drop rate {100.0 * report["drop_rate"]:.1f} %')
    if report.get('latency_ms'):
        lat = report['latency_ms']
        lines.append(f'- end-to-end latency: mean {lat["mean"]:.1f} ms, p50 {lat["p50"]:.1f}, '
                     f'p95 {lat["p95"]:.1f}, max {lat["max"]:.1f}')
    lines += ['', '## Aggregate metrics', '']
    rows = {'per-frame median scaling': report['median_scaled'],
            f'one global scale ({report["global_scale"]:.4g})': report['global_scaled']}
    if report.get('metric'):
        rows['metric (calibrated scale, no rescaling)'] = report['metric']
    lines += _table(rows)
    lines += [
        '', '## Scale consistency', '',
        'Per-frame ratio median(gt) / median(pred). A SLAM system can use the depth as metric '
        'only if one scale fits every frame, i.e. the spread is small.', '',
        f'- global scale (median ratio): {report["global_scale"]:.4g}',
        f'- mean {report["scale_ratio_mean"]:.4g}, std {report["scale_ratio_std"]:.4g}, '
        f'**CV {report["scale_ratio_cv"]:.4f}**',
        f'- range {report["scale_ratio_min"]:.4g} .. {report["scale_ratio_max"]:.4g}; '
        f'p95/p5 = {report["scale_ratio_p95_p5"]:.4f}',
    ]
    lines += _over_time_lines(report.get('over_time') or {})
    if plots:
        lines += ['', '## Plots', '']
        lines += [f'![{p}]({p})' for p in plots]
    lines.append('')
    return '\n'.join(lines)


def _over_time_lines(section: Dict[str, object]) -> List[str]:
    """Markdown of bag-eval's odometry, confidence, scale drift and flicker."""
    if not section:
        return []
    lines = ['', '## Over time', '']
    odometry = section.get('odometry') or {}
    if 'ate_similarity' in odometry:
        lines.append(
            f'- odometry ({odometry["pairs"]} pairs, pose network {odometry["pose_ms_mean"]:.0f} '
            f'ms each): ATE **{odometry["ate_similarity"]["rmse_m"]:.3f} m** after a '
            f'similarity alignment ({100 * odometry["ate_sim_over_length"]:.1f}% of the '
            f'{odometry["trajectory_length_m"]:.2f} m path), {odometry["ate_rigid"]["rmse_m"]:.3f}'
            f' m rigid with the node\'s scale; RPE {odometry["rpe"]["trans_rmse_m"]:.4f} m and '
            f'{odometry["rpe"]["rot_rmse_deg"]:.2f} deg per frame; resets {odometry["resets"]}')
    elif odometry:
        lines.append(f'- odometry: {odometry.get("note", "")}')
    confidence = section.get('confidence')
    if confidence:
        lines.append(
            f'- confidence: AUSE {confidence["ause_vs_oracle"]:.4f} against the oracle '
            f'(random order: {confidence["ause_random_vs_oracle"]:.4f}); dropping the 20% least '
            f'confident pixels gains {100 * confidence["gain_at_20pct_vs_oracle"]:.0f}% of what '
            'dropping the 20% worst would')
    drift = section.get('scale_drift')
    if drift:
        trend = 100 * drift['trend_per_100_frames']
        lines.append(f'- scale drift: ratio CV {drift["ratio_cv"]:.4f}, p95/p5 '
                     f'{drift["ratio_p95_p5"]:.3f}, trend {trend:+.1f}% per 100 frames')
    flicker = section.get('flicker') or {}
    if 'ours_mean_relative_change' in flicker:
        lines.append(f'- flicker (warped with {flicker["warped_with"]}): ours '
                     f'{flicker["ours_mean_relative_change"]:.4f}, sensor '
                     f'{flicker["sensor_mean_relative_change"]:.4f} mean relative change')
    return lines


def write_report(folder: Path, report: Dict[str, object], frames: List[Dict[str, object]],
                 samples: List[Dict[str, object]]) -> None:
    """report.json (aggregates + per-frame), report.md and plots into `folder` (must exist)."""
    plots = write_plots(folder, report, frames, samples)
    report = dict(report, plots=plots)
    document = _finite(dict(report, per_frame=frames))
    (folder / 'report.json').write_text(
        json.dumps(document, indent=2, default=_json_default, allow_nan=False) + '\n')
    (folder / 'report.md').write_text(markdown(report, plots))


def _finite(value):
    """NaN/inf -> None so report.json is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f'not JSON serialisable: {type(value)!r}')
