"""Starting a supernet from a stock ESPnet Conformer model (bin/init_supernet), and the check of
a checkpoint to start training from (asr.sh --pretrained_model, bin/check_pretrained_model).

Fast tests use untrained models that ESPnet's own ASR task builds; the slow ones a stock
model trained a few steps by ``espnet2.bin.asr_train`` (shared by the module).
"""
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import numpy as np
import pytest
import soundfile
import torch
import yaml

from espnet_dynenc.bin import check_pretrained_model as check_cli
from espnet_dynenc.bin import init_supernet
from espnet_dynenc.espnet_task import DynEncASRTask
from espnet_dynenc.pretrained.init_param import InitParam, check_pretrained_model
from tiny_asr import (
    FRONTEND, TINY_ENCODER, TOKENS, tiny_corpus, train_tiny_model, untrained_model, write_config,
)

STOCK = {"encoder": "conformer", "model": "espnet", "model_conf": {"ctc_weight": 1.0}}


def supernet_config(folder: Path, name: str = "finetune.yaml", **encoder_changes) -> Path:
    """A DES training config whose encoder is TINY_ENCODER's (as a recipe would write one)."""
    config = {"encoder": "dynamic_conformer", "encoder_conf": {**TINY_ENCODER, **encoder_changes},
              "frontend_conf": dict(FRONTEND), "model": "supernet_ctc",
              "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8], "selector": "simple_topk",
                             "selector_conf": {"updates_per_k_step": 2, "k_reduction": 1}}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(config))
    return folder / name


def utterances(count: int = 2) -> List[torch.Tensor]:
    rng = np.random.default_rng(0)
    return [torch.tensor(rng.standard_normal(8000 + 1600 * i).astype(np.float32) * 0.1) for i in range(count)]


def posteriors(config: Path, model_file: Path, speech: List[torch.Tensor], size: Optional[int] = None):
    """CTC log-posteriors, one utterance at a time (no padding), of the model in these files."""
    model, _ = DynEncASRTask.build_model_from_file(config, model_file, "cpu")
    model.eval()
    if size is not None:
        model.select_subnet(size)
    out = []
    with torch.no_grad():
        for x in speech:
            encoded, _ = model.encode(x[None], torch.tensor([x.shape[0]]))
            out.append(model.ctc.log_softmax(encoded)[0])
    return out


def convert(*args: str) -> int:
    return init_supernet.main(list(args))


# ---------------------------------------------------------------- fast: the converter
def test_help_describes_the_options(capsys):
    with pytest.raises(SystemExit) as stop:
        convert("--help")
    assert stop.value.code == 0
    shown = capsys.readouterr().out
    for option in ("--packed_model", "--asr_model_file", "--method", "--train_config", "--subnet_sizes"):
        assert option in shown


def test_hybrid_model_is_converted_without_its_decoder(tmp_path, capsys):
    stock = untrained_model(tmp_path / "hybrid", model_conf={"ctc_weight": 0.3}, decoder="transformer",
                            decoder_conf={"num_blocks": 1, "linear_units": 32, "attention_heads": 2})
    assert convert("--asr_model_file", str(stock), "--output_dir", str(tmp_path / "init"), "--subnet_sizes", "4",
                   "8", "--updates", "60", "--epochs", "3") == 0
    printed = capsys.readouterr().out
    assert "left out the attention decoder (transformer" in printed and "ctc_weight 0.3" in printed
    out = tmp_path / "init"
    state = torch.load(out / "model.pth")
    assert not any(name.startswith("decoder.") for name in state)
    assert torch.equal(state["subnet_ctcs.4.ctc_lo.weight"], state["ctc.ctc_lo.weight"])
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["decoder"] is None and config["model_conf"]["ctc_weight"] == 1.0
    speech = utterances()
    for a, b in zip(posteriors(stock.parent / "config.yaml", stock, speech),
                    posteriors(out / "config.yaml", out / "model.pth", speech)):
        assert (a - b).abs().max() < 1e-5
    # the generated DES schedule: Step 1 (k = 7 .. 4) in 40% of the 60 updates, then 2 epochs of Step 2
    train = yaml.safe_load((out / "train_des.yaml").read_text())
    assert train["model_conf"]["selector_conf"] == {"updates_per_k_step": 6, "k_reduction": 1}
    assert train["keep_nbest_models"] == 2 and train["scheduler_conf"]["total_steps"] == 60
    assert "./run.sh --stage 10 --asr_config" in printed and f"--pretrained_model {out}/model.pth" in printed


def test_pruning_on_demand_config_is_generated_on_request(tmp_path):
    stock = untrained_model(tmp_path / "stock", encoder_conf={**TINY_ENCODER, "num_blocks": 3})
    assert convert("--asr_model_file", str(stock), "--output_dir", str(tmp_path / "init"),
                   "--method", "prune_on_demand") == 0
    train = yaml.safe_load((tmp_path / "init" / "train_prune_on_demand.yaml").read_text())
    assert train["encoder_conf"]["interctc_layer_idx"] == [1, 2]
    assert train["model_conf"] == {"ctc_weight": 1.0, "interctc_weight": 0.3}
    assert yaml.safe_load((tmp_path / "init" / "init.yaml").read_text())["subnet_sizes"] == [12]


