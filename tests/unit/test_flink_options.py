"""Key catalogues recorded from each supported Flink release's jars (scripts/flink_options/record.py)."""

from __future__ import annotations

import pytest

from flink_runbook.flink.options import key_status, option_catalogue, recorded_releases
from flink_runbook.flink.values import duration_ms


@pytest.mark.parametrize("release", ["1.20", "2.0", "2.1", "2.2", "2.3"])
def test_the_checkpoint_directory_key_was_renamed_and_the_old_one_is_still_read(release):
    old = key_status("state.checkpoints.dir", release)
    assert (old.status, old.use) == ("renamed", "execution.checkpointing.dir")
    assert key_status("execution.checkpointing.dir", release).status == "current"
    assert (key_status("restart-strategy", release).status, key_status("restart-strategy", release).use) == (
        "renamed",
        "restart-strategy.type",
    )


def test_keys_that_flink_2_no_longer_reads_are_gone_there_and_deprecated_in_1_20():
    for key in ("state.backend.async", "jobmanager.heap.size", "execution.checkpointing.force"):
        assert key_status(key, "1.20.5").status == "deprecated", key
        for release in ("2.0.2", "2.3.0"):
            gone = key_status(key, release)
            assert (gone.status, gone.known_in) == ("gone", "1.20.5"), (key, release)  # the newest that read it


@pytest.mark.parametrize("release", recorded_releases())
def test_defaults_are_flinks_own(release):
    options = option_catalogue(release).options
    # 1.18 and 1.19 declare the heartbeat options as longs (ms), 1.20 on as Durations: the same 50 s and 10 s.
    assert duration_ms(options["heartbeat.timeout"].default) == 50_000
    assert duration_ms(options["heartbeat.interval"].default) == 10_000
    assert options["restart-strategy.fixed-delay.attempts"].default == "1"
    assert options["execution.checkpointing.externalized-checkpoint-retention"].default == (
        "NO_EXTERNALIZED_CHECKPOINTS"
    )


def test_unknown_keys_and_releases():
    assert key_status("s3.access-key", "2.2").status == "unknown"  # a plugin's key: not flink-dist's to judge
    assert option_catalogue("1.20.1").flink_version == "1.20.5"  # same minor release
    # Nearest recorded release otherwise (tests/unit/test_flink_releases.py): never an error.
    assert option_catalogue("1.17.2").flink_version == "1.18.1"
