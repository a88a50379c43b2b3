"""A national-scale raw folder (benchmark input, not a test): every province of today, each
generated with `sample.generate.generate_small_province` (its district era 2023–2024 and commune
era 2025, plain layouts) and merged into one raw folder `<out>/<year>/<unit folder>/`, for a
warehouse built with the province setting `VN` (`COOP_PROVINCE=VN`).

    python scripts/national_sample.py --out /tmp/vn/raw [--provinces 01,48]

Each province's ground truth is written to `<out>/../truth/<code>.json`. This is a first
building block: a few units per province (about 1,000 workbooks in all), not yet the
≈ 12,000 of every unit of the country (issue 10, target 4).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def provinces_of_today() -> list[str]:
    from sample.generate import load_ref

    ref = load_ref()
    return sorted({code for code in ref.merge.values() if ref.communes_of(code)})


def main() -> int:
    from sample.generate import generate_small_province

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="raw folder to (re)write")
    ap.add_argument("--provinces", default="", help="comma-separated codes of today (default: all)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    codes = [c.strip() for c in args.provinces.split(",") if c.strip()] or provinces_of_today()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    truth_dir = out.parent / "truth"
    truth_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    files = 0
    for code in codes:
        with tempfile.TemporaryDirectory(prefix=f"coop-vn-{code}-") as tmp:
            try:
                truth = generate_small_province(Path(tmp), code, seed=args.seed)
            except ValueError as e:
                print(f"{code}: skipped ({e})", file=sys.stderr)
                continue
            for year in sorted(p for p in Path(tmp).iterdir() if p.is_dir()):
                for unit in sorted(p for p in year.iterdir() if p.is_dir()):
                    dest = out / year.name / unit.name
                    if dest.exists():  # the same folder name in two provinces: keep both
                        dest = out / year.name / f"{unit.name} ({code})"
                    shutil.copytree(unit, dest)
                    files += sum(1 for f in dest.rglob("*") if f.is_file())
            data = asdict(truth) if is_dataclass(truth) else truth
            (truth_dir / f"{code}.json").write_text(json.dumps(data, ensure_ascii=False, default=str),
                                                    encoding="utf-8")
    print(f"{len(codes)} provinces, {files} files in {out} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