def test_refusals_name_the_culprit_and_write_nothing(tmp_path, capsys):
    def refused(*args: str) -> str:
        assert convert(*args, "--output_dir", str(tmp_path / "init")) == 2
        assert not (tmp_path / "init").exists() and not (tmp_path / ".init.tmp").exists()
        return capsys.readouterr().err

    assert "--asr_model_file: no such file: nowhere/model.pth" in refused("--asr_model_file", "nowhere/model.pth")
    transformer = untrained_model(tmp_path / "transformer", encoder="transformer",
                                  encoder_conf={"output_size": 32, "attention_heads": 2, "linear_units": 48,
                                                "num_blocks": 2})
    assert "the model's encoder is 'transformer'" in refused("--asr_model_file", str(transformer))
    stock = untrained_model(tmp_path / "stock")
    wider = supernet_config(tmp_path, "wider.yaml", linear_units=64)
    assert ("parameter 'encoder.encoders.0.feed_forward.w_1.weight' has shape [48, 32] in the stock model but "
            "[64, 32] in the supernet of") in refused("--asr_model_file", str(stock), "--train_config", str(wider))
    (tmp_path / "init").mkdir()
    assert convert("--asr_model_file", str(stock), "--output_dir", str(tmp_path / "init")) == 2
    assert "exists (delete it to convert again)" in capsys.readouterr().err


# ---------------------------------------------------------------- fast: the pretrained-model check
def test_init_param_is_split_and_selected_as_espnet_does():
    assert InitParam.parse("a/b.pth") == InitParam("a/b.pth")
    assert InitParam.parse("a/b.pth:encoder:encoder") == InitParam("a/b.pth", "encoder", "encoder")
    spec = InitParam.parse("a/b.pth:::decoder,ctc")
    assert spec.excludes == ("decoder", "ctc") and spec.spec() == "a/b.pth:::decoder,ctc"
    state = {"encoder.w": 1, "decoder.w": 2, "ctc.w": 3}
    assert spec.selected(state) == {"encoder.w": 1}
    assert InitParam.parse("a/b.pth:encoder:enc").selected(state) == {"enc.w": 1}
    assert InitParam.parse("a/b.pth:::").selected(state) == {}  # ESPnet: an empty prefix excludes everything
    with pytest.raises(ValueError, match="expected path"):
        InitParam.parse("a:b:c:d:e")


@pytest.fixture
def recipe_tokens(tmp_path) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text("\n".join(TOKENS) + "\n")
    return path


def check(model: Path, recipe_tokens: Path, config: Path, ignore: bool = False, spec: str = "") -> str:
    return check_pretrained_model(f"{model}{spec}", ignore, str(recipe_tokens), ["--config", str(config),
                                                                                "--token_list", str(recipe_tokens)])


def test_a_fitting_model_reports_what_loads(tmp_path, recipe_tokens):
    stock = untrained_model(tmp_path / "stock")
    line = check(stock, recipe_tokens, supernet_config(tmp_path))
    assert line.startswith(f"{len(torch.load(stock))} tensors of {stock} load (frontend 1, encoder ")


def test_other_tokens_are_refused_with_the_first_difference(tmp_path, recipe_tokens):
    other = TOKENS[:3] + ["zz"] + TOKENS[4:]
    stock = untrained_model(tmp_path / "stock", tokens=other)
    with pytest.raises(ValueError, match=r"token 3 is 'zz' in the model and 'd' in the recipe") as error:
        check(stock, recipe_tokens, supernet_config(tmp_path))
    assert f"leave its output layers out: --pretrained_model {stock}:::ctc)" in str(error.value)
    # without its output layers nothing depends on the tokens
    assert check(stock, recipe_tokens, supernet_config(tmp_path), spec=":::ctc")


def test_shapes_that_differ_are_named_unless_ignored(tmp_path, recipe_tokens):
    stock = untrained_model(tmp_path / "stock")
    wider = supernet_config(tmp_path, linear_units=64)
    first = r"parameter 'encoder.encoders.0.feed_forward.w_1.weight' has shape \[48, 32\] in the checkpoint"
    with pytest.raises(ValueError, match=first + r" but \[64, 32\] in the model of .*finetune.yaml"):
        check(stock, recipe_tokens, wider)
    assert "12 left out by --ignore_init_mismatch true" in check(stock, recipe_tokens, wider, ignore=True)


def test_a_hybrid_decoder_has_no_place_in_the_supernet(tmp_path, recipe_tokens):
    hybrid = untrained_model(tmp_path / "hybrid", model_conf={"ctc_weight": 0.3}, decoder="transformer",
                             decoder_conf={"num_blocks": 1, "linear_units": 32, "attention_heads": 2})
    with pytest.raises(ValueError, match=rf"has no 'decoder\..*leave them out: --pretrained_model {hybrid}:::decoder"):
        check(hybrid, recipe_tokens, supernet_config(tmp_path))
    assert check(hybrid, recipe_tokens, supernet_config(tmp_path), spec=":::decoder")


