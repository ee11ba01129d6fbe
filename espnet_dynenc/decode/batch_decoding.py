"""Decode a data set with batched greedy CTC, for several targets in one pass.

The features and the subsampling frontend run once per batch; every target (a subnet
size, or that size with blocks removed) then runs its own blocks and CTC head, and
targets that run the same encoder are computed once. The real-time factor of a target
counts the shared frontend plus its own blocks, head and search: what a deployment of
that target alone would spend. This is the work behind ``bin/ctc_greedy_inference``.
"""
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

from espnet2.text.build_tokenizer import build_tokenizer  # noqa: E402
from espnet2.text.token_id_converter import TokenIDConverter  # noqa: E402

from espnet_dynenc.analysis.complexity import count_units  # noqa: E402
from espnet_dynenc.audio_check import frontend_sample_rate  # noqa: E402
from espnet_dynenc.checkpoint_jobs.loading import build_inference_iterator, check_model_files, load_ctc_model  # noqa: E402
from espnet_dynenc.decode.targets import DecodeTarget, parse_sizes, pruning_targets, size_targets  # noqa: E402
from espnet_dynenc.decode.writer import DecodingPass, SubnetWriter  # noqa: E402
from espnet_dynenc.greedy_ctc import greedy_ctc_decode  # noqa: E402
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel, SubnetPass  # noqa: E402


@dataclass
class DecodeRequest:
    """What to decode and how (``ctc_greedy_inference``'s options)."""

    asr_train_config: str
    asr_model_file: str
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]]
    output_dir: str
    key_file: Optional[str] = None
    subnets: str = ""
    skip_blocks: Sequence[int] = field(default_factory=list)
    pruning_plan: Optional[str] = None
    size_model_files: Sequence[str] = field(default_factory=list)  # "SIZE=FILE" each
    depth_model_files: Sequence[str] = field(default_factory=list)  # "DEPTH=FILE" each
    batch_size: int = 8
    device: str = "cpu"
    dtype: str = "float32"
    num_workers: int = 1
    fs: Optional[int] = None
    flops_reference_seconds: float = 10.0
    num_threads: Optional[int] = None


def set_threads(num_threads: Optional[int]) -> None:
    """``torch.set_num_threads`` when asked (None: torch's default)."""
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"--num_threads must be at least 1, got {num_threads}")
        torch.set_num_threads(num_threads)


def sampling_rate(fs: Optional[int], train_args) -> int:
    """``fs`` when given, else the training config's ``frontend_conf.fs``, else 16000."""
    return fs if fs is not None else frontend_sample_rate(getattr(train_args, "frontend_conf", None))


def build_text_converter(train_args):
    """The training config's tokenizer (tokens -> text), or None when it has none."""
    token_type = getattr(train_args, "token_type", None)
    bpemodel = getattr(train_args, "bpemodel", None)
    if token_type is None or (token_type == "bpe" and bpemodel is None):
        return None
    if token_type == "bpe":
        return build_tokenizer(token_type=token_type, bpemodel=bpemodel)
    return build_tokenizer(token_type=token_type)


def decode_targets_of(request: DecodeRequest, model) -> List[DecodeTarget]:
    """The targets of ``request``'s ``--subnets``, ``--skip_blocks`` and ``--pruning_plan``."""
    return targets_for(model, request.subnets, request.skip_blocks, request.pruning_plan, request.asr_train_config)


def targets_for(model, subnets: str, skip_blocks: Sequence[int], pruning_plan: Optional[str],
                asr_train_config: str) -> List[DecodeTarget]:
    """The sizes of ``subnets`` (with ``skip_blocks``), then the plan's pruned forms and
    their whole subnet (their reference), when a plan is given. A one-size model (an
    exported size) is one target, named by the number of units its encoder computes."""
    if not isinstance(model, ESPnetSupernetCTCModel):
        for option, value in (("--subnets", subnets.strip()), ("--skip_blocks", skip_blocks),
                              ("--pruning_plan", pruning_plan)):
            if value:
                raise ValueError(f"{option}: {asr_train_config} is a one-size model (model: "
                                 f"{type(model).__name__}); decode it without {option}")
        return size_targets([count_units(model.encoder)], ())
    sizes = parse_sizes(subnets, model)
    pruned = pruning_targets(pruning_plan, model) if pruning_plan else []
    if pruned and pruned[0].size not in sizes:
        sizes.append(pruned[0].size)  # the whole subnet: the reference of its pruned forms
    return size_targets(sizes, skip_blocks) + pruned


