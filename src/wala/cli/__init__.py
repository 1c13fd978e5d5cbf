"""`wala …` — the command line: one module per group of commands (data, train, models, images, text,
evaluate, export), each adding its subcommands with `add_commands`; the options they share are declared once in
`options`. Bad input ends in one line on stderr and exit status 2; Ctrl-C in one line and 130."""

from __future__ import annotations

import argparse

from wala.cli import data, evaluate, export, images, models, options, text, train

GROUPS = (data, train, models, images, text, evaluate, export)  # in `wala --help` order


def build_parser() -> argparse.ArgumentParser:
    parser = options.OneLineParser(prog="wala", description="WaLa: wavelet latent diffusion for 3D shapes")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)  # building imports torch: Ctrl-C often lands here
    except KeyboardInterrupt:
        return options.interrupted()
    return options.run_command(args.run, args)
