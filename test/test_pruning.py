"""Layer pruning on demand (Lee et al., 2021): strategies, dev scoring, pruned = smaller model, CLIs."""
import math

import numpy as np
import pytest
import torch
import yaml
from espnet2.asr.ctc import CTC

from espnet_dynenc.checkpoint_jobs.dev_scoring import DevScorer, character_errors
from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.greedy_ctc import greedy_ctc_decode
from espnet_dynenc.model.schedule import SubnetPass
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel
from espnet_dynenc.pruning import STRATEGIES, blocks_to_remove
from espnet_dynenc.pruning.strategies import every_other_blocks, greedy_blocks, svcca_blocks, top_blocks
from tiny_asr import make_data_dir, run_module, train_tiny_model, write_config, write_token_list

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=32, attention_heads=4, linear_units=48, cnn_module_kernel=7, macaron_style=True,
           rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0, input_layer="conv2d")
# What Lee et al. train with: intermediate CTC and a linearly growing stochastic depth.
PRUNABLE = dict(stochastic_depth_rate=0.2, stochastic_depth_schedule="linear")


def build(num_blocks=4, seed=0, **encoder_conf):
    torch.manual_seed(seed)
    encoder = DynamicConformerEncoder(20, num_blocks=num_blocks, **{**ENC, **encoder_conf})
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None, preencoder=None,
        encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 32), joint_network=None,
        interctc_weight=0.3,
    ).eval()


def speech_batch(seed=1):
    torch.manual_seed(seed)
    return torch.randn(3, 60, 20), torch.tensor([60, 52, 41])


# ---------------------------------------------------------------- strategies
@pytest.mark.parametrize("num_blocks, depth, removed", [
    (4, 4, ()), (4, 3, (3,)), (4, 1, (1, 2, 3)), (4, 0, (0, 1, 2, 3)), (12, 8, (8, 9, 10, 11)), (1, 0, (0,)),
])
def test_top_removes_the_last_blocks(num_blocks, depth, removed):
    assert blocks_to_remove("top", num_blocks, depth) == removed


@pytest.mark.parametrize("num_blocks, depth, removed", [
    (12, 6, (1, 3, 5, 7, 9, 11)),  # half: every second block, as LayerDrop
    (12, 9, (3, 7, 11)),  # a quarter: every fourth block
    (12, 11, (11,)),
    (12, 12, ()),
    (12, 0, tuple(range(12))),
    (10, 7, (2, 5, 9)),  # runs of 3, 3, 4 blocks, the last of each removed
    (6, 2, (0, 2, 3, 5)),  # runs of 1, 2, 1, 2
    (5, 3, (1, 4)),
    (18, 12, (2, 5, 8, 11, 14, 17)),
])
def test_every_other_removes_evenly_spaced_blocks(num_blocks, depth, removed):
    assert blocks_to_remove("every_other", num_blocks, depth) == removed


def test_every_other_matches_layerdrop_rule_when_the_count_divides_the_depth():
    for num_blocks in range(1, 25):
        for num_remove in range(0, num_blocks + 1):
            chosen = every_other_blocks(num_blocks, num_remove)
            assert len(set(chosen)) == num_remove and all(0 <= b < num_blocks for b in chosen)
            if num_remove and num_blocks % num_remove == 0:
                period = num_blocks // num_remove
                assert chosen == [d - 1 for d in range(1, num_blocks + 1) if d % period == 0]


def test_svcca_removes_the_most_redundant_blocks_first():
    redundancy = [0.5, 0.9, 0.7, 0.9]
    assert svcca_blocks(4, 3, redundancy) == [3, 1, 2]  # the tie goes to the later block
    assert blocks_to_remove("svcca", 4, 2, redundancy=redundancy) == (1, 3)
    with pytest.raises(ValueError, match="redundancy: has 3 entries"):
        svcca_blocks(4, 1, redundancy[:3])
    with pytest.raises(ValueError, match="redundancy: block 2"):
        svcca_blocks(4, 1, [0.5, 0.9, float("nan"), 0.9])


def test_greedy_removes_the_cheapest_block_each_step():
    cost = {0: 5.0, 1: 1.0, 2: 3.0, 3: 2.0}
    calls = []

    def score(removed):
        calls.append(removed)
        # Removing 1 and 3 together hurts: greedy takes 2 second and 0 third, not 3.
        penalty = 10.0 if {1, 3} <= removed else 0.0
        return sum(cost[b] for b in removed) + penalty

    assert greedy_blocks(4, 3, score) == [1, 2, 0]
    assert len(calls) == 4 + 3 + 2
    assert blocks_to_remove("greedy", 4, 2, score=score) == (1, 2)
    with pytest.raises(ValueError, match="score: returned nan"):
        greedy_blocks(4, 1, lambda removed: float("nan"))


