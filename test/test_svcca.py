"""SVCCA (Raghu et al., 2017): invariances, independence, rank deficiency, block outputs of a model."""
import numpy as np
import pytest
import torch
from espnet2.asr.ctc import CTC

from espnet_dynenc.analysis.svcca import (block_redundancy, block_similarity_matrix, canonical_correlations,
                                          collect_block_outputs, layer_labels, principal_directions, svcca)
from espnet_dynenc.encoder import DynamicConformerEncoder
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
ENC = dict(output_size=32, attention_heads=4, linear_units=48, cnn_module_kernel=7, macaron_style=True,
           rel_pos_type="latest", dropout_rate=0.0, positional_dropout_rate=0.0, input_layer="conv2d")


def _model(num_blocks=3, **encoder_conf):
    torch.manual_seed(0)
    encoder = DynamicConformerEncoder(20, num_blocks=num_blocks, **{**ENC, **encoder_conf})
    return ESPnetSupernetCTCModel(
        vocab_size=len(TOKENS), token_list=TOKENS, frontend=None, specaug=None, normalize=None, preencoder=None,
        encoder=encoder, postencoder=None, decoder=None, ctc=CTC(len(TOKENS), 32), joint_network=None,
    ).eval()


def _batches():
    torch.manual_seed(1)
    # About 450 frames after subsampling: more than twice the 32 + 32 neurons compared,
    # so canonical correlations are not inflated by too few frames.
    return [(torch.randn(3, 400, 20), torch.tensor([400, 320, 210])),
            (torch.randn(2, 260, 20), torch.tensor([260, 190]))]


def test_representation_with_itself_is_one():
    x = np.random.default_rng(0).standard_normal((20, 3000))
    assert svcca(x, x) == pytest.approx(1.0, abs=1e-6)


def test_invertible_linear_transform_is_one():
    rng = np.random.default_rng(1)
    # Full rank, every direction kept: the row space is unchanged by an invertible map.
    x = rng.standard_normal((16, 4000))
    a = rng.standard_normal((16, 16)) + 4 * np.eye(16)
    assert svcca(x, a @ x, variance_kept=1.0) == pytest.approx(1.0, abs=1e-6)
    # A rank-6 signal in 24 neurons: the 99% truncation keeps the same 6-dimensional
    # subspace before and after the map (plus a shift, which the mean-centring removes).
    z = rng.standard_normal((6, 4000))
    low = rng.standard_normal((24, 6)) @ z
    b = rng.standard_normal((24, 24)) + 5 * np.eye(24)
    assert svcca(low, b @ low + 3.0) == pytest.approx(1.0, abs=1e-6)
    assert principal_directions(low).shape == (6, 4000)


def test_independent_random_representations_are_near_zero():
    rng = np.random.default_rng(2)
    # Random 8-dimensional subspaces of a 20000-dimensional frame space have canonical
    # correlations of order sqrt(8 / 20000) = 0.02.
    x, y = rng.standard_normal((8, 20000)), rng.standard_normal((8, 20000))
    assert 0.0 <= svcca(x, y) < 0.06


def test_cca_drops_dependent_directions_and_agrees_with_svcca():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 2000))
    # y holds 3 independent directions of x, stored 6 times over (rank 3 of 6 rows).
    y = np.vstack([x[:3], 2.0 * x[:3] - 1.0])
    correlations = canonical_correlations(x, y)
    np.testing.assert_allclose(correlations, np.ones(3), atol=1e-10)
    z = rng.standard_normal((5, 2000))
    mixed = x + 0.5 * z
    assert canonical_correlations(x, mixed).mean() == pytest.approx(svcca(x, mixed, variance_kept=1.0), abs=1e-10)


def test_no_variance_gives_nan_and_bad_inputs_name_the_problem():
    x = np.random.default_rng(4).standard_normal((4, 100))
    assert np.isnan(svcca(np.ones((3, 100)), x))
    with pytest.raises(ValueError, match="variance_kept"):
        svcca(x, x, variance_kept=0.0)
    with pytest.raises(ValueError, match="same frames"):
        svcca(x, x[:, :50])
    with pytest.raises(ValueError, match=r"\(neurons, frames\)"):
        svcca(x[0], x)
    with pytest.raises(ValueError, match="nan or inf"):
        svcca(np.full((2, 10), np.nan), x[:, :10])


def test_similarity_matrix_is_symmetric_with_unit_diagonal():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((10, 3000))
    layers = [base, base + 0.3 * rng.standard_normal((10, 3000)), rng.standard_normal((10, 3000))]
    matrix = block_similarity_matrix(layers)
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(matrix, matrix.T)
    np.testing.assert_allclose(np.diag(matrix), 1.0, atol=1e-6)
    assert matrix[0, 1] > 0.8 > 0.1 > matrix[0, 2]
    np.testing.assert_allclose(block_redundancy(layers), np.diag(matrix, 1))


def test_collected_block_outputs_are_the_valid_frames_of_each_layer():
    model = _model(num_blocks=3)
    batches = _batches()
    hidden = collect_block_outputs(model, batches)
    assert len(hidden) == 4 == len(layer_labels(3))
    with torch.no_grad():
        embedded = [model.embed(s, n) for s, n in batches]
        valid = [int(e.masks.sum()) for e in embedded]
        out, lens = model.encode(*batches[0])
    assert all(h.shape == (32, sum(valid)) for h in hidden)
    # Layer 0 is the frontend output; the last layer through the final norm is the encoder output.
    first = embedded[0].xs[0, : int(lens[0])]
    np.testing.assert_allclose(hidden[0][:, : int(lens[0])], first.T.numpy(), atol=1e-6)
    last = model.encoder.after_norm(torch.from_numpy(hidden[-1][:, : int(lens[0])].T))
    torch.testing.assert_close(last, out[0, : int(lens[0])], atol=1e-5, rtol=0)
    subset = collect_block_outputs(model, batches, max_frames=20, seed=1)
    assert all(h.shape == (32, 20) for h in subset)


def test_identity_block_is_fully_redundant():
    model = _model(num_blocks=3, final_norm=False)
    block = model.encoder.encoders[1]
    with torch.no_grad():
        for layer in (block.feed_forward_macaron.w_2, block.self_attn.linear_out,
                      block.conv_module.pointwise_conv2, block.feed_forward.w_2):
            layer.weight.zero_()
            if layer.bias is not None:
                layer.bias.zero_()
    redundancy = block_redundancy(collect_block_outputs(model, _batches()))
    assert redundancy[1] == pytest.approx(1.0, abs=1e-6)
    assert redundancy[0] < 1.0 - 1e-3 and redundancy[2] < 1.0 - 1e-3
