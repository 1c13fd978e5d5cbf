#!/usr/bin/env bash
# Fetches real meshes that ship inside public packages (none are committed to this repo):
#   CGAL's demo data (Debian package libcgal-demo) and the PyMeshLab test meshes (PyPI wheel).
# Usage: scripts/fetch_meshes.sh DEST [PYTHON]   — DEST gets cgal/*.off and pymeshlab/*
set -euo pipefail
dest=${1:?destination folder}
python=${2:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest/cgal" "$dest/pymeshlab"

# CGAL demo data: download the .deb alone (no dependencies installed) and unpack its data archive.
( cd "$work" && { apt-get download libcgal-demo >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get download libcgal-demo >/dev/null; }; } )
dpkg-deb -x "$work"/libcgal-demo_*.deb "$work/deb"
tar xzf "$work/deb/usr/share/doc/libcgal-dev/data.tar.gz" -C "$work" data/meshes
for name in bunny00 armadillo elephant elephant-with-holes cow fandisk knot1 camel bull homer femur \
            triceratops rotor anchor helmet hand elk spool pinion cactus couplingdown dino man mushroom \
            lion pig blobby_3cc mech-holes-shark bones; do
  cp "$work/data/meshes/$name.off" "$dest/cgal/"
done

# PyMeshLab sample meshes: take them out of the wheel without installing it.
"$python" -m pip download -q --no-deps --only-binary=:all: -d "$work/wheel" pymeshlab >/dev/null
"$python" - "$work"/wheel/pymeshlab-*.whl "$dest/pymeshlab" <<'PY'
import sys, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
wanted = {"airplane.obj", "bone.ply", "bunny.obj", "cow.obj", "colored_airplane.ply"}
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = pathlib.PurePosixPath(info.filename)
        if name.parent.name == "sample_meshes" and name.name in wanted:
            (out / name.name).write_bytes(z.read(info))
PY
echo "meshes in $dest: $(ls "$dest/cgal" | wc -l) CGAL, $(ls "$dest/pymeshlab" | wc -l) PyMeshLab"
