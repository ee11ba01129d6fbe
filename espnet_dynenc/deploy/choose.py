"""The size that fits a device: measure every decoded size and pruned depth, keep the best.

The candidates are what a decode directory holds (``<test_set>/<size>/`` and, with a
pruning plan, ``<test_set>/pruned/<strategy>/<depth>/``). Each is exported twice (a
compact PyTorch model and an ONNX graph with its int8 form) into a work directory and
measured on this machine by ``measure`` workers, one process each, on the test set's
audio: real-time factor at ``num_threads`` threads, peak memory, bytes on disk, and the
WER of that backend's own hypotheses against the test set's ``text`` (so int8 is judged
by its own output). A row is on the Pareto front when no other row is at least as good in
WER, RTF, bytes and memory and better in one. The choice is the most accurate row within
every budget given (ties: the faster). Every audio file of the test set is checked first
(``espnet_dynenc.audio_check``), before anything is exported.
"""
import json
import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.audio_check import check_decoder_inputs
from espnet_dynenc.decode.outputs import DecodeOutput, finished_outputs, pruning_plan_file
from espnet_dynenc.deploy.measure import BACKENDS
from espnet_dynenc.scoring.wer import align, count_errors

BUDGETS = ("max_rtf", "max_params", "max_bytes", "max_memory")


@dataclass(frozen=True)
class Candidate:
    """A decoded size or pruned depth: its name and how to cut it from the supernet."""

    name: str  # "16" or "24/top/4"
    size: int
    strategy: Optional[str] = None
    depth: Optional[int] = None

    @property
    def folder(self) -> str:
        return self.name.replace("/", "_")


@dataclass
class Row:
    """One candidate with one backend, as measured."""

    candidate: Candidate
    backend: str
    parameters: int
    bytes: int
    rtf: float
    peak_memory: int
    wer: float
    hypotheses: Dict[str, dict] = field(default_factory=dict, repr=False)
    pareto: bool = False

    @property
    def label(self) -> str:
        return f"{self.candidate.name} {self.backend}"


def find_candidates(decode_dir: Path, test_set: str) -> List[Candidate]:
    """The sizes and pruned depths decoded (finished) for ``test_set``; pruned ones in the order of their plan."""
    root = decode_dir / test_set
    if not root.is_dir():
        raise ValueError(f"--test_set: no {root} (decode it first, stage 12)")
    outputs = finished_outputs(root)
    candidates = [Candidate(str(output.size), output.size) for output in outputs if not output.is_pruned]
    pruned = {output for output in outputs if output.is_pruned}
    plan_path = pruning_plan_file(decode_dir)
    if pruned and plan_path.is_file():
        from espnet_dynenc.pruning.plan import PruningPlan

        plan = PruningPlan.load(plan_path)
        for strategy, depth, _ in plan.removal_sets():
            if DecodeOutput.pruned(strategy, depth) in pruned:
                candidates.append(Candidate(f"{plan.subnet}/{strategy}/{depth}", plan.subnet, strategy, depth))
    if not candidates:
        raise ValueError(f"--decode_dir {decode_dir}: nothing decoded for {test_set}")
    return candidates


def read_text(path: Path) -> Dict[str, str]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if parts:
            table[parts[0]] = parts[1] if len(parts) > 1 else ""
    return table


def word_error_rate(references: Dict[str, str], hypotheses: Dict[str, dict]) -> float:
    """Errors / reference words over the decoded utterances, counted as sclite counts them."""
    errors = words = 0
    for utt, hyp in hypotheses.items():
        if utt not in references:
            raise ValueError(f"--text: no reference for utterance {utt}")
        ref = references[utt].split()
        counts = count_errors(align(ref, hyp["text"].split()))
        errors += counts.substitutions + counts.deletions + counts.insertions
        words += len(ref)
    return 100.0 * errors / max(words, 1)


