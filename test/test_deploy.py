"""Deploying one size: compact ESPnet models, the stock case, ESPnet's packer, ONNX, the size that fits."""
import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from espnet.nets.pytorch_backend.transformer.embedding import PositionalEncoding, RelPositionalEncoding

from espnet_dynenc.deploy.choose import Candidate, Row, budget_limits, choose, mark_pareto
from espnet_dynenc.deploy.compact import Cut, build_compact
from espnet_dynenc.reallocation import apply_architecture
from espnet_dynenc.deploy.onnx_export import ComputedPositionalEncoding
from tiny_asr import run_main, run_module, trained_supernet

MODEL = ["--asr_train_config", "exp/config.yaml", "--asr_model_file", "exp/varied.pth"]


# ---------------------------------------------------------------- fast: pieces
@pytest.mark.parametrize("espnet_class, kind", [(RelPositionalEncoding, "rel"), (PositionalEncoding, "abs")])
def test_computed_positional_encoding_equals_espnets_table(espnet_class, kind):
    espnet = espnet_class(32, 0.0).eval()
    computed = ComputedPositionalEncoding(kind, 32)
    x = torch.randn(2, 57, 32)
    want, got = espnet(x), computed(x)
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=0)


def row(name: str, backend: str, wer: float, rtf: float, size: int, memory_mb: int, parameters: int = 100) -> Row:
    return Row(Candidate(name, int(name)), backend, parameters, size, rtf, memory_mb * 2**20, wer)


def test_choice_is_the_most_accurate_within_every_budget_and_the_front_is_marked():
    rows = [row("8", "pytorch", 21.5, 0.02, 100, 800), row("8", "onnx_int8", 21.0, 0.01, 40, 60),
            row("24", "pytorch", 10.0, 0.05, 300, 820), row("24", "onnx_fp32", 10.0, 0.03, 290, 70)]
    mark_pareto(rows)
    assert [r.pareto for r in rows] == [False, True, False, True]
    assert choose(rows, {}).label == "24 onnx_fp32"
    assert choose(rows, budget_limits(max_rtf=0.025)).label == "8 onnx_int8"
    assert choose(rows, budget_limits(max_memory=100, max_bytes=200)).label == "8 onnx_int8"
    with pytest.raises(ValueError, match=r"no size or backend meets --max_rtf 0.001 \(smallest measured: 0.01\)"):
        choose(rows, budget_limits(max_rtf=0.001))
    with pytest.raises(ValueError, match="--max_params: must be positive"):
        budget_limits(max_params=0)


@pytest.mark.parametrize("ffn_type", ["conv1d", "conv1d-linear"])
def test_compact_model_of_conv_feed_forwards_is_stock_whole_and_dynamic_cut(ffn_type):
    """positionwise_layer_type conv1d / conv1d-linear: the whole supernet exports as ESPnet's own
    conformer, a pruned or DMAO-resized one as a compact dynamic_conformer; both compute the size."""
    from test_supernet_model import ENC, SMALL_MASK, TOKENS, build

    conf = {"positionwise_layer_type": ffn_type, "positionwise_conv_kernel_size": 3}
    model = build(encoder_conf=conf).eval()
    train_config = {
        "token_list": TOKENS, "input_size": 20, "frontend": None, "specaug": None, "normalize": None,
        "encoder": "dynamic_conformer", "encoder_conf": {**ENC, **conf}, "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [3, 8], "subnet_masks": [SMALL_MASK, "1111 1111"]},
        "ctc_conf": {}, "decoder": None, "init": None,
    }
    x = torch.randn(2, 60, 20)

    def check(size, encoder, lengths):
        built = build_compact(model, train_config, Cut(size))
        assert built.config["encoder"] == encoder, built.not_stock
        assert built.config["encoder_conf"]["positionwise_layer_type"] == ffn_type
        with torch.no_grad():
            model.select_subnet(size)
            want, _ = model.encode(x, lengths)
            got, _ = built.model.encode(x, lengths)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        assert sum(p.numel() for p in built.model.parameters()) == (
            model.subnet_parameter_count(size) + sum(p.numel() for p in model.ctc_for(size).parameters())
            - sum(p.numel() for p in model.ctc.parameters()))

    check(8, "conformer", torch.tensor([60, 60]))  # stock ESPnet lets padding in: equal lengths
    check(3, "dynamic_conformer", torch.tensor([60, 47]))
    apply_architecture(model.encoder, [{"feed_forward": [0, 1, 0, 2]}, {"feed_forward_macaron": [2, 2]}],
                       group_sizes={"ffn": 16})  # 48 hidden channels: 3 groups
    check(8, "dynamic_conformer", torch.tensor([60, 47]))