def test_cli_names_a_non_conformer_and_a_missing_config(tmp_path, recipe_tokens, capsys):
    transformer = untrained_model(tmp_path / "transformer", encoder="transformer",
                                  encoder_conf={"output_size": 32, "attention_heads": 2, "linear_units": 48,
                                                "num_blocks": 2})
    args = ["--pretrained_model", str(transformer), "--token_list", str(recipe_tokens), "--",
            "--config", str(supernet_config(tmp_path))]
    assert check_cli.main(args) == 2
    assert "the model's encoder is 'transformer'" in capsys.readouterr().err
    (transformer.parent / "config.yaml").unlink()
    assert check_cli.main(args) == 2
    assert "no config.yaml beside it" in capsys.readouterr().err


# ---------------------------------------------------------------- slow: a stock model trained by ESPnet
@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    """ESPnet's Conformer CTC model trained one epoch by espnet2.bin.asr_train (global_mvn statistics)."""
    root, train, valid, tokens = tiny_corpus(tmp_path_factory.mktemp("stock"))
    config = write_config(root, extra=STOCK, name="stock.yaml")
    exp = train_tiny_model(root, config, train, valid, tokens, "stock", module="espnet2.bin.asr_train")
    speech = [torch.tensor(soundfile.read(line.split()[1], dtype="float32")[0])
              for line in (valid / "wav.scp").read_text().splitlines()]
    return SimpleNamespace(root=root, exp=exp, model=exp / "valid.cer_ctc.ave.pth", speech=speech)


def assert_same_posteriors(stock, out: Path) -> None:
    reference = posteriors(stock.exp / "config.yaml", stock.model, stock.speech)
    for size in (None, 4):
        converted = posteriors(out / "config.yaml", out / "model.pth", stock.speech, size)
        for a, b in zip(reference, converted):
            if size is None:  # the full size is the stock model
                assert a.shape == b.shape and (a - b).abs().max() < 1e-5
            else:  # a smaller size starts with the stock head on fewer modules
                assert a.shape == b.shape and not torch.allclose(a, b)


@pytest.mark.slow
def test_trained_stock_model_converts_to_a_supernet_of_the_same_posteriors(stock):
    out = stock.root / "init_des"
    assert convert("--asr_model_file", str(stock.model), "--output_dir", str(out), "--subnet_sizes", "4", "8") == 0
    assert_same_posteriors(stock, out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["normalize"] == "global_mvn" and config["normalize_conf"]["stats_file"] == f"{out}/feats_stats.npz"
    stats = yaml.safe_load((stock.exp / "config.yaml").read_text())["normalize_conf"]["stats_file"]
    assert (out / "feats_stats.npz").read_bytes() == Path(stats).read_bytes()
    assert config["token_list"] == TOKENS and config["encoder"] == "dynamic_conformer"


@pytest.mark.slow
def test_packed_zip_converts_like_its_files(stock):
    from espnet2.bin.pack import main as pack

    stats = yaml.safe_load((stock.exp / "config.yaml").read_text())["normalize_conf"]["stats_file"]
    zip_file = stock.root / "stock.zip"
    pack(["asr", "--asr_train_config", str(stock.exp / "config.yaml"), "--asr_model_file", str(stock.model),
          "--option", stats, "--outpath", str(zip_file)])
    out = stock.root / "init_from_zip"
    assert convert("--packed_model", str(zip_file), "--output_dir", str(out), "--subnet_sizes", "4", "8") == 0
    assert_same_posteriors(stock, out)
    info = yaml.safe_load((out / "init.yaml").read_text())
    assert info["source"]["packed_model"] == str(zip_file)


def test_the_recipe_stock_config_converts_into_its_fine_tuning_supernet(tmp_path):
    """mini_synth: conf/train_asr_conformer_stock.yaml (ESPnet's conformer) fits
    conf/train_asr_des_finetune.yaml, whose encoder is the main job's but for the stock conv norm."""
    conf = Path(__file__).resolve().parents[1] / "egs2" / "mini_synth" / "asr1" / "conf"
    stock_config, finetune, main_job = (yaml.safe_load((conf / name).read_text()) for name in (
        "train_asr_conformer_stock.yaml", "train_asr_des_finetune.yaml", "train_asr_des.yaml"))
    assert {**main_job["encoder_conf"], "conv_norm": "batch_norm"} == finetune["encoder_conf"]
    assert stock_config["encoder"] == "conformer" and stock_config["model"] == "espnet"
    assert finetune["model_conf"]["subnet_sizes"] == main_job["model_conf"]["subnet_sizes"]
    stock = untrained_model(tmp_path / "stock", **{key: stock_config[key] for key in (
        "encoder", "encoder_conf", "frontend_conf", "model", "model_conf", "optim", "optim_conf")})
    assert convert("--asr_model_file", str(stock), "--train_config", str(conf / "train_asr_des_finetune.yaml"),
                   "--output_dir", str(tmp_path / "init")) == 0
    assert yaml.safe_load((tmp_path / "init" / "init.yaml").read_text())["subnet_sizes"] == [8, 16, 24]
