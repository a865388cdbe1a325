"""Thumbnail of one 12-MP (4000x3000) JPEG: the course handler's code path vs naive Pillow vs sharp.

Rows (CPU and wall time per thumbnail, one thread each, the same photo, 200x200 box, JPEG quality 85):
- the handler's `make_thumbnail` (JPEG draft mode: libjpeg decodes at 1/8 scale, then LANCZOS);
- naive Pillow: decode all 12 MP, then resize (what most first versions do);
- Pillow's own `Image.thumbnail()` (which also uses draft mode), for reference;
- sharp in Node.js, the seed's library (libvips, shrink-on-load), with `sharp.concurrency(1)`.
  It is installed with npm into build/bench-node/ when npm exists; without npm the row is
  skipped and the output says so.
Python and Node samples are taken in short alternating rounds so that machine noise hits both alike;
CPU time is the fairer number on a busy machine (and what a Lambda limited to a CPU share pays).
Then the handler runs in the local cloud at 128 MB (S3 trigger, real CPU share) and its REPORT
line gives Max Memory Used. Ratios, not assertions: the target is handler <= 0.9x sharp.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from PIL import Image, ImageOps
from tqdm import tqdm

from lambdalab.course.lessons import thumbnails
from lambdalab.course.paths import package

from .table import print_table

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "thumbnail"
NODE_DIR = ROOT / "build" / "bench-node"
SHARP_VERSION = "0.35"  # npm resolves the newest 0.35.x
RUNS = int(os.environ.get("BENCH_THUMB_RUNS", "40"))
ROUNDS = 10
HANDLER = "handler make_thumbnail (draft + LANCZOS)"
PILLOW_THUMBNAIL = "Pillow Image.thumbnail() (draft inside)"
NAIVE = "naive Pillow (full decode + resize)"
BOX = (200, 200)

SHARP_SCRIPT = r"""
// Serves timing requests: each stdin line "N" runs N thumbnails and answers one JSON line.
const sharp = require("sharp");
const fs = require("fs");
const readline = require("readline");
const input = fs.readFileSync(process.argv[2]);
sharp.concurrency(1);   // one thread, like Pillow (and like a 128 MB Lambda's fraction of a vCPU)
sharp.cache(false);     // no result cache between runs
const once = () => sharp(input).rotate()
  .resize(200, 200, { fit: "inside", withoutEnlargement: true })
  .jpeg({ quality: 85, optimiseCoding: true }).toBuffer();
const lines = readline.createInterface({ input: process.stdin });
(async () => {
  await once(); await once();  // warm up
  console.log(JSON.stringify({ version: sharp.versions.sharp }));
  for await (const line of lines) {
    const wall = [], cpu = [];
    for (let i = 0; i < Number(line); i++) {
      const t = process.hrtime.bigint(), c = process.cpuUsage();
      await once();
      const used = process.cpuUsage(c);  // every thread of the process, like Python's process_time
      wall.push(Number(process.hrtime.bigint() - t) / 1e6);
      cpu.push((used.user + used.system) / 1e3);
    }
    console.log(JSON.stringify({ wall, cpu }));
  }
})().catch((e) => { console.error(e); process.exit(1); });
"""


class SharpTimer:
    """A Node.js process with sharp loaded, timing batches on request (so rounds can alternate)."""

    def __init__(self, photo: Path):
        self.proc = subprocess.Popen(["node", str(NODE_DIR / "sharp_bench.js"), str(photo)], cwd=NODE_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.version = self._answer()["version"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sharp benchmark failed: {self.proc.stderr.read().strip()[-800:]}")
        return json.loads(line)

    def samples(self, n: int) -> tuple[list[float], list[float]]:
        """(wall ms, CPU ms) of `n` thumbnails."""
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        answer = self._answer()
        return answer["wall"], answer["cpu"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def load_thumbnail_module() -> ModuleType:
    """solutions/thumbnail/thumbnail.py, imported under a private name (no sys.path change)."""
    spec = importlib.util.spec_from_file_location("bench_solution_thumbnail", SOLUTION / "thumbnail.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def naive_pillow(data: bytes) -> bytes:
    """Full decode of every pixel, then resize: the obvious first version."""
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
    scale = min(BOX[0] / im.width, BOX[1] / im.height)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def pillow_thumbnail(data: bytes) -> bytes:
    im = Image.open(io.BytesIO(data))
    im.thumbnail(BOX, Image.Resampling.LANCZOS)  # draft mode inside, reducing_gap=2.0
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def time_calls(fn: Callable[[bytes], object], data: bytes, n: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) of `n` calls after one warm-up call."""
    fn(data)
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(data)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def install_sharp() -> tuple[bool, str]:
    """(ready, message): sharp installed under build/bench-node/ with npm, or why not."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return False, "npm/node not found on PATH: the sharp row is skipped (install Node.js to compare)"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    (NODE_DIR / "sharp_bench.js").write_text(SHARP_SCRIPT)
    if not (NODE_DIR / "node_modules" / "sharp" / "package.json").exists():
        if not (NODE_DIR / "package.json").exists():
            (NODE_DIR / "package.json").write_text(json.dumps({"name": "bench-node", "private": True}) + "\n")
        print(f"installing sharp@{SHARP_VERSION} with npm into {NODE_DIR.relative_to(ROOT)}/ ...", flush=True)
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", f"sharp@{SHARP_VERSION}"],
                              cwd=NODE_DIR, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return False, f"`npm install sharp` failed, the sharp row is skipped:\n{done.stderr.strip()[-800:]}"
    return True, "sharp ready"


def handler_at_128_mb(data: bytes, uploads: int = 4) -> list:
    """Upload the photo `uploads` times through the S3 trigger; the handler's Invocations."""
    from lambdalab.cloud.local_cloud import LocalCloud

    with LocalCloud(cpu_limit=True) as cloud:
        s3 = cloud.client("s3")
        for bucket in ("bench-photos", "bench-thumbnails"):
            s3.create_bucket(Bucket=bucket)
        fn = cloud.deploy("thumbnails", package(SOLUTION), "handler.lambda_handler", memory=128, timeout=30,
                          env={"THUMBNAIL_BUCKET": "bench-thumbnails"})
        s3.put_bucket_notification_configuration(Bucket="bench-photos", NotificationConfiguration={
            "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn["FunctionArn"],
                                              "Events": ["s3:ObjectCreated:*"]}]})
        for i in tqdm(range(uploads), desc="uploads at 128 MB", leave=False):
            s3.put_object(Bucket="bench-photos", Key=f"DSC_{i:04d}.JPG", Body=data)
            cloud.settle(120)  # one at a time: the same warm environment serves them all
        return cloud.records("thumbnails")


