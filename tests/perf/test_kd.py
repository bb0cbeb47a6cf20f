"""The perf-kd backend runs end to end at a tiny size and writes its table."""

import csv

import pytest
import torch

from bench.perf.kd import configured, main, peak_memory, term_settings


def _args(tmp_path, *extra: str, size=("4", "8"), teacher_channels="8") -> list[str]:
    """A tiny CPU run: one timed iteration, no warm-up."""
    return [
        *("--batch", "2", "--classes", "3", "--size", *size, "--student-channels", "4"),
        *("--teacher-channels", teacher_channels, "--device", "cpu", "--repeats", "1"),
        *("--warmup", "0", "--min-seconds", "0", "--out", str(tmp_path), *extra),
    ]


@pytest.mark.slow
def test_perf_kd_times_terms_and_writes_markdown_and_csv(tmp_path):
    table = main(_args(tmp_path, "--terms", "kd", "skd_pair", "skd_holistic"))
    assert "input 32×64 at OS8" in table and "deeplabv3_r18" in table
    rows = list(csv.DictReader((tmp_path / "kd_cpu_b2_4x8.csv").open()))
    assert [r["term"] for r in rows] == ["kd", "skd_pair", "skd_holistic"]
    assert all(float(r["total_ms"]) > 0 and float(r["ratio_to_student_step"]) > 0 for r in rows)
    assert rows[2]["after_step_ms"] != "" and rows[0]["after_step_ms"] == ""  # only D trains after
    assert (tmp_path / "kd_cpu_b2_4x8.md").read_text() == table


@pytest.mark.slow
def test_perf_kd_skips_terms_above_the_memory_limit(tmp_path):
    args = _args(
        tmp_path, "--terms", "skd_pair", "--memory-limit-mb", "0", size=("8", "8"), teacher_channels="4"
    )
    assert "skipped: estimate" in main(args)


def test_peak_memory_of_a_block_counts_what_it_allocates():
    with peak_memory(torch.device("cpu")) as peak:
        x = torch.ones(16 * 2**20)  # 64 MiB, every page written
    del x
    assert peak[0] is not None and 60 < peak[0] < 200


@pytest.mark.slow
def test_a_set_reaches_the_term_and_gets_its_own_table(tmp_path):
    table = main(_args(tmp_path, "--terms", "cirkd_minibatch", "--set", "cirkd_minibatch.pool_size=1"))
    assert "conf/method/cirkd.yaml; pool_size=1" in table
    assert (tmp_path / "kd_cpu_b2_4x8_cirkd_minibatch.pool_size=1.md").read_text() == table
    assert not (tmp_path / "kd_cpu_b2_4x8.md").exists()  # the defaults' table is not overwritten


def test_set_values_are_type_checked_against_the_terms_config():
    cfg, note = configured("cirkd_minibatch", ["pool_size=1", "temperature=0.5"])
    assert (cfg.pool_size, cfg.temperature, cfg.group_size) == (1, 0.5, 2)  # group_size: cirkd.yaml's
    assert note == "conf/method/cirkd.yaml; pool_size=1, temperature=0.5"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("pool_size=1", "expected TERM.KEY=VALUE"),
        ("cirkd_minibatch.pool_size", "expected TERM.KEY=VALUE"),
        ("kd.temperature=2", r"'kd' is not among the timed terms \(cirkd_minibatch\)"),
        ("cirkd_minibatch.pol_size=1", "Key 'pol_size' not in .*keys of cirkd_minibatch: weight, schedule"),
        ("cirkd_minibatch.pool_size=two", "'two' of type 'str' could not be converted to Integer"),
    ],
)
def test_a_bad_set_is_refused_before_anything_is_timed(item, message):
    with pytest.raises(ValueError, match=message):
        term_settings([item], ["cirkd_minibatch"])