def run_worker(backend: str, model_dir: Path, wav_scp: str, num_threads: int, max_utterances: Optional[int],
               output: Path) -> dict:
    """One ``measure`` process; a failure names the backend, the model and the worker's error."""
    cmd = [sys.executable, "-m", "espnet_dynenc.deploy.measure", "--backend", backend, "--model_dir", str(model_dir),
           "--wav_scp", wav_scp, "--num_threads", str(num_threads), "--output", str(output)]
    if max_utterances is not None:
        cmd += ["--max_utterances", str(max_utterances)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {model_dir} with {backend} failed:\n{proc.stderr[-2000:]}")
    return json.loads(output.read_text(encoding="utf-8"))


def export_candidates(model, asr_train_config: str, asr_model_file: str, candidates: Sequence[Candidate],
                      plan_file: Optional[Path], work_dir: Path, backends: Sequence[str]) -> Dict[str, dict]:
    """Per candidate: the compact PyTorch export and the ONNX export (fp32 and int8) it needs."""
    from espnet_dynenc.deploy.compact import Cut, export_compact
    from espnet_dynenc.deploy.onnx_export import export_onnx

    exported: Dict[str, dict] = {}
    for candidate in candidates:
        skip = ()
        if candidate.strategy is not None:
            from espnet_dynenc.pruning.plan import PruningPlan

            skip = PruningPlan.load(plan_file, model).removed(candidate.strategy, candidate.depth)
        cut = Cut(candidate.size, skip, candidate.strategy, candidate.depth)
        entry: Dict[str, object] = {}
        if "pytorch" in backends:
            logging.info("exporting %s (PyTorch)", candidate.name)
            entry["pytorch"] = export_compact(model, asr_train_config, cut,
                                              str(work_dir / candidate.folder / "pytorch"), asr_model_file)
        if any(b.startswith("onnx") for b in backends):
            logging.info("exporting %s (ONNX)", candidate.name)
            entry["onnx"] = export_onnx(model, asr_train_config, cut, str(work_dir / candidate.folder / "onnx"),
                                        quantize="int8" if "onnx_int8" in backends else None)
        exported[candidate.name] = entry
    return exported


def measure_candidates(exported: Dict[str, dict], candidates: Sequence[Candidate], backends: Sequence[str],
                       wav_scp: str, references: Dict[str, str], num_threads: int,
                       max_utterances: Optional[int], work_dir: Path) -> List[Row]:
    """Every candidate with every backend, side by side (a candidate's backends one after another)."""
    rows = []
    for candidate in candidates:
        entry = exported[candidate.name]
        for backend in backends:
            if backend == "pytorch":
                compact = entry["pytorch"]
                model_dir, size, parameters = compact.output_dir, compact.model_bytes, compact.parameters
            else:
                onnx = entry["onnx"]
                model_dir = onnx.output_dir
                size = onnx.int8_bytes if backend == "onnx_int8" else onnx.fp32_bytes
                parameters = json.loads((model_dir / "onnx_config.json").read_text())["parameters"]
            logging.info("measuring %s with %s", candidate.name, backend)
            result = run_worker(backend, model_dir, wav_scp, num_threads, max_utterances,
                                work_dir / candidate.folder / f"measure_{backend}.json")
            rows.append(Row(candidate, backend, parameters, size, result["rtf"], result["peak_memory_bytes"],
                            word_error_rate(references, result["hypotheses"]), result["hypotheses"]))
    return rows


def mark_pareto(rows: List[Row]) -> None:
    """``pareto`` is True for rows no other row matches or beats in WER, RTF, bytes and memory."""
    def costs(row: Row) -> Tuple[float, float, int, int]:
        return row.wer, row.rtf, row.bytes, row.peak_memory

    for row in rows:
        mine = costs(row)
        row.pareto = not any(all(o <= m for o, m in zip(costs(other), mine)) and costs(other) != mine
                             for other in rows if other is not row)


def budget_limits(max_rtf: Optional[float] = None, max_params: Optional[int] = None,
                  max_bytes: Optional[int] = None, max_memory: Optional[int] = None) -> Dict[str, float]:
    limits = {name: value for name, value in (("max_rtf", max_rtf), ("max_params", max_params),
                                              ("max_bytes", max_bytes), ("max_memory", max_memory))
              if value is not None}
    for name, value in limits.items():
        if value <= 0:
            raise ValueError(f"--{name}: must be positive, got {value}")
    return limits


def _value(row: Row, budget: str) -> float:
    return {"max_rtf": row.rtf, "max_params": row.parameters, "max_bytes": row.bytes,
            "max_memory": row.peak_memory / 2**20}[budget]  # memory budgets are in MB


def choose(rows: Sequence[Row], limits: Dict[str, float]) -> Row:
    """The most accurate row within every limit (ties: lower RTF); none names the budgets."""
    fitting = [row for row in rows if all(_value(row, name) <= value for name, value in limits.items())]
    if not fitting:
        closest = ", ".join(f"--{name} {value:g} (smallest measured: {min(_value(r, name) for r in rows):g})"
                            for name, value in limits.items())
        raise ValueError(f"no size or backend meets {closest}")
    return min(fitting, key=lambda row: (row.wer, row.rtf, row.bytes))


def table(rows: Sequence[Row], num_threads: int) -> List[str]:
    """The measured rows as a markdown table, most accurate first; ``*`` marks the Pareto front."""
    lines = [f"| model | backend | parameters | bytes | RTF ({num_threads} thread{'s' if num_threads > 1 else ''}) "
             "| peak memory (MB) | WER (%) | Pareto |", "|---|---|---:|---:|---:|---:|---:|:---:|"]
    for row in sorted(rows, key=lambda r: (r.wer, r.rtf)):
        lines.append(f"| {row.candidate.name} | {row.backend} | {row.parameters} | {row.bytes} | {row.rtf:.4f} "
                     f"| {row.peak_memory / 2**20:.0f} | {row.wer:.2f} | {'*' if row.pareto else ''} |")
    return lines


def export_choice(row: Row, exported: Dict[str, dict], target: Path) -> None:
    """Copy the chosen artefact (the compact model, or the ONNX directory) to ``target``."""
    source = exported[row.candidate.name]["pytorch" if row.backend == "pytorch" else "onnx"].output_dir
    if target.exists():
        raise ValueError(f"--export: {target} exists; give a new directory")
    shutil.copytree(source, target)
    if row.backend == "onnx_fp32":
        (target / "encoder.int8.onnx").unlink(missing_ok=True)


@dataclass
class ChooseRequest:
    """``choose_subnet``'s options."""

    asr_train_config: str
    asr_model_file: str
    decode_dir: str
    test_set: str
    wav_scp: str
    text: Optional[str] = None
    work_dir: Optional[str] = None
    backends: Sequence[str] = BACKENDS
    num_threads: int = 1
    max_utterances: Optional[int] = None
    limits: Dict[str, float] = field(default_factory=dict)
    export: Optional[str] = None


def choose_subnet(request: ChooseRequest) -> Tuple[List[Row], Row]:
    """Find, export, measure, mark the front and choose; optionally export the choice."""
    from espnet_dynenc.checkpoint_jobs.loading import load_model

    for backend in request.backends:
        if backend not in BACKENDS:
            raise ValueError(f"--backends: '{backend}' is not one of {BACKENDS}")
    if request.num_threads < 1:
        raise ValueError(f"--num_threads: must be >= 1, got {request.num_threads}")
    check_decoder_inputs([(request.wav_scp, "speech", "sound")], request.asr_train_config)
    decode_dir = Path(request.decode_dir)
    candidates = find_candidates(decode_dir, request.test_set)
    text = Path(request.text) if request.text else Path(request.wav_scp).parent / "text"
    if not text.is_file():
        raise FileNotFoundError(f"--text: no such file: {text}")
    if request.export and Path(request.export).exists():
        raise ValueError(f"--export: {request.export} exists; give a new directory")
    model, _ = load_model(request.asr_train_config, request.asr_model_file)
    work_dir = Path(request.work_dir) if request.work_dir else decode_dir / "deploy"
    exported = export_candidates(model, request.asr_train_config, request.asr_model_file, candidates,
                                 pruning_plan_file(decode_dir), work_dir, request.backends)
    rows = measure_candidates(exported, candidates, request.backends, request.wav_scp, read_text(text),
                              request.num_threads, request.max_utterances, work_dir)
    mark_pareto(rows)
    best = choose(rows, request.limits)
    if request.export:
        export_choice(best, exported, Path(request.export))
    return rows, best