def main() -> None:
    thumb = load_thumbnail_module()
    data = thumbnails.photo_jpeg(4000, 3000)
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    photo = NODE_DIR / "photo-4000x3000.jpg"
    photo.write_bytes(data)
    with Image.open(io.BytesIO(data)) as im:
        print(f"Python {sys.version.split()[0]}, Pillow {Image.__version__} on {os.cpu_count()} cores; "
              f"photo {im.width}x{im.height} JPEG, {len(data) / 1e6:.1f} MB; {RUNS} runs per row")
    ready, message = install_sharp()
    if not ready:
        print(message)
    sharp = SharpTimer(photo) if ready else None
    sharp_label = f"sharp {sharp.version} (Node.js, libvips, 1 thread)" if sharp else ""
    labels = [HANDLER, PILLOW_THUMBNAIL, NAIVE] + ([sharp_label] if sharp else [])
    wall: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in labels}

    def add(label: str, samples: tuple[list[float], list[float]]) -> None:
        wall[label] += samples[0]
        cpu[label] += samples[1]

    per_round = max(1, RUNS // ROUNDS)
    try:
        # Short alternating rounds: a noisy neighbour slows every row alike, not just one.
        for n in tqdm(range(ROUNDS), desc="rounds", leave=False):
            add(HANDLER, time_calls(thumb.make_thumbnail, data, per_round))
            if sharp:
                add(sharp_label, sharp.samples(per_round))
            add(PILLOW_THUMBNAIL, time_calls(pillow_thumbnail, data, per_round))
            if n % 3 == 0:
                add(NAIVE, time_calls(naive_pillow, data, 1))
    finally:
        if sharp:
            sharp.close()
    baseline = sharp_label if sharp else NAIVE
    title = "Thumbnail of a 12-MP JPEG into 200x200"
    print_table(f"{title}: CPU time per image (all threads; what a CPU-share-limited Lambda pays for)",
                [(label, cpu[label]) for label in labels], baseline=baseline)
    print_table(f"{title}: wall time per image (inflated by anything else running on the machine)",
                [(label, wall[label]) for label in labels], baseline=baseline)
    handler = statistics.median(cpu[HANDLER])
    naive = statistics.median(cpu[NAIVE])
    if sharp:
        ratio = handler / statistics.median(cpu[sharp_label])
        wall_ratio = statistics.median(wall[HANDLER]) / statistics.median(wall[sharp_label])
        print(f"handler / sharp at p50: {ratio:.2f}x CPU time, {wall_ratio:.2f}x wall time "
              f"(target <= 0.90x: {'met' if ratio <= 0.9 else 'NOT met'} on CPU time); "
              f"handler is {naive / handler:.1f}x faster than naive Pillow")
    else:
        print(f"handler is {naive / handler:.1f}x faster than naive Pillow; "
              f"sharp not measured ({message.splitlines()[0]})")

    invocations = handler_at_128_mb(data)
    failed = [inv for inv in invocations if not inv.ok]
    if failed:
        print(f"handler at 128 MB FAILED: {failed[0].error_type}: {failed[0].error.get('errorMessage')}")
        return
    warm = [inv.duration_ms for inv in invocations if not inv.cold]
    print(f"\nThe handler in the local cloud at 128 MB (S3 trigger; CPU share of 128 MB is 7% of a vCPU): "
          f"{len(invocations)} uploads, warm Duration p50 {statistics.median(warm):.0f} ms")
    peak = max(inv.max_memory_used_mb for inv in invocations)
    cold = next((inv for inv in invocations if inv.cold), None)
    print(f"Max Memory Used: {peak} MB of 128 MB ({'fits' if peak < 128 else 'does NOT fit'}); "
          + (f"cold start Init Duration {cold.init_ms:.0f} ms" if cold and cold.init_ms else ""))


if __name__ == "__main__":
    main()