# ---------------------------------------------------------------- slow: a trained tiny supernet
def _run(args, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The session's tiny supernet of sizes 4 (block 0) and 8 (both blocks), trained one epoch
    (tiny_asr.trained_supernet, shared with the beam tests), with its CTC heads replaced by
    random ones in a copy here, so that every utterance decodes to several tokens."""
    root = tmp_path_factory.mktemp("deploy")
    _, _, shared_valid, _, model = trained_supernet(tmp_path_factory)
    (root / "valid").symlink_to(shared_valid, target_is_directory=True)
    valid, exp = root / "valid", root / "exp"
    exp.mkdir()
    shutil.copy(model / "config.yaml", exp / "config.yaml")
    state = torch.load(model / "valid.cer_ctc.ave.pth", map_location="cpu")
    generator = torch.Generator().manual_seed(0)
    for key in [k for k in state if k.endswith("ctc_lo.weight")]:
        state[key] = 3.0 * torch.randn(state[key].shape, generator=generator)
        state[key.replace("weight", "bias")] = torch.zeros_like(state[key.replace("weight", "bias")])
    torch.save(state, exp / "varied.pth")
    decode = root / "decode"
    (decode / "pruning").mkdir(parents=True)
    (decode / "pruning" / "pruning_plan.yaml").write_text(yaml.safe_dump(
        {"subnet": 8, "num_blocks": 2, "skip_blocks": {"top": {1: [1]}}}))
    run_module("espnet_dynenc.bin.ctc_greedy_inference", MODEL + [
        "--data_path_and_name_and_type", "valid/wav.scp,speech,sound", "--output_dir", "decode/valid",
        "--batch_size", "1", "--pruning_plan", "decode/pruning/pruning_plan.yaml"], cwd=root)
    return SimpleNamespace(root=root, exp=exp, valid=valid, decode=decode)


def _export(trained, name: str, *options: str) -> Path:
    """export_subnet in this process (tiny_asr.run_main: no 5-9 s of ESPnet start-up per export);
    test_stock_export_loads_in_a_process_that_never_imports_this_package loads one elsewhere."""
    proc = run_main("espnet_dynenc.bin.export_subnet", MODEL + [*options, "--output_dir", f"export/{name}"],
                    cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bytes (model.pth)" in proc.stdout
    return trained.root / "export" / name


def _token_int(folder: Path) -> dict:
    return dict(line.partition(" ")[::2] for line in (folder / "token_int").read_text().splitlines())


@pytest.mark.slow
def test_compact_sizes_decode_the_tokens_of_the_supernet_sizes(trained):
    exports = {"4": _export(trained, "4", "--subnet", "4"), "8": _export(trained, "8", "--subnet", "8"),
               "8_top1": _export(trained, "8_top1", "--pruning_plan", "decode/pruning/pruning_plan.yaml",
                                 "--strategy", "top", "--depth", "1")}
    info = {name: yaml.safe_load((path / "export.yaml").read_text()) for name, path in exports.items()}
    # size 4 prunes every unit of block 1, whose final norm still runs: a compact dynamic_conformer;
    # the whole model and the model without block 1 are stock conformers
    assert info["4"]["encoder"] == "dynamic_conformer" and "block 1 keeps none of its units" in info["4"]["not_stock"][0]
    assert info["8"]["encoder"] == "conformer" and info["8_top1"]["encoder"] == "conformer"
    assert info["4"]["model_bytes"] < info["8"]["model_bytes"] and info["8_top1"]["model_bytes"] < info["8"]["model_bytes"]
    supernet = {"4": "4", "8": "8", "8_top1": "pruned/top/1"}
    for name, path in exports.items():
        out = f"decode_{name}"
        batch = "3" if info[name]["encoder"] == "dynamic_conformer" else "1"  # stock ESPnet batches differ on padding
        decoded = run_main("espnet_dynenc.bin.ctc_greedy_inference", [  # the fixture ran it in a subprocess
            "--asr_train_config", f"{path}/config.yaml", "--asr_model_file", f"{path}/model.pth",
            "--data_path_and_name_and_type", "valid/wav.scp,speech,sound", "--output_dir", out, "--batch_size", batch],
            cwd=trained.root)
        assert decoded.returncode == 0, decoded.stderr[-3000:]
        units = info[name]["units"]
        compact, reference = trained.root / out / str(units), trained.decode / "valid" / supernet[name]
        assert _token_int(compact) == _token_int(reference), name
        assert any(_token_int(compact).values())  # the comparison is not between empty outputs
        stats = [yaml.safe_load((folder / "decode_stats.yaml").read_text()) for folder in (compact, reference)]
        assert stats[0]["parameters"] == stats[1]["parameters"] == info[name]["parameters"], name
        assert stats[0]["flops_per_second"] == pytest.approx(stats[1]["flops_per_second"], rel=1e-6), name


@pytest.mark.slow
def test_stock_export_loads_in_a_process_that_never_imports_this_package(trained):
    path = _export(trained, "8_top1_stock", "--pruning_plan", "decode/pruning/pruning_plan.yaml",
                   "--strategy", "top", "--depth", "1")
    code = textwrap.dedent(f"""
        import json, sys
        import soundfile, torch
        from espnet2.tasks.asr import ASRTask
        model, _ = ASRTask.build_model_from_file("{path}/config.yaml", "{path}/model.pth", "cpu")
        model.eval()
        tokens = {{}}
        for line in open("{trained.valid}/wav.scp"):
            utt, wav = line.split()
            speech = torch.tensor(soundfile.read(wav, dtype="float32")[0])[None]
            with torch.no_grad():
                out, lens = model.encode(speech, torch.tensor([speech.shape[1]]))
                best = model.ctc.argmax(out)[0, : int(lens[0])].tolist()
            merged = [t for i, t in enumerate(best) if (i == 0 or t != best[i - 1]) and t != model.blank_id]
            tokens[utt] = " ".join(map(str, merged))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "espnet_dynenc")
        print(json.dumps({{"encoder": type(model.encoder).__name__, "tokens": tokens, "loaded": loaded}}))
    """)
    proc = _run(["-c", code], cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["encoder"] == "ConformerEncoder" and result["loaded"] == []
    assert result["tokens"] == _token_int(trained.decode / "valid" / "pruned" / "top" / "1")


@pytest.mark.slow
@pytest.mark.parametrize("name, subnet, needs_package", [("8_packed", "8", False), ("4_packed", "4", True)])
def test_packed_zip_loads_with_speech2text(trained, name, subnet, needs_package):
    path = _export(trained, name, "--subnet", subnet)
    options = [arg for f in sorted(path.iterdir()) if f.name not in ("config.yaml", "model.pth")
               for arg in ("--option", f"export/{name}/{f.name}")]
    proc = _run(["-m", "espnet2.bin.pack", "asr", "--asr_train_config", f"export/{name}/config.yaml",
                 "--asr_model_file", f"export/{name}/model.pth", *options, "--outpath", f"{name}.zip"], cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    elsewhere = trained.root / f"unpacked_{name}"
    elsewhere.mkdir()
    code = textwrap.dedent(f"""
        {"import espnet_dynenc" if needs_package else ""}
        import soundfile
        from espnet2.bin.asr_inference import Speech2Text
        from espnet2.main_funcs.pack_funcs import unpack
        files = unpack("{trained.root}/{name}.zip", "model")
        speech2text = Speech2Text.from_pretrained(**files, ctc_weight=1.0, beam_size=2, lm_weight=0.0)
        wav = open("{trained.valid}/wav.scp").readline().split()[1]
        text, tokens, token_ids, hyp = speech2text(soundfile.read(wav, dtype="float32")[0])[0]
        print("decoded", len(token_ids))
    """)
    proc = _run(["-c", code], cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith("decoded")


@pytest.mark.slow
def test_onnx_matches_pytorch_and_decodes_with_numpy_and_onnxruntime_only(trained):
    proc = run_module("espnet_dynenc.bin.export_onnx", MODEL + ["--subnet", "4", "--quantize", "int8",
                                                                "--output_dir", "onnx4"], cwd=trained.root)
    assert "max |ONNX - PyTorch| log-probability" in proc.stdout
    onnx_dir = trained.root / "onnx4"
    assert (onnx_dir / "encoder.int8.onnx").stat().st_size < (onnx_dir / "encoder.onnx").stat().st_size
    # fp32 outputs against the compact PyTorch model, from the audio (numpy features vs ESPnet's)
    compact = _export(trained, "4_for_onnx", "--subnet", "4")
    code = textwrap.dedent(f"""
        import json, numpy as np, soundfile, torch
        import espnet_dynenc
        from espnet2.tasks.asr import ASRTask
        from espnet_dynenc.deploy.onnx_inference import OnnxCTCModel, read_wav_scp
        model, _ = ASRTask.build_model_from_file("{compact}/config.yaml", "{compact}/model.pth", "cpu")
        model.eval()
        onnx = OnnxCTCModel("{onnx_dir}")
        worst = 0.0
        for utt, wav in read_wav_scp("{trained.valid}/wav.scp"):
            samples = soundfile.read(wav, dtype="float32")[0]
            with torch.no_grad():
                out, lens = model.encode(torch.tensor(samples)[None], torch.tensor([len(samples)]))
                want = model.ctc.log_softmax(out)[0].numpy()
            got, got_lens = onnx.log_probs(onnx.features(samples))
            assert int(got_lens[0]) == int(lens[0])
            worst = max(worst, float(np.abs(got[0] - want).max()))
        print(json.dumps({{"worst": worst}}))
    """)
    proc = _run(["-c", code], cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["worst"] < 1e-4
    # the copied module decodes on its own and pulls in neither torch nor ESPnet nor this package
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, "{onnx_dir}")
        import asr_onnx
        codes = [asr_onnx.main(["--model_dir", "{onnx_dir}", "--wav_scp", "{trained.valid}/wav.scp",
                                "--output", out] + extra) for out, extra in (("onnx_text", []), ("int8_text", ["--int8"]))]
        heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"torch", "espnet", "espnet2", "espnet_dynenc"}})
        print(codes, heavy)
    """)
    proc = _run(["-c", code], cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "[0, 0] []"
    greedy = (trained.decode / "valid" / "4" / "text").read_text()
    assert (trained.root / "onnx_text").read_text() == greedy
    assert len((trained.root / "int8_text").read_text().splitlines()) == len(greedy.splitlines())


@pytest.mark.slow
def test_bad_requests_exit_non_zero_and_name_the_culprit(trained):
    cases = [
        (["espnet_dynenc.bin.export_subnet", *MODEL, "--subnet", "5", "--output_dir", "bad"],
         "--subnet: 5 is not one of this model's sizes [4, 8]"),
        (["espnet_dynenc.bin.export_subnet", *MODEL, "--pruning_plan", "decode/pruning/pruning_plan.yaml",
          "--strategy", "top", "--depth", "0", "--output_dir", "bad"], "--depth: 0 is not planned for strategy 'top'"),
        (["espnet_dynenc.bin.export_onnx", *MODEL, "--subnet", "6", "--output_dir", "bad"],
         "--subnet: 6 is not one of this model's sizes"),
        (["espnet_dynenc.bin.choose_subnet", *MODEL, "--decode_dir", "decode", "--test_set", "valid",
          "--wav_scp", "valid/wav.scp", "--backends", "onnx_fp32", "--max_rtf", "1e-9", "--work_dir", "choose"],
         "no size or backend meets --max_rtf 1e-09"),
    ]
    for args, message in cases:
        proc = run_main(args[0], args[1:], cwd=trained.root)  # in this process (see tiny_asr.run_main)
        assert proc.returncode == 2, (args, proc.stdout[-2000:], proc.stderr[-2000:])
        assert message in proc.stderr, (message, proc.stderr[-2000:])
    assert not (trained.root / "bad" / "export.yaml").exists()


@pytest.mark.slow
def test_choose_subnet_prints_the_table_and_exports_the_choice(trained):
    proc = _run(["-m", "espnet_dynenc.bin.choose_subnet", *MODEL, "--decode_dir", "decode", "--test_set", "valid",
                 "--wav_scp", "valid/wav.scp", "--backends", "pytorch", "onnx_int8", "--max_params", "40000",
                 "--work_dir", "choose_ok", "--export", "chosen"], cwd=trained.root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    table = [line for line in lines if line.startswith("| ") and not line.startswith("| model")]
    # sizes 4, 8 and the pruned 8/top/1, each with two backends
    assert len(table) == 6 and {line.split(" | ")[0][2:] for line in table} == {"4", "8", "8/top/1"}
    chosen = [line for line in lines if line.startswith("chosen (--max_params 40000)")]
    assert chosen and " 8 " not in chosen[0].split(":")[1]  # size 8 has more than 40000 parameters
    exported = trained.root / "chosen"
    assert (exported / "onnx_config.json").is_file() or (exported / "export.yaml").is_file()
    assert math.isfinite(float(chosen[0].split("RTF ")[1].split(",")[0]))
    assert np.isfinite(float(table[0].split(" | ")[4]))
