"""Each pruned depth from its own checkpoint: ``--depth_model_file DEPTH=FILE`` of the decoders.

A tiny 4-block model with intermediate CTC exits after blocks 2 and 3 is not trained: a
second checkpoint is the first with altered weights, standing in for the average of the
epochs best by one exit's dev CER. Decoding a plan with depth 2 taken from that checkpoint
must give depth 2 exactly what that checkpoint alone gives, and everything else exactly what
the main checkpoint alone gives.
"""
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tiny_asr import TINY_ENCODER, make_data_dir, run_main, untrained_model

STRATEGIES = ("top", "every_other")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder, config, main checkpoint, the depth-2 checkpoint, plan, dev data)."""
    import torch

    folder = tmp_path_factory.mktemp("depths")
    main = untrained_model(folder / "exp", encoder="dynamic_conformer",
                           encoder_conf={**TINY_ENCODER, "num_blocks": 4, "interctc_layer_idx": [2, 3]},
                           model="supernet_ctc", model_conf={"ctc_weight": 1.0, "interctc_weight": 0.3},
                           token_type="char")
    state = torch.load(main, map_location="cpu")
    generator = torch.Generator().manual_seed(1)
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and name.endswith("weight") and "norm" not in name:
            state[name] = value + 0.3 * torch.randn(value.shape, generator=generator)
    own = main.parent / "valid.cer_interctc_layer2.ave.pth"
    torch.save(state, own)
    plan = folder / "pruning_plan.yaml"
    plan.write_text(yaml.safe_dump({"subnet": 16, "num_blocks": 4, "skip_blocks": {
        "top": {3: [3], 2: [2, 3]}, "every_other": {3: [3], 2: [1, 3]}}}))
    dev = make_data_dir(folder, "dev", 5, seed=1)
    return SimpleNamespace(folder=folder, config=main.parent / "config.yaml", main=main, own=own, plan=plan, dev=dev)


def request(tiny, out: Path, model: Path, **changes):
    from espnet_dynenc.decode.batch_decoding import DecodeRequest

    fields = dict(asr_train_config=str(tiny.config), asr_model_file=str(model),
                  data_path_and_name_and_type=[(f"{tiny.dev}/wav.scp", "speech", "sound")], output_dir=str(out),
                  pruning_plan=str(tiny.plan), batch_size=2, flops_reference_seconds=1.0)
    return DecodeRequest(**{**fields, **changes})


def outputs(root: Path):
    """Every output folder below ``root`` (``16``, ``pruned/top/2``, ...) -> its line files."""
    found = {}
    for stats in sorted(root.glob("**/decode_stats.yaml")):
        folder = stats.parent
        found[folder.relative_to(root).as_posix()] = {name: (folder / name).read_text()
                                                      for name in ("text", "token_int", "score")}
    return found


def checkpoint_of(folder: Path) -> str:
    return yaml.safe_load((folder / "decode_stats.yaml").read_text())["checkpoint"]


# ---------------------------------------------------------------- option parsing
def test_depth_model_files_are_parsed_with_named_refusals(tmp_path):
    from espnet_dynenc.decode.batch_decoding import parse_depth_model_files

    own = tmp_path / "valid.cer_interctc_layer4.ave.pth"
    own.write_bytes(b"x")
    assert parse_depth_model_files([f"4={own}", f" 2={own}"]) == {4: str(own), 2: str(own)}
    assert parse_depth_model_files([]) == {}
    for bad in (str(own), f"four={own}", "4=", f"-1={own}"):
        with pytest.raises(ValueError, match=rf"--depth_model_file '{bad}': expected DEPTH=FILE, e.g. 4="):
            parse_depth_model_files([bad])
    with pytest.raises(ValueError, match=r"--depth_model_file: depth 4 is given twice"):
        parse_depth_model_files([f"4={own}", f"4={own}"])
    with pytest.raises(FileNotFoundError, match=r"--depth_model_file 4=.*missing.pth: no such file"):
        parse_depth_model_files([f"4={tmp_path / 'missing.pth'}"])


def test_a_depth_file_needs_a_plan_with_that_depth_and_a_supernet(tiny):
    from espnet_dynenc.checkpoint_jobs.loading import load_ctc_model
    from espnet_dynenc.decode.batch_decoding import checkpoint_groups, targets_for

    model = load_ctc_model(str(tiny.config), str(tiny.main), "cpu")[0]
    out = tiny.folder / "unused"
    planned = targets_for(model, "", [], str(tiny.plan), str(tiny.config))
    with pytest.raises(ValueError, match=r"--depth_model_file: depth 1 is not planned in .*pruning_plan.yaml "
                                         r"\(it has depths \[3, 2\]\)"):
        checkpoint_groups(request(tiny, out, tiny.main, depth_model_files=[f"1={tiny.own}"]), model, planned)
    sizes_only = targets_for(model, "", [], None, str(tiny.config))
    with pytest.raises(ValueError, match=r"--depth_model_file 2=.*: there are no pruned depths to decode; give "
                                         r"the --pruning_plan"):
        checkpoint_groups(request(tiny, out, tiny.main, pruning_plan=None, depth_model_files=[f"2={tiny.own}"]),
                          model, sizes_only)
    with pytest.raises(ValueError, match=r"--depth_model_file: .*config.yaml is a one-size model"):
        checkpoint_groups(request(tiny, out, tiny.main, depth_model_files=[f"2={tiny.own}"]), SimpleNamespace(), [])
    # the main checkpoint's group first, then the depth's: every strategy of depth 2, nothing else
    groups = checkpoint_groups(request(tiny, out, tiny.main, depth_model_files=[f"2={tiny.own}"]), model, planned)
    assert [(path, sorted(t.out_dir for t in group)) for path, group in groups] == [
        (str(tiny.main), ["16", "pruned/every_other/3", "pruned/top/3"]),
        (str(tiny.own), ["pruned/every_other/2", "pruned/top/2"])]


def test_the_greedy_decoder_names_a_bad_depth_file(tiny):
    proc = run_main("espnet_dynenc.bin.ctc_greedy_inference", [
        "--asr_train_config", str(tiny.config), "--asr_model_file", str(tiny.main),
        "--data_path_and_name_and_type", f"{tiny.dev}/wav.scp,speech,sound", "--output_dir", "out",
        "--pruning_plan", str(tiny.plan), "--depth_model_file", f"two={tiny.own}"], cwd=tiny.folder)
    assert proc.returncode != 0
    assert f"--depth_model_file 'two={tiny.own}': expected DEPTH=FILE" in proc.stdout + proc.stderr
    assert not (tiny.folder / "out" / "16").exists()


# ---------------------------------------------------------------- decoding
def test_each_depth_decodes_as_its_own_checkpoint_alone(tiny):
    from espnet_dynenc.decode.batch_decoding import decode_data_set

    mixed, main_alone, own_alone = (tiny.folder / name for name in ("mixed", "main_alone", "own_alone"))
    decode_data_set(request(tiny, mixed, tiny.main, depth_model_files=[f"2={tiny.own}"]))
    decode_data_set(request(tiny, main_alone, tiny.main))
    decode_data_set(request(tiny, own_alone, tiny.own))
    got, from_main, from_own = outputs(mixed), outputs(main_alone), outputs(own_alone)
    assert sorted(got) == ["16"] + [f"pruned/{s}/{d}" for s in sorted(STRATEGIES) for d in (2, 3)]
    for name in got:
        depth_2 = name.endswith("/2")
        assert got[name] == (from_own if depth_2 else from_main)[name], name
        assert checkpoint_of(mixed / name) == (tiny.own.name if depth_2 else tiny.main.name), name
    # the two checkpoints do decode differently, so the equalities above tell them apart
    assert from_own["pruned/top/2"]["score"] != from_main["pruned/top/2"]["score"]
