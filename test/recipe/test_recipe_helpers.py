"""Unit checks of the recipe helpers that the stage tests exercise only in passing."""
import pytest
import yaml

from espnet_dynenc.recipe.decode_merge import merge_jobs
from espnet_dynenc.recipe.format_audio import parse_rate
from espnet_dynenc.recipe.results_table import human, read_sum_avg
from espnet_dynenc.recipe.speed_perturb import parse_factors, parse_pipe_command, pipe_command
from espnet_dynenc.recipe.split_keys import split_evenly


def test_split_evenly_keeps_order_and_balances():
    assert split_evenly(list("abcdefg"), 3) == [list("abc"), list("de"), list("fg")]
    with pytest.raises(ValueError):
        split_evenly(["a"], 2)


def test_speed_perturb_pipe_round_trip_with_awkward_sources():
    for source in ("/data/a b.wav", "sph2pipe -f wav x.sph |", "it's.flac"):
        assert parse_pipe_command(pipe_command("/venv/bin/python3", "0.9", source)) == (0.9, source)
    assert parse_pipe_command("sox a.wav -t wav - speed 0.9 |") is None
    assert parse_factors("0.9 1.0 1.1") == ["0.9", "1.0", "1.1"]
    for bad in ("0.9 fast", "0", "1.0 1"):
        with pytest.raises(ValueError):
            parse_factors(bad)


def test_parse_rate():
    assert [parse_rate(r) for r in ("16k", "8000", "22.05k")] == [16000, 8000, 22050]
    with pytest.raises(ValueError):
        parse_rate("fast")


def write_job(folder, size, utts, seconds):
    out = folder / str(size)
    out.mkdir(parents=True)
    for name in ("text", "token", "token_int", "score"):
        (out / name).write_text("".join(f"{u} x\n" for u in utts))
    stats = dict(subnet=size, num_utterances=len(utts), audio_seconds=seconds, decode_seconds=1.0,
                 rtf=1.0 / seconds, parameters=10 * size, flops_per_second=2.0 * size)
    (out / "decode_stats.yaml").write_text(yaml.safe_dump(stats))


def test_merge_sums_statistics_and_refuses_mismatched_sizes(tmp_path):
    jobs = [tmp_path / "output.1", tmp_path / "output.2"]
    write_job(jobs[0], 16, ["b", "a"], 4.0)
    write_job(jobs[1], 16, ["c"], 1.0)
    assert merge_jobs(jobs, tmp_path / "merged") == ["16"]
    assert (tmp_path / "merged/16/text").read_text() == "a x\nb x\nc x\n"
    stats = yaml.safe_load((tmp_path / "merged/16/decode_stats.yaml").read_text())
    assert stats["rtf"] == pytest.approx(2.0 / 5.0)  # not the mean of 0.25 and 1.0
    assert (stats["parameters"], stats["num_utterances"]) == (160, 3)
    write_job(jobs[1], 32, ["c"], 1.0)
    with pytest.raises(ValueError, match=r"output.2: decoded \[.16., .32.\]"):
        merge_jobs(jobs, tmp_path / "merged")


def test_read_sum_avg_and_number_format(tmp_path):
    result = tmp_path / "result.txt"
    result.write_text("|   Sum/Avg   |      4          7    |   57.1   28.6   14.3   42.9   85.7   80.0 |\n")
    summary = read_sum_avg(result)
    assert (summary.sentences, summary.words, summary.errors, summary.sentence_errors) == (4, 7, 85.7, 80.0)
    assert [human(v) for v in (950, 29908, 5.2e6, 3.41e9)] == ["950", "29.9k", "5.2M", "3.41G"]