def parse_model_files(option: str, what: str, example: str, entries: Sequence[str]) -> Dict[int, str]:
    """``option``'s values (``N=FILE``, N a ``what``: size or depth) -> {N: file}; each file
    must exist and each N be given once. ``example`` is a well-formed value for the message."""
    files: Dict[int, str] = {}
    for entry in entries:
        number, sep, path = entry.partition("=")
        if not sep or not number.strip().isdigit() or not path:
            raise ValueError(f"{option} '{entry}': expected {what.upper()}=FILE, e.g. {example}")
        if int(number) in files:
            raise ValueError(f"{option}: {what} {int(number)} is given twice ({files[int(number)]}, {path})")
        if not Path(path).is_file():
            raise FileNotFoundError(f"{option} {entry}: no such file: {path}")
        files[int(number)] = path
    return files


def parse_size_model_files(entries: Sequence[str]) -> Dict[int, str]:
    """``--size_model_file`` values (``SIZE=FILE``) -> {size: file}; each file must exist."""
    return parse_model_files("--size_model_file", "size", "16=exp/asr/valid.cer_ctc_16.ave.pth", entries)


def parse_depth_model_files(entries: Sequence[str]) -> Dict[int, str]:
    """``--depth_model_file`` values (``DEPTH=FILE``) -> {depth: file}; each file must exist."""
    return parse_model_files("--depth_model_file", "depth", "4=exp/asr/valid.cer_interctc_layer4.ave.pth", entries)


def checkpoint_groups(request: DecodeRequest, model, targets: Sequence[DecodeTarget]
                      ) -> List[Tuple[str, List[DecodeTarget]]]:
    """Targets grouped by the checkpoint they are decoded from: a whole size with a
    ``--size_model_file`` from its own, a pruned output (any strategy) of a depth with a
    ``--depth_model_file`` from that depth's, everything else (the plan's whole subnet, its
    reference, included) from ``--asr_model_file``. The main checkpoint's group comes first."""
    own_sizes = parse_size_model_files(request.size_model_files)
    own_depths = parse_depth_model_files(request.depth_model_files)
    if not isinstance(model, ESPnetSupernetCTCModel):
        for option, given in (("--size_model_file", own_sizes), ("--depth_model_file", own_depths)):
            if given:
                raise ValueError(f"{option}: {request.asr_train_config} is a one-size model; decode it with "
                                 "--asr_model_file alone")
    for size in own_sizes:
        if size not in model.subnet_sizes:
            raise ValueError(f"--size_model_file: {size} is not one of this model's sizes {model.subnet_sizes}")
    planned = sorted({target.output.depth for target in targets if target.output.is_pruned}, reverse=True)
    for depth in own_depths:
        if not request.pruning_plan:
            raise ValueError(f"--depth_model_file {depth}={own_depths[depth]}: there are no pruned depths to "
                             "decode; give the --pruning_plan whose depth it is")
        if depth not in planned:
            raise ValueError(f"--depth_model_file: depth {depth} is not planned in {request.pruning_plan} "
                             f"(it has depths {planned})")
    groups: Dict[str, List[DecodeTarget]] = {request.asr_model_file: []}
    for target in targets:
        if target.output.is_pruned:
            path = own_depths.get(target.output.depth, request.asr_model_file)
        else:
            path = own_sizes.get(target.size, request.asr_model_file)
        groups.setdefault(path, []).append(target)
    return [(path, group) for path, group in groups.items() if group]


