"""Regenerates `nasnet_app/assets/cifar10_subset.tar`, the CIFAR-10 images bundled for the demo.

From the full CIFAR-10 JPEG archive (`train/<class>/*.jpg`, `test/<class>/*.jpg`)
it picks, per class, `--train` training and `--test` test images with a seeded
generator, and writes their original JPEG bytes to a plain tar with the same
layout. Members are sorted and carry fixed metadata (mtime 0, uid/gid 0), so
the same inputs always give a byte-identical file.

Usage:

    python tools/make_cifar10_subset.py [--source ../shared/data/cifar10-jpeg.tar.gz]
        [--out nasnet_app/assets/cifar10_subset.tar] [--train 200] [--test 100] [--seed 0]
"""

import argparse
import collections
import io
import os
import sys
import tarfile

import numpy as np

from nasnet_app.io_utils import atomic_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(ROOT, "..", "shared", "data", "cifar10-jpeg.tar.gz")
DEFAULT_OUT = os.path.join(ROOT, "nasnet_app", "assets", "cifar10_subset.tar")


def read_members(source):
    """`{(split, class): {member name: bytes}}` of the JPEGs in the source archive."""
    groups = collections.defaultdict(dict)
    with tarfile.open(source) as archive:
        for member in archive:
            name = member.name.removeprefix("./")
            parts = name.split("/")
            if member.isfile() and len(parts) == 3 and parts[2].lower().endswith(".jpg"):
                groups[(parts[0], parts[1])][name] = archive.extractfile(member).read()
    if not groups:
        raise ValueError(f"`--source` {source!r} holds no <split>/<class>/*.jpg images.")
    return groups


def choose(groups, per_split, seed):
    """The chosen `{member name: bytes}`: per (split, class), a seeded sample of sorted names."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for split, klass in sorted(groups):
        wanted = per_split[split]
        names = sorted(groups[(split, klass)])
        if wanted > len(names):
            raise ValueError(
                f"`--{split}` must be at most {len(names)} for class {klass!r}. Received: {wanted}"
            )
        for index in sorted(rng.choice(len(names), size=wanted, replace=False)):
            chosen[names[index]] = groups[(split, klass)][names[index]]
    return chosen


def write_tar(path, members):
    with atomic_path(path, suffix=".tar") as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as archive:
            folders = sorted(
                {os.path.dirname(n) for n in members} | {n.split("/")[0] for n in members}
            )
            for folder in folders:
                archive.addfile(_info(folder, tarfile.DIRTYPE, 0, 0o755))
            for name in sorted(members):
                data = members[name]
                archive.addfile(_info(name, tarfile.REGTYPE, len(data), 0o644), io.BytesIO(data))
        os.chmod(tmp, 0o644)  # package data: readable by everyone (mkstemp gives 0600)


def _info(name, kind, size, mode):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode, info.mtime = kind, size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE)
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--train", type=int, default=200, help="training images per class")
    parser.add_argument("--test", type=int, default=100, help="test images per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not os.path.isfile(args.source):
        parser.error(f"--source {args.source!r} does not exist")
    groups = read_members(args.source)
    members = choose(groups, {"train": args.train, "test": args.test}, args.seed)
    write_tar(args.out, members)
    print(f"wrote {len(members)} images, {os.path.getsize(args.out) / 1e6:.2f} MB to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
