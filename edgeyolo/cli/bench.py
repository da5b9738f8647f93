"""``edgeyolo bench``: argument parsing only; the work is in ``edgeyolo.bench.runner.run_bench``
(``choose`` and ``results`` for ``--choose`` and ``--compare``)."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from edgeyolo.bench.matrix import BENCH_FORMATS, PRECISIONS, parse_list, parse_sizes


@click.command("bench")
@click.option("--weights", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="checkpoint (.pt, exported per cell) or artifact (.onnx/.torchscript/.engine, benched as is); repeatable")
@click.option("--models", default="", help="comma-separated zoo names benched with random weights (latency only)")
@click.option("--formats", default="pytorch,torchscript,onnx", show_default=True, help=f"from {','.join(BENCH_FORMATS)}")
@click.option("--precisions", default="fp32", show_default=True, help=f"from {','.join(PRECISIONS)}")
@click.option("--imgsz", default="320", show_default=True, help="comma-separated square sizes")
@click.option("--batch", default=1, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda:N")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="data YAML for mAP and INT8 calibration (default: the synthetic set)")
@click.option("--warmup", default=10, show_default=True, type=int)
@click.option("--iters", default=50, show_default=True, type=int)
@click.option("--end2end", is_flag=True, help="also time letterbox + inference + decode + NMS on a real image")
@click.option("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime (default: all)")
@click.option("--nc", default=4, show_default=True, type=int, help="classes of --models' random-weights models")
@click.option("--map/--no-map", "measure_map", default=True, show_default=True, help="mAP of trained weights on --data")
@click.option("--map-images", type=int, default=None, help="cap the val images for mAP (default: all, so runs compare on the same images)")
@click.option("--calib-images", default=128, show_default=True, type=int, help="INT8 calibration images")
@click.option("--calib-method", default="minmax", show_default=True, type=click.Choice(["minmax", "entropy", "percentile"]))
@click.option("--int8", "int8_mode", default="on", show_default=True, type=click.Choice(["on", "auto"]),
              help="INT8 cells: plain Q/DQ, or export's --int8 auto (sensitive convs kept in float until the mAP "
                   "drop is under 1 point; trained weights only, random ones get plain Q/DQ)")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="export cache (default ~/.cache/edgeyolo/bench)")
@click.option("--name", default="exp", show_default=True, help="run name under runs/bench/")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="output folder (overrides --name)")
@click.option("--budget-ms", type=float, default=None,
              help="also name the most accurate cell whose p50 latency is within this many ms")
@click.option("--min-map", type=float, default=None,
              help="also name the fastest cell whose mAP@0.5:0.95 reaches this (percent, as the tables print it)")
@click.option("--choose", "choose_json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="BENCH.json: print the Pareto front of an earlier run (and the --budget-ms / --min-map answers) and exit")
@click.option("--compare", nargs=2, type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A.json B.json: print two bench runs side by side (and write OUT/compare.md with --out) and exit")
def bench(weights, models, formats, precisions, imgsz, batch, device, data, warmup, iters, end2end, threads, nc,
          measure_map, map_images, calib_images, calib_method, int8_mode, cache_dir, name, out, budget_ms, min_map,
          choose_json, compare) -> None:
    """Latency, throughput, memory, size and mAP per (model, format, precision, size); a table,
    bench.csv/json and pareto.png under runs/bench/NAME, and which cell to ship."""
    from edgeyolo.bench.choose import fastest_above, within_budget  # noqa: PLC0415 - validates before a long run
    if budget_ms is not None:
        within_budget([], budget_ms)
    if min_map is not None:
        fastest_above([], min_map)
    if choose_json:
        from edgeyolo.bench.choose import ship_section  # noqa: PLC0415
        from edgeyolo.bench.results import read_json  # noqa: PLC0415
        section = ship_section(read_json(choose_json)["cells"], budget_ms, min_map)
        if not section:
            raise ValueError(f"{choose_json}: no cell has both a latency and an mAP (random weights?): nothing to choose")
        click.echo(section.rstrip())
        return
    if compare:
        from edgeyolo.bench.results import compare_table, read_json  # noqa: PLC0415
        a, b = (read_json(p) for p in compare)
        table = compare_table(a, b, str(compare[0]), str(compare[1]))
        click.echo(table)
        if out is not None:
            from edgeyolo.atomic import atomic_write_text  # noqa: PLC0415
            click.echo(f"written: {atomic_write_text(Path(out) / 'compare.md', table)}")
        return
    from edgeyolo.bench.runner import BenchOptions, run_bench  # noqa: PLC0415
    if map_images is not None and map_images < 1:
        raise ValueError(f"--map-images must be >= 1, got {map_images}")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    o = BenchOptions(weights=list(weights), models=parse_list(models, "--models") if models.strip() else [],
                     formats=parse_list(formats, "--formats", BENCH_FORMATS),
                     precisions=parse_list(precisions, "--precisions", PRECISIONS), sizes=parse_sizes(imgsz),
                     batch=batch, device=device, data=data, warmup=warmup, iters=iters, end2end=end2end, threads=threads,
                     nc=nc, measure_map=measure_map, map_images=map_images, calib_images=calib_images,
                     calib_method=calib_method, int8_mode=int8_mode, cache_dir=cache_dir, name=name, out=out,
                     command="edgeyolo " + " ".join(sys.argv[1:]), budget_ms=budget_ms, min_map=min_map)
    res = run_bench(o)
    click.echo(res["markdown"])
    click.echo(f"results: {res['dir']}/bench.csv, bench.json, bench.md, pareto.png")