def build_loader(request: DecodeRequest, train_args):
    """ESPnet's inference iterator over the request's data, in batches of ``request.batch_size``
    (the greedy and the beam decoder read their data the same way)."""
    return build_inference_iterator(train_args, request.data_path_and_name_and_type, request.batch_size,
                                    request.key_file, request.num_workers, request.dtype)


@torch.no_grad()
def decode_data_set(request: DecodeRequest) -> None:
    """Decode every target of ``request`` and write its files under ``request.output_dir``."""
    check_model_files(request.asr_train_config, request.asr_model_file)
    if request.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {request.batch_size}")
    set_threads(request.num_threads)
    model, train_args = load_ctc_model(request.asr_train_config, request.asr_model_file, request.device)
    targets = decode_targets_of(request, model)
    for path, group in checkpoint_groups(request, model, targets):
        if path != request.asr_model_file:
            logging.info("outputs %s: decoding %s", " ".join(t.out_dir for t in group), path)
            model = load_ctc_model(request.asr_train_config, path, request.device)[0]
        model.to(dtype=getattr(torch, request.dtype))
        decode_batches(model, build_loader(request, train_args), group, Path(request.output_dir),
                       sampling_rate(request.fs, train_args), build_text_converter(train_args), request.device,
                       request.dtype, request.flops_reference_seconds, checkpoint=Path(path).name)


def decode_batches(model, loader, targets: Sequence[DecodeTarget], out_root: Path,
                   fs: int, tokenizer, device: str, dtype: str, flops_reference_seconds: float,
                   checkpoint: Optional[str] = None) -> None:
    """The batch loop: every target on every batch, then each target's files and stats.

    ``model`` is a ``supernet_ctc`` model or a one-size CTC model (one target);
    ``checkpoint``, the file its parameters came from, goes into each target's stats."""
    supernet = isinstance(model, ESPnetSupernetCTCModel)
    converter = TokenIDConverter(token_list=model.token_list)
    blank_id = model.blank_id
    writers = {target: SubnetWriter(target, out_root) for target in targets}
    # Targets that run the same encoder (e.g. two strategies removing the same blocks) share
    # one computation per batch and its time.
    same_encoder: Dict[Tuple[int, Tuple[int, ...]], List[SubnetWriter]] = {}
    for target in targets:
        same_encoder.setdefault((target.size, target.skip_blocks), []).append(writers[target])
    frontend_seconds = 0.0
    audio_seconds = 0.0
    num_utts = 0
    for keys, batch in loader:
        speech = batch["speech"].to(device, dtype=getattr(torch, dtype))
        lengths = batch["speech_lengths"].to(device)
        audio_seconds += float(lengths.sum()) / fs
        num_utts += len(keys)
        start = time.perf_counter()
        embedded = model.embed(speech, lengths) if supernet else None
        frontend_seconds += time.perf_counter() - start
        for (size, skip_blocks), group in same_encoder.items():
            start = time.perf_counter()
            if supernet:
                subnet = SubnetPass(size, model.mask_for(size), 1.0)
                out, _, out_lens = model.encode_subnet(embedded, subnet, skip_blocks)
                head = model.ctc_for(size)
            else:
                out, out_lens = model.encode(speech, lengths)
                out = out[0] if isinstance(out, tuple) else out
                head = model.ctc
            hyps = greedy_ctc_decode(head.log_softmax(out), out_lens, blank_id)
            seconds = time.perf_counter() - start
            for key, hyp in zip(keys, hyps):
                tokens = converter.ids2tokens(hyp.token_ids)
                text = tokenizer.tokens2text(tokens) if tokenizer is not None else " ".join(tokens)
                for writer in group:
                    writer.add(key, hyp.token_ids, tokens, text, hyp.score)
            for writer in group:
                writer.seconds += seconds
        logging.info("decoded %d utterances (%.1f s of audio)", num_utts, audio_seconds)
    done = DecodingPass(model, fs, flops_reference_seconds, num_utts, audio_seconds, frontend_seconds, checkpoint)
    for writer in writers.values():
        writer.finish(done)