@pytest.mark.parametrize("call, message", [
    (lambda: blocks_to_remove("top", 4, 5), r"depth: 5 is not in 0\.\.4"),
    (lambda: blocks_to_remove("every_other", 4, -1), r"depth: -1 is not in 0\.\.4"),
    (lambda: blocks_to_remove("random", 4, 2), "strategy: 'random' is unknown"),
    (lambda: blocks_to_remove("top", 0, 0), "num_blocks"),
    (lambda: blocks_to_remove("svcca", 4, 2), "strategy: 'svcca' needs redundancy"),
    (lambda: blocks_to_remove("greedy", 4, 2), "strategy: 'greedy' needs score"),
    (lambda: top_blocks(4, 5), "num_remove: 5"),
    (lambda: blocks_to_remove("top", 4, "2"), "depth: must be an integer"),
])
def test_bad_inputs_name_the_option(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_numpy_integers_are_depths_too():
    assert blocks_to_remove("top", np.int64(4), np.int64(2)) == (2, 3)


def test_registry_lists_the_four_strategies():
    assert set(STRATEGIES) == {"top", "every_other", "svcca", "greedy"}
    assert STRATEGIES["greedy"].needs == ("score",)


# ---------------------------------------------------------------- pruned model
def _kept_blocks_model(big, kept):
    """A model with only ``kept`` blocks of ``big``, their weights copied."""
    small = build(num_blocks=len(kept), interctc_layer_idx=[1] if len(kept) > 1 else [], **PRUNABLE)
    source = big.state_dict()
    state = {}
    for key in small.state_dict():
        if key.startswith("encoder.encoders."):
            index, rest = key[len("encoder.encoders."):].split(".", 1)
            state[key] = source[f"encoder.encoders.{kept[int(index)]}.{rest}"]
        elif key == "subnet_masks":
            state[key] = small.state_dict()[key]  # the unit count differs; masks are all ones
        else:
            state[key] = source[key]
    small.load_state_dict(state)
    return small.eval()


@pytest.mark.parametrize("removed", [(1, 3), (2, 3), (0,), (0, 1, 2)])
def test_pruned_model_equals_model_built_from_the_kept_blocks(removed):
    big = build(num_blocks=4, interctc_layer_idx=[2], **PRUNABLE)
    kept = [b for b in range(4) if b not in removed]
    small = _kept_blocks_model(big, kept)
    speech, lengths = speech_batch()
    with torch.no_grad():
        embedded = big.embed(speech, lengths)
        pruned, _, pruned_lens = big.encode_subnet(embedded, SubnetPass(16, big.mask_for(16), 1.0), removed)
        size = small.supernet_size
        alone, _, alone_lens = small.encode_subnet(small.embed(speech, lengths),
                                                   SubnetPass(size, small.mask_for(size), 1.0))
        torch.testing.assert_close(pruned, alone, atol=0, rtol=0)
        torch.testing.assert_close(pruned_lens, alone_lens)
        torch.testing.assert_close(big.ctc.log_softmax(pruned), small.ctc.log_softmax(alone), atol=0, rtol=0)
        # The same through ESPnet's entry point, the way asr_inference --skip_blocks runs it.
        big.select_subnet(None, removed)
        (out, _), _ = big.encode(speech, lengths)
        torch.testing.assert_close(out, pruned, atol=0, rtol=0)
    assert big.subnet_parameter_count(None, removed) == small.subnet_parameter_count(None)


# ---------------------------------------------------------------- dev scoring
def _identity_block_model(block):
    """A model whose ``block`` adds nothing: output projections zero and no block-final norm."""
    model = build(num_blocks=4, final_norm=False, **PRUNABLE)
    layer = model.encoder.encoders[block]
    with torch.no_grad():
        for linear in (layer.feed_forward_macaron.w_2, layer.self_attn.linear_out,
                       layer.conv_module.pointwise_conv2, layer.feed_forward.w_2):
            linear.weight.zero_()
            if linear.bias is not None:
                linear.bias.zero_()
    return model


def _self_transcribed_batches(model):
    """Dev batches whose references are the full model's own greedy output: CER 0 unpruned."""
    batches = []
    for seed in (1, 2):
        speech, lengths = speech_batch(seed)
        with torch.no_grad():
            out, lens = model.encode(speech, lengths)
            out = out[0] if isinstance(out, tuple) else out
            hyps = greedy_ctc_decode(model.ctc.log_softmax(out), lens, model.blank_id)
        refs = [h.token_ids or [3] for h in hyps]
        text = torch.full((len(refs), max(map(len, refs))), -1, dtype=torch.long)
        for i, ref in enumerate(refs):
            text[i, : len(ref)] = torch.tensor(ref)
        batches.append((speech, lengths, text, torch.tensor([len(r) for r in refs])))
    return batches


def test_greedy_removes_a_block_that_costs_nothing():
    model = _identity_block_model(2)
    scorer = DevScorer(model, _self_transcribed_batches(model))
    assert scorer.ctc_loss({2}) == scorer.ctc_loss(set())  # exactly: block 2 is an identity
    assert scorer.cer(()) == 0.0 and scorer.cer({2}) == 0.0
    assert all(scorer.cer({b}) > 0 for b in (0, 1, 3))  # every other removal costs errors
    assert greedy_blocks(4, 1, scorer.metric("cer")) == [2]
    assert 2 in blocks_to_remove("greedy", 4, 2, score=scorer.metric("cer"))


def test_scorer_embeds_each_batch_once_and_memoises(monkeypatch):
    model = build(num_blocks=4, **PRUNABLE)
    calls = []
    embed = model.embed
    monkeypatch.setattr(model, "embed", lambda *args: calls.append(1) or embed(*args))
    scorer = DevScorer(model, _self_transcribed_batches(build(num_blocks=4, **PRUNABLE)))
    for removed in ((), (1,), (1, 2), (2, 1), (3,)):
        scorer.scores(removed)
    assert scorer.evaluations == 4  # (1, 2) and (2, 1) are one set
    first = greedy_blocks(4, 2, scorer.metric("ctc_loss"))
    seen = scorer.evaluations
    assert greedy_blocks(4, 2, scorer.metric("ctc_loss")) == first and scorer.evaluations == seen
    assert len(calls) == 2  # one frontend pass per batch, whatever was scored after


def test_scores_agree_with_espnet_validation_stats():
    model = build(num_blocks=2)
    torch.manual_seed(3)
    speech, lengths = torch.randn(2, 60, 20), torch.tensor([60, 60])  # no padding: ESPnet scores padded frames
    text, text_lengths = torch.tensor([[3, 4, 2, 5], [5, 3, -1, -1]]), torch.tensor([4, 2])
    with torch.no_grad():
        _, stats, _ = model(speech, lengths, text.clone(), text_lengths)
    scores = DevScorer(model, [(speech, lengths, text, text_lengths)]).scores(())
    assert scores.ctc_loss == pytest.approx(float(stats["loss_ctc"]), rel=1e-6)
    assert scores.cer == pytest.approx(float(stats["cer_ctc"]), rel=1e-6)
    assert scores.num_utterances == 2


def test_character_errors_drop_blank_and_space():
    assert character_errors([3, 2, 4], [3, 4], TOKENS, 0) == (0, 2)
    assert character_errors([0, 5], [3, 4], TOKENS, 0) == (2, 2)
    scorer = DevScorer(build(num_blocks=2), [(*speech_batch(), torch.tensor([[3]] * 3), torch.tensor([1] * 3))])
    with pytest.raises(ValueError, match="metric: 'wer' is unknown"):
        scorer.metric("wer")
    with pytest.raises(ValueError, match="batches: the dev set is empty"):
        DevScorer(build(num_blocks=2), [])


# ---------------------------------------------------------------- command lines
@pytest.mark.slow
def test_svcca_and_pruning_clis_on_a_trained_model(tmp_path):
    train = make_data_dir(tmp_path, "train", 12, seed=0)
    dev = make_data_dir(tmp_path, "dev", 6, seed=1)
    tokens = write_token_list(tmp_path)
    config = write_config(
        tmp_path, model_conf={"interctc_weight": 0.3, "subnet_sizes": [8, 16]},
        encoder_conf={"num_blocks": 4, "interctc_layer_idx": [2], "stochastic_depth_rate": 0.2,
                      "stochastic_depth_schedule": "linear"})
    exp = train_tiny_model(tmp_path, config, train, dev, tokens)
    model_args = ["--asr_train_config", f"{exp}/config.yaml", "--asr_model_file", f"{exp}/valid.cer_ctc.ave.pth"]
    speech = ["--data_path_and_name_and_type", f"{dev}/wav.scp,speech,sound"]
    text = ["--data_path_and_name_and_type", f"{dev}/text,text,text"]

    run_module("espnet_dynenc.bin.svcca_analysis", model_args + speech + [
        "--max_utterances", "5", "--output_dir", str(tmp_path / "svcca")], cwd=tmp_path)
    matrix = np.load(tmp_path / "svcca" / "svcca.npy")
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    tsv = (tmp_path / "svcca" / "svcca.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["layer", "frontend", "block0", "block1", "block2", "block3"] and len(tsv) == 6
    redundancy = [line.split("\t") for line in (tmp_path / "svcca" / "block_redundancy.tsv").read_text().splitlines()]
    assert redundancy[0] == ["block", "svcca_input_output"] and [r[0] for r in redundancy[1:]] == ["0", "1", "2", "3"]
    assert (tmp_path / "svcca" / "svcca.png").read_bytes()[:4] == b"\x89PNG"

    out = tmp_path / "plan"
    proc = run_module("espnet_dynenc.bin.prune_on_demand", model_args + speech + text + [
        "--depths", "3", "2", "--output_dir", str(out), "--batch_size", "4"], cwd=tmp_path)
    plan = yaml.safe_load((out / "pruning_plan.yaml").read_text())
    assert plan["num_blocks"] == 4 and plan["subnet"] == 16 and plan["dev_utterances"] == 6
    assert set(plan["skip_blocks"]) == {"top", "every_other", "svcca", "greedy"}
    for strategy, by_depth in plan["skip_blocks"].items():
        assert set(by_depth) == {3, 2}
        assert all(len(removed) == 4 - depth for depth, removed in by_depth.items())
    assert plan["skip_blocks"]["top"] == {3: [3], 2: [2, 3]}
    assert len(plan["svcca_redundancy"]) == 4 and len(plan["greedy_removal_order"]) == 2
    rows = [line.split("\t") for line in (out / "dev_scores.tsv").read_text().splitlines()]
    assert rows[0] == ["strategy", "depth", "skip_blocks", "parameters", "ctc_loss", "cer"] and len(rows) == 9
    assert all(math.isfinite(float(row[4])) and int(row[3]) > 0 for row in rows[1:])
    assert "top\t2\t2 3" in proc.stdout

    # The plan drives the greedy decoder directly.
    run_module("espnet_dynenc.bin.ctc_greedy_inference", model_args + speech + [
        "--output_dir", str(tmp_path / "decode"), "--subnets", "16", "--flops_reference_seconds", "1",
        "--skip_blocks", *map(str, plan["skip_blocks"]["greedy"][2])], cwd=tmp_path)
    stats = yaml.safe_load((tmp_path / "decode" / "16" / "decode_stats.yaml").read_text())
    assert stats["skip_blocks"] == plan["skip_blocks"]["greedy"][2]

    # Or the whole plan in one pass: every strategy and depth next to the whole subnet.
    run_module("espnet_dynenc.bin.ctc_greedy_inference", model_args + speech + [
        "--output_dir", str(tmp_path / "decode_plan"), "--subnets", "8", "--flops_reference_seconds", "1",
        "--pruning_plan", str(out / "pruning_plan.yaml")], cwd=tmp_path)
    whole = yaml.safe_load((tmp_path / "decode_plan" / "16" / "decode_stats.yaml").read_text())
    assert (tmp_path / "decode_plan" / "8" / "text").is_file() and whole["skip_blocks"] == []
    for strategy, by_depth in plan["skip_blocks"].items():
        for depth, removed in by_depth.items():
            folder = tmp_path / "decode_plan" / "pruned" / strategy / str(depth)
            pruned = yaml.safe_load((folder / "decode_stats.yaml").read_text())
            assert (pruned["strategy"], pruned["depth"], pruned["skip_blocks"]) == (strategy, depth, removed)
            assert pruned["subnet"] == 16 and pruned["flops_per_second"] < whole["flops_per_second"]
            assert len((folder / "text").read_text().splitlines()) == 6
    # the same removal set decodes the same way alone and within the plan
    alone = (tmp_path / "decode" / "16" / "token_int").read_text()
    assert (tmp_path / "decode_plan" / "pruned" / "greedy" / "2" / "token_int").read_text() == alone

    with pytest.raises(AssertionError, match=r"--depths: 5 is not in 0\.\.4"):
        run_module("espnet_dynenc.bin.prune_on_demand", model_args + speech + text + [
            "--depths", "5", "--output_dir", str(tmp_path / "bad")], cwd=tmp_path)
