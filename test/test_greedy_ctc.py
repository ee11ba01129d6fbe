"""Greedy CTC decoding: merge repeats, drop blanks, batch-independent."""
import torch

from espnet_dynenc.greedy_ctc import greedy_ctc_decode


def test_merges_repeats_and_drops_blanks_within_valid_frames():
    ids = [[0, 2, 2, 0, 2, 3, 3, 0, 4, 4], [1, 1, 0, 0, 3, 5, 5, 5, 5, 5]]
    log_probs = torch.full((2, 10, 6), -10.0)
    for b, row in enumerate(ids):
        for t, i in enumerate(row):
            log_probs[b, t, i] = -0.5
    hyps = greedy_ctc_decode(log_probs, torch.tensor([10, 5]))
    assert hyps[0].token_ids == [2, 2, 3, 4]
    assert hyps[1].token_ids == [1, 3]  # frames after length 5 ignored
    assert hyps[0].score == -5.0 and hyps[1].score == -2.5


def test_batched_equals_unbatched():
    torch.manual_seed(0)
    log_probs = torch.randn(4, 30, 7).log_softmax(-1)
    lengths = torch.tensor([30, 12, 25, 1])
    batched = greedy_ctc_decode(log_probs, lengths)
    for b in range(4):
        single = greedy_ctc_decode(log_probs[b:b + 1, : lengths[b]], lengths[b:b + 1])
        assert single == [batched[b]]
